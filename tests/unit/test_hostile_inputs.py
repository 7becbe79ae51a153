"""The hostile-input suite: inventories, call-log lines, AGI lines, DTMF strings and config
values from an attacker or a broken tool. The property everywhere: nothing crashes, nothing
is half-written, and a refusal names where (file:line, or the field). Each refusal is fast
(the times are printed by the bench, not asserted here)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbxctl.cli import main
from pbxctl.core.errors import InputError
from pbxctl.data.callrecords import parse_record
from provisioning.checks import InventoryError
from provisioning.inventory import load_inventory

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"
EXAMPLES = int(os.environ.get("PBXCTL_HYPOTHESIS_EXAMPLES", "150"))
ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "province.yaml"
    target.write_text(SMALL.read_text(encoding="utf-8"), encoding="utf-8")
    return target


def _refusal(path: Path) -> str:
    with pytest.raises(InputError) as exc:
        load_inventory(path)
    err = exc.value
    return "\n".join(err.problems) if isinstance(err, InventoryError) else err.message


def test_a_yaml_alias_bomb_is_refused_with_its_line(tmp_path: Path) -> None:
    bomb = tmp_path / "province.yaml"
    bomb.write_text(ALIAS_BOMB)
    assert f"{bomb}:1: YAML anchors and aliases" in _refusal(bomb)  # where the anchor is


def test_include_of_a_device_a_symlink_outside_and_a_huge_file(tmp_path: Path) -> None:
    inv = _copy(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_text("prefectures: []\n")
    (tmp_path / "link.yaml").symlink_to(outside)
    huge = tmp_path / "huge.yaml"
    huge.write_text("counties: []\n# " + "x" * (5 * 1024 * 1024) + "\n")
    with inv.open("a") as fh:
        fh.write("include: [/dev/zero, link.yaml, huge.yaml, ../../etc/passwd]\n")
    text = _refusal(inv)
    line = len(inv.read_text().splitlines())
    assert f"{inv}:{line}: include[0]: /dev/zero is outside the inventory's folder" in text
    assert "include[1]: link.yaml is outside the inventory's folder" in text
    assert "include[2]:" in text and "larger than 4096 kB" in text
    assert "include[3]: ../../etc/passwd is outside" in text


def test_a_device_or_oversized_inventory_itself_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="/dev/zero: not a regular file"):
        load_inventory(Path("/dev/zero"))
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (4 * 1024 * 1024 + 10))
    with pytest.raises(InputError, match="larger than 4096 kB"):
        load_inventory(big)


def test_deep_nesting_is_refused_with_a_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("x: " + "[" * 200 + "]" * 200 + "\n")
    assert "nested deeper than 32 levels" in _refusal(deep)


@pytest.mark.parametrize("seat_id", ["gw-hz-a", "transport-a", "acd-supervisors", "pbxctl",
                                     "pbxctl-menu", "lss-hz"])
def test_a_seat_id_that_is_a_generated_name_is_refused_with_both_lines(
        tmp_path: Path, seat_id: str) -> None:
    inv = _copy(tmp_path)
    inv.write_text(inv.read_text().replace("{id: hz-a002,", f"{{id: {seat_id},"))
    text = _refusal(inv)
    assert f"seat id {seat_id!r} collides with" in text
    line = next(i for i, ln in enumerate(inv.read_text().splitlines(), 1) if seat_id in ln)
    assert f"{inv}:{line}:" in text
    if seat_id in ("gw-hz-a", "lss-hz"):
        code_line = next(i for i, ln in enumerate(inv.read_text().splitlines(), 1)
                         if "code: HZ" in ln)
        assert f"prefecture HZ at {inv}:{code_line}" in text


@pytest.mark.parametrize("evil", ["王\u2028芳", "王\x85芳", "王\x07芳", "${hangup}", "$${x}",
                                  "a;b", "王芳\x00"])
def test_hostile_display_names_are_refused_with_their_line(tmp_path: Path, evil: str) -> None:
    inv = _copy(tmp_path)
    inv.write_text(inv.read_text().replace("name: 王芳,", f'name: "{_yaml_escape(evil)}",'))
    text = _refusal(inv)
    line = next(i for i, ln in enumerate(inv.read_text().splitlines(), 1) if "hz-a001" in ln)
    assert f"{inv}:{line}:" in text and "would break a config line" in text


def _yaml_escape(text: str) -> str:
    return "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in text)


names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
def test_any_name_is_either_accepted_and_renders_or_refused_with_a_line(
        tmp_path: Path, name: str) -> None:
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))  # one per example
    inv = _copy(tmp_path)
    inv.write_text(inv.read_text().replace("name: 王芳,", f'name: "{_yaml_escape(name)}",'))
    out, err = io.StringIO(), io.StringIO()
    code = main(["provision", "render", str(inv), "--secrets", str(tmp_path / "s.yaml"),
                 "--out", str(tmp_path / "out")], environ={}, stdout=out, stderr=err)
    if code == 0:
        pjsip = (tmp_path / "out" / "zj-pbx" / "pjsip.conf").read_text()
        assert "\n[hz-a001]" in pjsip  # one section, not two
        return
    assert code == 3, err.getvalue()
    assert f"{inv}:" in err.getvalue() and "Traceback" not in err.getvalue()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.conf"))


# -- call-log lines ---------------------------------------------------------------------------
@settings(max_examples=EXAMPLES * 4, deadline=None, database=None)
@given(line=st.text(max_size=400))
def test_any_call_log_line_parses_or_is_refused_by_place(line: str) -> None:
    try:
        rec = parse_record(line, where="log:byte 7")
    except InputError as exc:
        assert exc.message.startswith("log:byte 7: ")
        return
    if rec is None:  # an unmarked FreeSWITCH leg: only a whole line says so
        assert "eor=1" in line and "cdr=" in line
        return
    assert rec.site and rec.uniqueid  # only whole records get through


# -- DTMF strings into the handlers' input checks -----------------------------------------------
@settings(max_examples=EXAMPLES * 4, deadline=None, database=None)
@given(digits=st.text(max_size=16) | st.text("0123456789²٣", max_size=12))
def test_dtmf_input_is_digits_only_when_int_reads_it_as_typed(digits: str) -> None:
    from pbxctl.core.dtmf import is_digits

    if is_digits(digits):
        assert str(int(digits)).zfill(len(digits)) == digits  # no '²', no '٣', no sign
    else:
        assert not digits or not all(c in "0123456789" for c in digits)


# -- AMI messages and peer addresses --------------------------------------------------------------
@settings(max_examples=EXAMPLES * 4, deadline=None, database=None)
@given(raw=st.binary(max_size=600))
def test_any_ami_message_parses_into_one_line_values(raw: bytes) -> None:
    from pbxctl.pbx.ami import AmiClient

    msg = AmiClient._parse(raw)  # never raises, whatever the bytes
    for key, value in msg.items():
        assert isinstance(value, str) and "\r\n" not in key and ":" not in key
        assert key == key.strip()


@settings(max_examples=EXAMPLES * 4, deadline=None, database=None)
@given(address=st.text(max_size=60))
def test_any_peer_address_is_allowed_only_when_it_is_one(address: str) -> None:
    from ipaddress import ip_address

    from ivr_scripts.peers import PeerFilter

    peers = PeerFilter.loopback_only()
    if peers.allows(address):
        assert ip_address(address.split("%", 1)[0]).is_loopback
