"""Work orders: created from an agent's call, dispatched to a county terminal seat, accepted,
done — or returned / escalated. Every change is one transaction that locks the order row
(SELECT … FOR UPDATE), checks the transition, bumps ``version`` and appends to the history;
a refused change raises InputError and changes nothing. Concurrent accept/return of one
order: the second waits for the first's lock, then finds the status moved and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pbxctl.core.errors import InputError
from pbxctl.data.ordertypes import ORDER_TYPES
from pbxctl.data.store import Store

# status -> statuses it may move to
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("dispatched",),
    "dispatched": ("accepted", "returned", "escalated"),
    "accepted": ("done", "returned"),
    "returned": ("dispatched", "escalated"),
    "escalated": ("dispatched",),
    "done": (),
}


class DispatchRules(Protocol):
    """What dispatching needs of the province: provisioning's ``Inventory`` is one. Kept as a
    protocol so that this floor (SQL) does not import the inventory model above it."""

    @property
    def source(self) -> str: ...

    def order_group(self, order_type: str) -> str | None: ...

    def county_seats(self, county: str) -> list[tuple[str, str]]:
        """(seat id, seat group) of the county's terminal seats; KeyError if unknown."""
        ...


OPEN = ("new", "dispatched", "accepted", "returned", "escalated")

_COLUMNS = ("id", "type", "account_no", "contact", "address", "description", "priority",
            "call_site", "call_linkedid", "recording", "prefecture", "county", "seat",
            "status", "version", "notify_attempts", "next_notify_at", "created_by",
            "created_at", "updated_at")


@dataclass(frozen=True)
class Order:
    id: int
    type: str
    account_no: str
    contact: str
    address: str
    description: str
    priority: int
    call_site: str
    call_linkedid: str
    recording: str
    prefecture: str
    county: str
    seat: str | None
    status: str
    version: int
    notify_attempts: int
    next_notify_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Event:
    at: datetime
    actor: str
    event: str
    from_status: str | None
    to_status: str | None
    note: str


def _order(row: tuple[Any, ...]) -> Order:
    return Order(*row)


def _select(where: str) -> str:
    return f"SELECT {', '.join(_COLUMNS)} FROM work_orders {where}"


def create(store: Store, inv: DispatchRules, *, type: str, account_no: str, created_by: str,
           description: str = "", contact: str = "", priority: int = 3,
           call_site: str = "", call_linkedid: str = "") -> Order:
    """Validate everything first (unknown account, county not in the inventory, a type the
    dispatch rules do not map): InputError and nothing written."""
    if type not in ORDER_TYPES:
        raise InputError(f"type {type!r}: not one of {', '.join(ORDER_TYPES)}")
    if inv.order_group(type) is None:
        raise InputError(f"type {type!r}: the dispatch rules map no seat group to it",
                         hint=f"add it under dispatch.types in {inv.source}")
    if not 1 <= priority <= 4:
        raise InputError(f"priority {priority}: 1 (urgent) to 4 (low)")
    rows = store.execute("SELECT prefecture, county, address, phone FROM accounts "
                         "WHERE account_no = %s", (account_no,))
    if not rows:
        raise InputError(f"account {account_no!r}: no such customer account")
    prefecture, county, address, phone = (str(v) for v in rows[0])
    try:
        inv.county_seats(county)
    except KeyError:
        raise InputError(f"account {account_no}: its county {county!r} is not in the "
                         f"inventory ({inv.source})") from None
    recording = ""
    if call_linkedid:
        rec = store.execute("SELECT uniqueid FROM call_records WHERE linkedid = %s "
                            "AND answered_at IS NOT NULL ORDER BY started_at LIMIT 1",
                            (call_linkedid,))
        recording = str(rec[0][0]) if rec else call_linkedid  # indexed later by the collector
    with store.transaction() as conn:
        row = conn.execute(
            "INSERT INTO work_orders (type, account_no, contact, address, description, "
            "priority, call_site, call_linkedid, recording, prefecture, county, created_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (type, account_no, contact or phone, address, description, priority, call_site,
             call_linkedid, recording, prefecture, county, created_by)).fetchone()
        assert row is not None
        conn.execute("INSERT INTO work_order_events (order_id, actor, event, to_status, note) "
                     "VALUES (%s, %s, 'created', 'new', %s)",
                     (row[0], created_by, f"{type} for {account_no}"
                      + (f", call {call_linkedid}" if call_linkedid else "")))
    return get(store, int(row[0]))


