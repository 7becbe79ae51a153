"""Which Asterisk major pbxctl drives on this host (``asterisk_modules`` stays import-free: the
build script runs it as a plain script before any venv exists)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pbxctl.core.errors import UsageError
from pbxctl.pbx.asterisk_modules import DEFAULT_MAJOR, SUPPORTED


def default_major(environ: Mapping[str, str] | None = None) -> int:
    """The Asterisk major to drive: ``PBXCTL_ASTERISK`` (16 or 22), else 22."""
    env = os.environ if environ is None else environ
    raw = env.get("PBXCTL_ASTERISK", "").strip()
    if not raw:
        return DEFAULT_MAJOR
    if not raw.isdigit() or int(raw) not in SUPPORTED:
        raise UsageError(f"PBXCTL_ASTERISK={raw!r}: pbxctl drives Asterisk "
                         f"{' or '.join(map(str, SUPPORTED))}")
    return int(raw)
