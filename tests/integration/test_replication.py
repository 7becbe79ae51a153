"""Each prefecture's slice of the self-service data, by real PostgreSQL logical replication.

Two real clusters: the province (wal_level=logical) with the sample data of two prefectures,
and HZ's IVR database. `pbxctl db replicas publish` / `subscribe` (the rendered SQL) set it
up; the test then changes rows at the province and waits for HZ's replica to show exactly
HZ's rows — inserts, updates, deletes, an account moving to NB — and reads
`pbxctl db replicas status` on both sides, including a subscriber gone.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pbxctl.cli.app import main
from pbxctl.core.procs import wait_until
from pbxctl.lab.sandbox.postgres import PostgresCluster

pytestmark = pytest.mark.pg

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"
SELECT = {
    "accounts": "SELECT account_no, holder, prefecture, county, address FROM accounts",
    "bills": "SELECT account_no, period, kwh, amount, due_date, paid, prefecture FROM bills",
    "outages": "SELECT id, prefecture, county, planned, starts_at, ends_at, reason FROM outages",
}


@dataclass
class Pair:
    province: PostgresCluster
    replica: PostgresCluster

    def dsn(self, which: str) -> str:
        cluster = getattr(self, which)
        assert cluster.endpoint is not None
        return str(cluster.endpoint.conninfo())

    def rows(self, which: str, table: str, where: str = "") -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn(which), autocommit=True) as conn:
            return sorted(conn.execute(SELECT[table] + (f" WHERE {where}" if where else ""))
                          .fetchall())

    def run(self, which: str, sql: str, params: tuple[Any, ...] = ()) -> None:
        with psycopg.connect(self.dsn(which), autocommit=True) as conn:
            conn.execute(sql, params)


def cli(dsn: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ={"PBXCTL_DSN": dsn}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def in_sync(pair: Pair, *, timeout: float = 60) -> None:
    """The replica holds exactly the province's HZ rows, table by table."""
    def same() -> bool:
        return all(pair.rows("replica", t) == pair.rows("province", t, "prefecture = 'HZ'")
                   for t in SELECT)
    wait_until(same, timeout=timeout, what="HZ's replica to match the province's HZ rows")


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    root = Path(tempfile.mkdtemp(prefix="pbxrepl-", dir="/tmp"))
    root.chmod(0o755)
    province = PostgresCluster(root=root / "province", logical=True)
    replica = PostgresCluster(root=root / "hz-ivr")
    try:
        province.start()
        replica.start()
        p = Pair(province, replica)
        assert cli(p.dsn("province"), "db", "migrate", "--sample-data",
                   "--inventory", str(SMALL))[0] == 0
        assert cli(p.dsn("replica"), "db", "migrate")[0] == 0
        code, _, err = cli(p.dsn("province"), "db", "replicas", "publish",
                           "--inventory", str(SMALL))
        assert code == 0, err
        assert province.endpoint is not None
        code, out, err = cli(p.dsn("replica"), "db", "replicas", "subscribe",
                             "--inventory", str(SMALL), "--prefecture", "HZ",
                             "--publisher-host", "127.0.0.1",
                             "--publisher-port", str(province.endpoint.port),
                             "--passfile", str(root / "replication.pgpass"))
        assert code == 0 and "subscribed" in out, err
        yield p
    finally:
        replica.stop()
        province.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_replica_holds_exactly_its_prefectures_rows(pair: Pair) -> None:
    in_sync(pair)
    accounts = pair.rows("replica", "accounts")
    assert accounts and {a[2] for a in accounts} == {"HZ"}
    assert pair.rows("province", "accounts", "prefecture = 'NB'")  # there, and not copied
    assert pair.rows("replica", "bills") and pair.rows("replica", "outages")


