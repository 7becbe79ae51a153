"""AGI argument escaping, checked against a port of res_agi.c's parse_args."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr_scripts.agi import check_var_name, quote


def res_agi_parse_args(line: str) -> list[str]:
    """Python port of parse_args() in Asterisk's res/res_agi.c (16.x)."""
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                args.append("")
                whitespace = False
            escaped = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            if cur is not None:
                args[-1] = "".join(cur)
            cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            cur = []
            args.append("")
            whitespace = False
        assert cur is not None
        cur.append(ch)
        escaped = False
        args[-1] = "".join(cur)
    return args


SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
safe_text = st.text(st.characters(blacklist_characters="\r\n\0",
                                  blacklist_categories=SURROGATES))


@given(a=safe_text, b=safe_text)
def test_quoted_arguments_parse_back_exactly(a: str, b: str) -> None:
    line = f"SET VARIABLE {quote(a)} {quote(b)}"
    assert res_agi_parse_args(line) == ["SET", "VARIABLE", a, b]


def test_unescaped_quote_would_inject_an_argument() -> None:
    # What pyst2's _quote does: the value's quote ends the argument early.
    hostile = 'x" "EXTRA'
    assert res_agi_parse_args(f'SET VARIABLE "N" "{hostile}"') == ["SET", "VARIABLE", "N", "x",
                                                                   "EXTRA"]
    assert res_agi_parse_args(f"SET VARIABLE {quote('N')} {quote(hostile)}")[3] == hostile


@pytest.mark.parametrize("bad", ["a\nHANGUP", "a\r", "nul\0"])
def test_line_breaks_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        quote(bad)


@pytest.mark.parametrize("name", ["PBXCTL_STATUS", "CDR(userfield)", "_INHERIT"])
def test_variable_names_accepted(name: str) -> None:
    assert check_var_name(name) == name


@pytest.mark.parametrize("name", ["A B", "X)=1", "", "1ABC", 'A"'])
def test_variable_names_refused(name: str) -> None:
    with pytest.raises(ValueError):
        check_var_name(name)
