"""Jinja2 over the dialplans/ templates: StrictUndefined, and a filter for config-safe values."""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from pbxctl.core import chanvars
from pbxctl.core.errors import InputError
from pbxctl.data import callrecords

# Characters that would end or start something in an Asterisk config line or dialplan
# application argument list.
_UNSAFE = re.compile(r"[\r\n\0;\[\],()\"\\]")


def conf_value(value: object) -> str:
    """A value safe on one Asterisk config line / as one application argument, or InputError."""
    text = str(value)
    bad = _UNSAFE.search(text)
    if bad:
        raise InputError(f"unsafe character {bad.group()!r} in config value {text!r}")
    return text


def dialplans_dir() -> Path:
    for candidate in (Path(__file__).resolve().parents[1] / "dialplans",
                      Path(sys.prefix) / "share" / "pbxctl" / "dialplans"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("dialplans/ templates not found (reinstall pbxctl)")


@lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Asterisk configs: values go through the `c` filter instead
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["c"] = conf_value
    env.globals["V"] = chanvars.as_template_vars()
    env.globals["call_log"] = callrecords.CALL_LOG_NAME
    env.globals["record_fields"] = callrecords.RECORD_FIELDS
    return env


def render(template: str, **context: Any) -> str:
    return _environment(str(dialplans_dir())).get_template(template).render(**context)


def render_from(directory: Path, template: str, **context: Any) -> str:
    """Like render(), from another folder of templates (the tests' own)."""
    return _environment(str(directory)).get_template(template).render(**context)
