"""Work orders against a real PostgreSQL: bad input changes nothing, dispatch is idempotent,
concurrent accept/return of one order has exactly one winner, and the CLI lists, shows and
reports with filters."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from pbxctl.cli import main
from pbxctl.core.errors import InputError
from pbxctl.data.orders import accept, create, dispatch, get, history, return_order
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store, StoreConfig
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.sample import seed_input

pytestmark = pytest.mark.pg

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"
HZ_ACCOUNT = "3301010001"  # sample data: Hangzhou, county HZXS
NB_ACCOUNT = "3302010001"  # Ningbo: its county "NB" is not in the inventory


@pytest.fixture
def inv() -> Inventory:
    return load_inventory(SMALL)


@pytest.fixture
def db(fresh_db: Store, inv: Inventory) -> Store:
    seed_sample_data(fresh_db, seed_input(inv))
    return fresh_db


def count(store: Store) -> tuple[int, int]:
    o = store.execute("SELECT count(*) FROM work_orders")[0][0]
    e = store.execute("SELECT count(*) FROM work_order_events")[0][0]
    assert isinstance(o, int) and isinstance(e, int)
    return o, e


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"type": "repair", "account_no": "9999999999"}, "no such customer account"),
    ({"type": "repair", "account_no": NB_ACCOUNT}, "county 'NB' is not in the inventory"),
    ({"type": "other", "account_no": HZ_ACCOUNT}, "map no seat group"),
    ({"type": "teleport", "account_no": HZ_ACCOUNT}, "not one of"),
])
def test_bad_input_is_refused_and_writes_nothing(db: Store, inv: Inventory,
                                                 kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        create(db, inv, created_by="hz-a001", **kwargs)  # type: ignore[arg-type]
    assert count(db) == (0, 0)


def test_dispatch_is_idempotent_and_a_second_accept_changes_nothing(
        db: Store, inv: Inventory) -> None:
    order = create(db, inv, type="repair", account_no=HZ_ACCOUNT, created_by="hz-a001")
    first = dispatch(db, inv, order.id, actor="hz-a001")
    again = dispatch(db, inv, order.id, actor="retry")  # e.g. a retried request
    assert (first.seat, first.status) == ("hzxs-t01", "dispatched")
    assert again.version == first.version
    assert [e.event for e in history(db, order.id)] == ["created", "dispatched"]
    accept(db, order.id, seat="hzxs-t01", actor="hzxs-t01")
    before = count(db)
    with pytest.raises(InputError, match="is accepted: cannot become accepted"):
        accept(db, order.id, seat="hzxs-t01", actor="hzxs-t01")
    with pytest.raises(InputError, match="assigned to hzxs-t01, not nb-a001"):
        accept(db, order.id, seat="nb-a001", actor="x")
    assert count(db) == before and get(db, order.id).status == "accepted"


def test_concurrent_accept_and_return_have_exactly_one_winner(
        db: Store, inv: Inventory) -> None:
    order = dispatch(db, inv, create(db, inv, type="meter", account_no=HZ_ACCOUNT,
                                     created_by="hz-a001").id, actor="hz-a001")
    # Each contender on its own connection pool, released at the same moment, acting on the
    # version of the order it saw (dispatched).
    stores = [Store(config=StoreConfig(conninfo=db.config.conninfo)) for _ in range(8)]
    for s in stores:
        s.open()
    gate = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def contend(i: int) -> None:
        gate.wait(timeout=10)
        try:
            if i % 2:
                accept(stores[i], order.id, seat="hzxs-t01", actor=f"t{i}",
                       expect_version=order.version)
                outcomes.append("accepted")
            else:
                return_order(stores[i], order.id, reason="wrong county", actor=f"t{i}",
                             expect_version=order.version)
                outcomes.append("returned")
        except InputError:
            outcomes.append("refused")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for s in stores:
        s.close()
    winners = [o for o in outcomes if o != "refused"]
    assert len(outcomes) == len(stores) and len(winners) == 1
    final = get(db, order.id)
    assert final.status == winners[0] and final.version == order.version + 1
    assert [e.event for e in history(db, order.id)][-1] == winners[0]


def cli(db: Store, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--dsn", db.config.conninfo], environ={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_create_list_show_return_close_report(db: Store) -> None:
    code, out, err = cli(db, "orders", "create", "--inventory", str(SMALL), "--type", "repair",
                         "--account", HZ_ACCOUNT, "--actor", "hz-a001", "--json")
    assert code == 0, err
    order = json.loads(out)
    assert (order["status"], order["seat"], order["county"]) == ("dispatched", "hzxs-t01",
                                                                 "HZXS")
    code, _, err = cli(db, "orders", "create", "--inventory", str(SMALL), "--type", "other",
                       "--account", HZ_ACCOUNT, "--actor", "hz-a001")
    assert code == 3 and "map no seat group" in err
    code, out, _ = cli(db, "orders", "list", "--county", "HZXS", "--status", "open", "--json")
    assert code == 0 and [o["id"] for o in json.loads(out)] == [order["id"]]
    assert json.loads(cli(db, "orders", "list", "--county", "NB", "--json")[1]) == []
    assert cli(db, "orders", "accept", str(order["id"]), "--seat", "hzxs-t01")[0] == 0
    code, out, _ = cli(db, "orders", "close", str(order["id"]), "--actor", "hzxs-t01",
                       "--note", "meter replaced")
    assert code == 0 and "accepted→done" in out and "meter replaced" in out
    code, _, err = cli(db, "orders", "return", str(order["id"]), "--actor", "x",
                       "--reason", "late")
    assert code == 3 and "is done: cannot become returned" in err
    second = json.loads(cli(db, "orders", "create", "--inventory", str(SMALL), "--type",
                            "meter", "--account", HZ_ACCOUNT, "--actor", "hz-a002",
                            "--json")[1])
    code, out, _ = cli(db, "orders", "report", "--json")
    assert code == 0 and json.loads(out) == {"HZXS": {"<1h": 1, "1-4h": 0, "4-24h": 0,
                                                      ">1d": 0}}
    code, out, _ = cli(db, "orders", "show", str(second["id"]))
    assert code == 0 and "new→dispatched" in out and "to hzxs-t01 (field)" in out


def test_a_seat_may_return_only_an_order_dispatched_to_it(db: Store, inv: Inventory) -> None:
    order = create(db, inv, type="repair", account_no=HZ_ACCOUNT, created_by="hz-a001")
    order = dispatch(db, inv, order.id, actor="hz-a001")
    with pytest.raises(InputError, match="not dispatched to other-seat"):
        return_order(db, order.id, reason="not mine", actor="x", seat="other-seat")
    assert get(db, order.id).status == "dispatched"
    assert [e.event for e in history(db, order.id)][-1] == "dispatched"  # nothing written
    returned = return_order(db, order.id, reason="wrong county", actor="t", seat=order.seat)
    assert returned.status == "returned"
