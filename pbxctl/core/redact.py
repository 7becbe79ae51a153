"""Secrets out of anything shown to a person or a script (``--json``, status, errors)."""

from __future__ import annotations

import re
from typing import Any

MASK = "••••••"
SECRET_KEYS = re.compile(r"(secret|password|passwd|token)$", re.IGNORECASE)
_CONNINFO_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")


def redacted(data: Any) -> Any:
    """A copy of ``data`` with the value of every secret-named key masked, and passwords in
    conninfo strings and URLs masked wherever they appear."""
    if isinstance(data, dict):
        return {k: (MASK if isinstance(k, str) and SECRET_KEYS.search(k) and v
                    else redacted(v)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(redacted(v) for v in data)
    if isinstance(data, str):
        return redact_text(data)
    return data


def redact_text(text: str) -> str:
    text = _CONNINFO_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text)
