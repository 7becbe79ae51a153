"""Inventory validation: every problem named by file:line and field, all at once."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from pbxctl.cli import main
from provisioning.checks import InventoryError
from provisioning.inventory import load_inventory


def _variant(src: Path, old: str, new: str) -> Path:
    text = src.read_text(encoding="utf-8")
    assert old in text, old
    src.write_text(text.replace(old, new, 1), encoding="utf-8")
    return src


def _problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    return exc.value.problems


def _line_of(path: Path, needle: str, nth: int = 1) -> int:
    lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return lines[nth - 1]


def test_small_inventory_is_valid(small_inventory_path: Path) -> None:
    inv = load_inventory(small_inventory_path)
    assert [p.code for p in inv.prefectures] == ["HZ", "NB"]
    assert len(inv.all_seats()) == 5
    assert [s.name for s in inv.sites()] == ["zj-pbx", "hz-gw", "hz-lss", "nb-gw", "nb-lss"]


def test_example_province_is_valid() -> None:
    inv = load_inventory(Path(__file__).parents[2] / "examples" / "zhejiang" / "province.yaml")
    assert len(inv.prefectures) == 11
    assert {p.name[:2] for p in inv.prefectures} >= {"杭州", "宁波", "温州"}
    assert all(inv.counties_of(p.code) for p in inv.prefectures)


def test_duplicate_extension_names_both_lines(small_inventory_path: Path) -> None:
    p = _variant(small_inventory_path, 'extension: "1201"', 'extension: "1101"')
    [problem] = _problems(p)
    first, dup = _line_of(p, '"1101"', 1), _line_of(p, '"1101"', 2)
    assert problem == (f"{p}:{dup}: prefectures[1].agents[0].extension: duplicate extension "
                       f"'1101' (first at {p}:{first})")


def test_all_problems_reported_at_once(small_inventory_path: Path) -> None:
    p = _variant(small_inventory_path, 'dids: ["057495598"]', 'dids: ["057195598"]')
    p = _variant(p, "prefecture: HZ", "prefecture: XX")
    p = _variant(p, "b: 127.212.2.11}", "b: 127.99.2.11}")
    problems = _problems(p)
    assert len(problems) == 3
    assert any("duplicate DID '057195598'" in x for x in problems)
    assert any("unknown prefecture 'XX'" in x for x in problems)
    assert any("127.99.2.11 is outside switch B's network 127.212.2.0/24" in x for x in problems)
    assert all(re.match(rf"{re.escape(str(p))}:\d+: ", x) for x in problems)


def test_seat_in_two_queues_refused(small_inventory_path: Path) -> None:
    p = _variant(small_inventory_path, "{id: nb-a001, name: 陈静, extension: \"1201\"}",
                 "{id: hz-a001, name: 陈静, extension: \"1201\"}")
    problems = _problems(p)
    assert any("seat 'hz-a001' is already a seat of agent group HZ" in x for x in problems)


def test_one_link_only_refused(small_inventory_path: Path) -> None:
    p = _variant(small_inventory_path, "networks: {a: 127.212.1.0/24, b: 127.212.2.0/24}",
                 "networks: {a: 127.212.1.0/24}")
    p = _variant(p, "gateway: {name: nb-gw, a: 127.212.1.10, b: 127.212.2.10}",
                 "gateway: {name: nb-gw, a: 127.212.1.10}")
    problems = _problems(p)
    assert any("prefectures[1].networks.b: missing: two switch networks" in x for x in problems)
    assert any("prefectures[1].gateway.b: missing: every server needs an address on switch B"
               in x for x in problems)


@pytest.mark.parametrize("hostile", ['"王芳\\n[evil]\\nexten => _X.,1,Hangup()"',
                                     '"王芳; comment"', '"a]b"', '"王,芳"', '"x\\"y"'])
def test_hostile_names_rejected_with_location(small_inventory_path: Path, hostile: str) -> None:
    p = _variant(small_inventory_path, "name: 王芳", f"name: {hostile}")
    [problem] = _problems(p)
    assert problem.startswith(f"{p}:{_line_of(p, 'hz-a001')}: prefectures[0].agents[0].name: ")
    assert "would break a config line" in problem


def test_hostile_seat_id_rejected(small_inventory_path: Path) -> None:
    p = _variant(small_inventory_path, "id: hz-a002", 'id: "hz-a002]\\n[evil"')
    [problem] = _problems(p)
    assert "prefectures[0].agents[1].id" in problem and "is not a seat id" in problem


def test_unquoted_leading_zero_digits_explained(small_inventory_path: Path) -> None:
    p = _variant(small_inventory_path, 'area_codes: ["0574"]', "area_codes: [0574]")
    [problem] = _problems(p)
    assert "write it as a quoted string" in problem and "octal" in problem


def test_unknown_field_refused(small_inventory_path: Path) -> None:
    p = _variant(small_inventory_path, "    area_codes: [\"0571\"]",
                 "    area_codes: [\"0571\"]\n    area_code: \"0571\"")
    [problem] = _problems(p)
    assert "prefectures[0].area_code: unknown field" in problem


def test_includes_are_followed_and_cycles_refused(tmp_path: Path,
                                                  small_inventory_path: Path) -> None:
    text = small_inventory_path.read_text()
    head, _, tail = text.partition("counties:\n")
    (tmp_path / "counties.yaml").write_text("counties:\n" + tail + "include: [main.yaml]\n")
    main_file = tmp_path / "main.yaml"
    main_file.write_text(head + "include: [counties.yaml]\n")
    problems = _problems(main_file)
    assert problems == [f"{tmp_path}/counties.yaml:7: include[0]: main.yaml is included twice "
                        "(or in a cycle)"]


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nprovince: {code: ZJ\n")
    with pytest.raises(Exception, match=rf"{bad}:3: YAML syntax error"):
        load_inventory(bad)


def test_cli_validate_lists_problems_and_exits_3(small_inventory_path: Path) -> None:
    p = _variant(small_inventory_path, "prefecture: HZ", "prefecture: XX")
    err = io.StringIO()
    code = main(["provision", "validate", str(p)], environ={}, stdout=io.StringIO(), stderr=err)
    assert code == 3
    assert "pbxctl: error: 1 problem(s) in the inventory" in err.getvalue()
    assert f"{p}:{_line_of(p, 'prefecture: XX')}: counties[0].prefecture: unknown" in err.getvalue()


def test_cli_render_writes_nothing_for_a_bad_inventory(small_inventory_path: Path,
                                                       tmp_path: Path) -> None:
    p = _variant(small_inventory_path, "name: 王芳", 'name: "王芳\\n[x]"')
    out = tmp_path / "out"
    code = main(["provision", "render", str(p), "--out", str(out)], environ={},
                stdout=io.StringIO(), stderr=io.StringIO())
    assert code == 3 and not out.exists()


def test_cli_render_then_diff_is_clean(small_inventory_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "deployed"
    assert main(["provision", "render", str(small_inventory_path), "--out", str(out)],
                environ={}, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    # A render directory is <site>/<file>; a deployment root is <site>/etc/<file>.
    for site in list(out.iterdir()):
        (site / "etc").mkdir()
        for f in site.glob("*.conf"):
            f.rename(site / "etc" / f.name)
    stdout = io.StringIO()
    assert main(["provision", "diff", str(small_inventory_path), "--target", str(out),
                 "--exit-code"], environ={}, stdout=stdout, stderr=io.StringIO()) == 0
    assert stdout.getvalue() == ""
    _variant(small_inventory_path, "name: 李强", "name: 李强强")
    assert main(["provision", "diff", str(small_inventory_path), "--target", str(out),
                 "--exit-code"], environ={}, stdout=stdout, stderr=io.StringIO()) == 1
    assert "-member => PJSIP/hz-a002,0,李强,PJSIP/hz-a002" in stdout.getvalue()
    assert "+member => PJSIP/hz-a002,0,李强强,PJSIP/hz-a002" in stdout.getvalue()


def test_bad_failback_rule_and_window_are_named_with_their_line(
        small_inventory_path: Path) -> None:
    p = _variant(small_inventory_path, "trunk_dial_timeout: 3}",
                 "trunk_dial_timeout: 3, failback_rule: idle, failback_window: \"2-5\"}")
    problems = _problems(p)
    line = _line_of(p, "failback_rule")
    assert any(f":{line}" in x and "options.failback_rule: 'idle' is not one of" in x
               for x in problems), problems
    assert any("options.failback_window: '2-5' is not HH:MM-HH:MM" in x for x in problems)


def test_failback_rules_load(small_inventory_path: Path) -> None:
    p = _variant(small_inventory_path, "trunk_dial_timeout: 3}",
                 "trunk_dial_timeout: 3, failback_rule: lss-idle, "
                 "failback_window: \"02:00-05:00\"}")
    opts = load_inventory(p).province.options
    assert (opts.failback_rule, opts.failback_window) == ("lss-idle", "02:00-05:00")
