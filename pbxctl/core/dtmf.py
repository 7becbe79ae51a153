"""What a caller's keypad can send. ``str.isdigit()`` is not it: it accepts '²' and
Arabic-Indic digits, which ``int()`` then refuses (or reads) — a DTMF or AGI value that
claims to be digits must be ASCII 0-9."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")


def is_digits(text: str, *, length: int | None = None) -> bool:
    return _DIGITS.fullmatch(text) is not None and (length is None or len(text) == length)
