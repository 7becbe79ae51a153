"""Ages on the command line (30m, 4h, 7d), one parser for every --since / --older-than."""

from __future__ import annotations

from datetime import timedelta

_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> timedelta | None:
    """``30m`` → 30 minutes; None when ``text`` is not an age."""
    if text[-1:] in _UNITS and text[:-1].isdigit():
        return timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])
    return None