def test_changes_at_the_province_reach_the_replica(pair: Pair) -> None:
    in_sync(pair)
    [hz_account, *_] = pair.rows("replica", "accounts")
    account = hz_account[0]
    # A new bill (its prefecture comes from the account, by trigger), a corrected amount,
    # a new HZ outage, a new NB outage (must not arrive), a removed HZ outage.
    pair.run("province", "INSERT INTO bills (account_no, period, kwh, amount, due_date) "
             "VALUES (%s, '2031-01', 321, 160.50, '2031-02-15')", (account,))
    pair.run("province", "UPDATE bills SET amount = amount + 1 WHERE account_no = %s "
             "AND period <> '2031-01'", (account,))
    pair.run("province", "INSERT INTO outages (prefecture, county, planned, starts_at, ends_at, "
             "reason) VALUES ('HZ', NULL, true, now(), now() + interval '2 hours', "
             "'replication test'), ('NB', NULL, false, now(), now() + interval '1 hour', "
             "'not for HZ')")
    first_outage = pair.rows("province", "outages", "prefecture = 'HZ'")[0][0]
    pair.run("province", "DELETE FROM outages WHERE id = %s", (first_outage,))
    in_sync(pair)
    assert ("2031-01",) in [(b[1],) for b in pair.rows("replica", "bills")
                            if b[0] == account]
    assert all(o[0] != first_outage for o in pair.rows("replica", "outages"))
    assert not [o for o in pair.rows("replica", "outages") if o[6] == "not for HZ"]


def test_an_account_moving_to_another_prefecture_leaves_the_slice_with_its_bills(
        pair: Pair) -> None:
    in_sync(pair)
    account = pair.rows("replica", "accounts")[-1][0]
    assert [b for b in pair.rows("replica", "bills") if b[0] == account]
    pair.run("province", "UPDATE accounts SET prefecture = 'NB' WHERE account_no = %s",
             (account,))
    in_sync(pair)
    assert account not in {a[0] for a in pair.rows("replica", "accounts")}
    assert not [b for b in pair.rows("replica", "bills") if b[0] == account]
    pair.run("province", "UPDATE accounts SET prefecture = 'HZ' WHERE account_no = %s",
             (account,))  # and back: it returns with its bills
    in_sync(pair)
    assert [b for b in pair.rows("replica", "bills") if b[0] == account]


def test_status_on_both_sides_and_a_subscriber_gone(pair: Pair) -> None:
    in_sync(pair)
    code, out, _ = cli(pair.dsn("province"), "db", "replicas", "status", "--json")
    report = json.loads(out)
    pubs = {p["name"]: p for p in report["publications"]}
    assert pubs["pbxctl_selfservice_hz"]["slot_active"] is True
    assert pubs["pbxctl_selfservice_hz"]["state"] == "streaming"
    assert pubs["pbxctl_selfservice_nb"]["slot_active"] is None  # NB never subscribed
    assert code == 1 and report["healthy"] is False  # … which is worth a look

    code, out, _ = cli(pair.dsn("replica"), "db", "replicas", "status", "--json")
    [sub] = json.loads(out)["subscriptions"]
    assert sub["worker_running"] and sub["tables"] == {"ready": 3}
    assert code == 0

    # Subscribing again changes nothing (CREATE SUBSCRIPTION itself is not re-runnable).
    assert pair.province.endpoint is not None
    code, out, _ = cli(pair.dsn("replica"), "db", "replicas", "subscribe", "--inventory",
                       str(SMALL), "--prefecture", "HZ", "--publisher-host", "127.0.0.1",
                       "--publisher-port", str(pair.province.endpoint.port))
    assert code == 0 and "already subscribed" in out

    # The replica goes away: the province shows its slot not connected, and the bytes it is
    # holding back for it grow with every change.
    pair.replica.stop()
    try:
        def hz() -> dict[str, Any]:
            rep = json.loads(cli(pair.dsn("province"), "db", "replicas", "status", "--json")[1])
            pubs: dict[str, dict[str, Any]] = {p["name"]: p for p in rep["publications"]}
            return pubs["pbxctl_selfservice_hz"]
        wait_until(lambda: hz()["slot_active"] is False, timeout=30,
                   what="the province to see HZ's subscriber gone")
        before = hz()["lag_bytes"]
        pair.run("province", "UPDATE bills SET kwh = kwh + 1 WHERE prefecture = 'HZ'")
        assert hz()["lag_bytes"] > before
        code, out, _ = cli(pair.dsn("province"), "db", "replicas", "status")
        assert code == 1 and "NOT CONNECTED" in out
    finally:
        pair.replica.start()
    in_sync(pair)  # back: it catches up from its slot, nothing lost


def test_unknown_prefecture_and_unreachable_database(pair: Pair) -> None:
    code, _, err = cli(pair.dsn("replica"), "db", "replicas", "subscribe", "--inventory",
                       str(SMALL), "--prefecture", "XX")
    assert code == 2 and "XX not in the inventory (valid: HZ, NB)" in err
    code, _, err = cli("host=127.0.0.1 port=1 dbname=pbxctl user=postgres connect_timeout=2",
                       "db", "replicas", "status")
    assert code == 9 and "database unreachable" in err
