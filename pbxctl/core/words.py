"""Mandarin words for numbers, money and dates: what a prompt says, before any TTS engine."""

from __future__ import annotations

import re

import cn2an


# -- Mandarin numbers -----------------------------------------------------------------------
def money_words(amount: str) -> str:
    """'123.45' → 一百二十三元四角五分; '100' → 一百元整; '0.05' → 零元零五分."""
    if not re.fullmatch(r"\d{1,12}(\.\d{1,2})?", amount):
        raise ValueError(f"not an amount: {amount!r}")
    yuan, _, cents = amount.partition(".")
    cents = (cents + "00")[:2]
    words = f"{cn2an.an2cn(int(yuan), 'low')}元"
    jiao, fen = cents[0], cents[1]
    if jiao == "0" and fen == "0":
        return words + "整"
    if jiao != "0":
        words += f"{cn2an.an2cn(int(jiao), 'low')}角"
    if fen != "0":
        words += ("零" if jiao == "0" else "") + f"{cn2an.an2cn(int(fen), 'low')}分"
    return words


DIGIT_WORDS = "零一二三四五六七八九"
LONGEST_NUMBER = 8  # digits; longer runs are identifiers (phones, accounts): read digit by digit


def digit_words(digits: str) -> str:
    return "".join(DIGIT_WORDS[int(d)] for d in digits if d.isdigit())


def number_words(n: int) -> str:
    if n < 0 or len(str(n)) > LONGEST_NUMBER:  # cn2an fails past 10^16; nobody says them
        return ("负" if n < 0 else "") + digit_words(str(abs(n)))
    return str(cn2an.an2cn(n, "low"))


def year_words(year: int) -> str:
    """Years are read digit by digit: 2026 → 二零二六."""
    return digit_words(str(year))


def speakable(text: str) -> str:
    """Arabic numerals and money in a sentence → Chinese words, for TTS."""
    text = re.sub(r"(?<!\d)(\d{1,12}(?:\.\d{1,2})?)元", lambda m: money_words(m.group(1)), text)
    text = re.sub(r"(\d{4})年", lambda m: year_words(int(m.group(1))) + "年", text)
    return re.sub(r"\d+", lambda m: number_words(int(m.group())) if len(m.group()) <= LONGEST_NUMBER
                  else digit_words(m.group()), text)