def get(store: Store, order_id: int) -> Order:
    rows = store.execute(_select("WHERE id = %s"), (order_id,))
    if not rows:
        raise InputError(f"work order {order_id}: no such order")
    return _order(rows[0])


def history(store: Store, order_id: int) -> list[Event]:
    rows = store.execute("SELECT at, actor, event, from_status, to_status, note "
                         "FROM work_order_events WHERE order_id = %s ORDER BY id", (order_id,))
    return [Event(*r) for r in rows]  # type: ignore[arg-type]


def _locked(conn: Any, order_id: int) -> Order:
    row = conn.execute(_select("WHERE id = %s FOR UPDATE"), (order_id,)).fetchone()
    if row is None:
        raise InputError(f"work order {order_id}: no such order")
    return _order(row)


def _move(conn: Any, order: Order, to: str, *, actor: str, event: str, note: str = "",
          extra_sql: str = "", extra: tuple[Any, ...] = (),
          expect_version: int | None = None) -> None:
    if expect_version is not None and order.version != expect_version:
        raise InputError(f"work order {order.id} changed since version {expect_version} "
                         f"(now {order.status}, version {order.version}): nothing done",
                         hint="`pbxctl orders show` has its history")
    if to not in TRANSITIONS[order.status]:
        raise InputError(f"work order {order.id} is {order.status}: cannot become {to}",
                         hint="`pbxctl orders show` has its history")
    conn.execute(f"UPDATE work_orders SET status = %s, version = version + 1, "
                 f"updated_at = now(){extra_sql} WHERE id = %s", (to, *extra, order.id))
    conn.execute("INSERT INTO work_order_events (order_id, actor, event, from_status, "
                 "to_status, note) VALUES (%s, %s, %s, %s, %s, %s)",
                 (order.id, actor, event, order.status, to, note))


def dispatch(store: Store, inv: DispatchRules, order_id: int, *, actor: str,
             seat: str | None = None) -> Order:
    """Assign a terminal seat of the order's county and group (the least loaded one, or
    ``seat``). Idempotent: an order already dispatched keeps its assignment."""
    with store.transaction() as conn:
        order = _locked(conn, order_id)
        if order.status == "dispatched" and (seat is None or seat == order.seat):
            return order  # a retry: no second assignment
        group = inv.order_group(order.type)
        if group is None:
            raise InputError(f"work order {order_id}: no seat group for type {order.type!r}")
        candidates = [sid for sid, g in inv.county_seats(order.county) if g == group]
        if seat is not None:
            if seat not in candidates:
                raise InputError(f"seat {seat!r} is not a {group} seat of county {order.county}"
                                 f" (those are: {', '.join(candidates) or 'none'})")
            chosen = seat
        elif not candidates:
            raise InputError(f"county {order.county} has no terminal seat in group {group!r}")
        else:
            load = dict(conn.execute(
                "SELECT seat, count(*) FROM work_orders WHERE seat = ANY(%s) AND status IN "
                "('dispatched', 'accepted') GROUP BY seat", (candidates,)).fetchall())
            chosen = min(candidates, key=lambda s: (load.get(s, 0), s))
        _move(conn, order, "dispatched", actor=actor, event="dispatched",
              note=f"to {chosen} ({group})",
              extra_sql=", seat = %s, notify_attempts = 0, next_notify_at = now()",
              extra=(chosen,))
    return get(store, order_id)


# ``expect_version``: the version the actor saw (optimistic concurrency). Two people acting
# on the order they both saw dispatched: one wins, the other is refused, even where the
# second move would be legal on its own (accepted → returned).
def accept(store: Store, order_id: int, *, seat: str, actor: str,
           expect_version: int | None = None) -> Order:
    with store.transaction() as conn:
        order = _locked(conn, order_id)
        if order.seat != seat:
            raise InputError(f"work order {order_id} is assigned to {order.seat}, not {seat}")
        _move(conn, order, "accepted", actor=actor, event="accepted",
              expect_version=expect_version)
    return get(store, order_id)


