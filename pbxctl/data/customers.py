"""What an agent's screen shows about a caller whose account self-service identified: the
customer, the last three bills, current and planned outages for their area, and the open work
orders of the account. One read, bounded by the store's statement timeout."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from pbxctl.data.orders import Order, list_for_account
from pbxctl.data.selfservice import Bill
from pbxctl.data.store import Store


@dataclass(frozen=True)
class Outage:
    planned: bool
    starts_at: datetime
    ends_at: datetime
    reason: str
    county: str | None


@dataclass(frozen=True)
class Customer:
    account_no: str
    holder: str
    prefecture: str
    county: str
    address: str
    phone: str
    bills: list[Bill] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    open_orders: list[Order] = field(default_factory=list)


def customer(store: Store, account_no: str, *, now: datetime) -> Customer | None:
    rows = store.execute("SELECT account_no, holder, prefecture, county, address, phone "
                         "FROM accounts WHERE account_no = %s", (account_no,))
    if not rows:
        return None
    acct = [str(v) for v in rows[0]]
    bills = [Bill(str(r[0]), int(str(r[1])), Decimal(str(r[2])), r[3], bool(r[4]))  # type: ignore[arg-type]
             for r in store.execute(
                 "SELECT period, kwh, amount, due_date, paid FROM bills WHERE account_no = %s "
                 "ORDER BY period DESC LIMIT 3", (account_no,))]
    outages = [Outage(bool(r[0]), r[1], r[2], str(r[3]), r[4])  # type: ignore[arg-type]
               for r in store.execute(
                   "SELECT planned, starts_at, ends_at, reason, county FROM outages "
                   "WHERE prefecture = %s AND (county IS NULL OR county = %s) AND ends_at > %s "
                   "ORDER BY starts_at LIMIT 10", (acct[2], acct[3], now))]
    return Customer(account_no=acct[0], holder=acct[1], prefecture=acct[2], county=acct[3],
                    address=acct[4], phone=acct[5], bills=bills, outages=outages,
                    open_orders=list_for_account(store, account_no))
