"""The replication SQL renderer: golden files, quoting, the IVR host, `provision render`.
(Loaded into two real PostgreSQL clusters: integration/test_replication.py.)"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pbxctl.cli.app import main
from provisioning.inventory import load_inventory
from provisioning.render_replication import (
    conninfo_value,
    literal,
    prefecture_sql,
    province_sql,
    publisher_conninfo,
    render,
)
from tests.golden_files import assert_golden

GOLDEN = Path(__file__).parents[1] / "golden" / "replication"


@pytest.mark.golden
def test_golden_files(small_inventory_path: Path) -> None:
    inv = load_inventory(small_inventory_path)
    assert_golden(GOLDEN, {n: f.text for n, f in render(inv).items()})


def test_each_prefecture_publishes_only_its_rows_and_no_password_is_rendered(
        small_inventory_path: Path) -> None:
    inv = load_inventory(small_inventory_path)
    sql = province_sql(inv)
    for code in ("HZ", "NB"):
        for table in ("accounts", "bills", "outages"):
            assert f"{table} WHERE (prefecture = '{code}')" in sql
    assert "PASSWORD '" not in sql.upper()
    sub = prefecture_sql(inv, inv.prefecture("HZ"))
    assert "password" not in sub.lower()
    assert "passfile=/etc/pbxctl/replication.pgpass " in sub


def test_the_ivr_runs_on_the_lss_host_unless_the_inventory_names_one(
        small_inventory_path: Path, tmp_path: Path) -> None:
    inv = load_inventory(small_inventory_path)
    hz = inv.prefecture("HZ")
    assert hz.ivr is None and hz.ivr_host == hz.lss
    # Path A first, then B: libpq tries the province host's addresses in order.
    assert "host=127.201.1.10,127.201.2.10 port=5432,5432 " in publisher_conninfo(inv, hz)
    text = small_inventory_path.read_text(encoding="utf-8").replace(
        "    lss: {name: hz-lss, a: 127.211.1.11, b: 127.211.2.11}\n",
        "    lss: {name: hz-lss, a: 127.211.1.11, b: 127.211.2.11}\n"
        "    ivr: {name: hz-ivr, a: 127.211.1.12, b: 127.211.2.12}\n", 1)
    assert "hz-ivr" in text
    for f in small_inventory_path.parent.glob("*.yaml"):
        if f != small_inventory_path:
            (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "province.yaml").write_text(text, encoding="utf-8")
    inv2 = load_inventory(tmp_path / "province.yaml")
    assert inv2.prefecture("HZ").ivr_host.name == "hz-ivr"
    assert "its IVR at hz-ivr (127.211.1.12, 127.211.2.12)" in province_sql(inv2)


@pytest.mark.parametrize(("value", "sql", "conn"), [
    ("plain", "'plain'", "plain"),
    ("two words", "'two words'", "'two words'"),
    ("", "''", "''"),
    ("it's", "'it''s'", "'it\\'s'"),
    ("back\\slash", "'back\\slash'", "'back\\\\slash'"),
])
def test_quoting(value: str, sql: str, conn: str) -> None:
    assert literal(value) == sql
    assert conninfo_value(value) == conn


def test_provision_render_writes_the_sql_beside_the_sites(small_inventory_path: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["provision", "render", str(small_inventory_path), "--out", str(out)],
                environ={}, stdout=io.StringIO(), stderr=io.StringIO())
    assert code == 0
    assert sorted(p.name for p in (out / "_replication").iterdir()) == [
        "hz.sql", "nb.sql", "province.sql"]