def return_order(store: Store, order_id: int, *, reason: str, actor: str,
                 expect_version: int | None = None, seat: str | None = None) -> Order:
    """``seat``: the terminal seat acting (phone, console) — it may return only an order
    dispatched to it; None for the prefecture's staff (CLI)."""
    if not reason.strip():
        raise InputError("a returned order needs a reason")
    with store.transaction() as conn:
        order = _locked(conn, order_id)
        if seat is not None and order.seat != seat:
            raise InputError(f"work order {order_id} is not dispatched to {seat}")
        _move(conn, order, "returned", actor=actor, event="returned", note=reason,
              expect_version=expect_version)
    return get(store, order_id)


def close(store: Store, order_id: int, *, actor: str, note: str = "") -> Order:
    with store.transaction() as conn:
        _move(conn, _locked(conn, order_id), "done", actor=actor, event="done", note=note)
    return get(store, order_id)


def escalate(store: Store, order_id: int, *, actor: str, reason: str) -> Order:
    with store.transaction() as conn:
        _move(conn, _locked(conn, order_id), "escalated", actor=actor, event="escalated",
              note=reason)
    return get(store, order_id)


def note_notify(store: Store, order_id: int, *, attempt: int, next_at: datetime,
                note: str) -> None:
    """Record one call to the seat (history) and when the next may be placed."""
    with store.transaction() as conn:
        conn.execute("UPDATE work_orders SET notify_attempts = %s, next_notify_at = %s "
                     "WHERE id = %s", (attempt, next_at, order_id))
        conn.execute("INSERT INTO work_order_events (order_id, actor, event, note) "
                     "VALUES (%s, 'dispatcher', 'notify', %s)", (order_id, note))


def due_for_notify(store: Store, *, now: datetime) -> list[Order]:
    rows = store.execute(_select("WHERE status = 'dispatched' AND next_notify_at <= %s "
                                 "ORDER BY priority, id"), (now,))
    return [_order(r) for r in rows]


def list_orders(store: Store, *, county: str | None = None, status: str | None = None,
                older_than: timedelta | None = None, limit: int = 200,
                prefecture: str | None = None) -> list[Order]:
    conds: list[str] = []
    params: list[object] = []
    if prefecture:
        conds.append("prefecture = %s")
        params.append(prefecture)
    if county:
        conds.append("county = %s")
        params.append(county)
    if status == "open":
        conds.append("status <> 'done'")
    elif status:
        if status not in TRANSITIONS:
            raise InputError(f"status {status!r}: one of {', '.join(TRANSITIONS)} or open")
        conds.append("status = %s")
        params.append(status)
    if older_than:
        conds.append("created_at <= now() - %s")
        params.append(older_than)
    where = ("WHERE " + " AND ".join(conds)) if conds else ""
    rows = store.execute(_select(f"{where} ORDER BY id DESC LIMIT %s"), (*params, limit))
    return [_order(r) for r in rows]


AGE_BUCKETS = (("<1h", 3600), ("1-4h", 4 * 3600), ("4-24h", 86400), (">1d", None))


def open_report(store: Store) -> dict[str, dict[str, int]]:
    """Open orders per county by age bucket."""
    rows = store.execute("SELECT county, extract(epoch FROM now() - created_at) "
                         "FROM work_orders WHERE status <> 'done'")
    out: dict[str, dict[str, int]] = {}
    for county, age in rows:
        counts = out.setdefault(str(county), {b: 0 for b, _ in AGE_BUCKETS})
        for name, limit in AGE_BUCKETS:
            if limit is None or float(str(age)) < limit:
                counts[name] += 1
                break
    return out


def list_for_account(store: Store, account_no: str, *, limit: int = 20) -> list[Order]:
    """The account's open orders, newest first (the agent's screen pop)."""
    rows = store.execute(_select("WHERE account_no = %s AND status <> 'done' "
                                 "ORDER BY id DESC LIMIT %s"), (account_no, limit))
    return [_order(r) for r in rows]
