"""Self-service queries: account, latest unpaid bill, outages for an area."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pbxctl.data.store import Store


@dataclass(frozen=True)
class Account:
    account_no: str
    holder: str
    prefecture: str
    county: str


@dataclass(frozen=True)
class Bill:
    period: str
    kwh: int
    amount: Decimal
    due_date: date
    paid: bool = False


@dataclass(frozen=True)
class Outage:
    id: int
    planned: bool
    starts_at: datetime
    ends_at: datetime
    notice_prompt: str | None


def account(store: Store, account_no: str) -> Account | None:
    rows = store.execute("SELECT account_no, holder, prefecture, county FROM accounts "
                         "WHERE account_no = %s", (account_no,))
    return Account(*(str(v) for v in rows[0])) if rows else None


def latest_unpaid_bill(store: Store, account_no: str) -> Bill | None:
    rows = store.execute("SELECT period, kwh, amount, due_date FROM bills WHERE account_no = %s "
                         "AND NOT paid ORDER BY period DESC LIMIT 1", (account_no,))
    if not rows:
        return None
    period, kwh, amount, due = rows[0]
    assert isinstance(amount, Decimal) and isinstance(due, date)
    return Bill(str(period), int(str(kwh)), amount, due)


def outages_for(store: Store, *, prefecture: str, county: str | None, now: datetime
                ) -> list[Outage]:
    """Current and upcoming outages (next 7 days) for a county, or a whole prefecture."""
    rows = store.execute(
        "SELECT id, planned, starts_at, ends_at, notice_prompt FROM outages "
        "WHERE prefecture = %s AND (county IS NULL OR %s::text IS NULL OR county = %s) "
        "AND ends_at > %s AND starts_at < %s ORDER BY starts_at LIMIT 3",
        (prefecture, county, county, now, now + timedelta(days=7)))
    out = []
    for r in rows:
        assert isinstance(r[2], datetime) and isinstance(r[3], datetime)
        out.append(Outage(int(str(r[0])), bool(r[1]), r[2], r[3],
                          None if r[4] is None else str(r[4])))
    return out


# -- sample data ------------------------------------------------------------------------
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ["建国", "秀英", "丽华", "志强", "海燕", "伟", "芳", "军", "敏", "静"]
ROADS = ["解放路", "人民路", "中山路", "建设路", "文化路", "新华路", "胜利路", "和平路"]


def sample_rows(prefectures: list[dict[str, Any]], *, now: datetime, seed: int = 95598
                ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Deterministic accounts/bills/outages for an inventory: ``prefectures`` is a list of
    {code, index, counties: [{code, name}]}. Account numbers: 33 + prefecture + county + seq."""
    rng = random.Random(seed)
    accounts, bills, outages = [], [], []
    today = now.date()
    first_of_month = today.replace(day=1)
    for p in prefectures:
        for ci, county in enumerate(p["counties"], start=1):
            for seq in range(1, 6):
                no = f"33{p['index']:02d}{ci:02d}{seq:04d}"
                holder = rng.choice(SURNAMES) + rng.choice(GIVEN)
                addr = f"{county['name']}{rng.choice(ROADS)}{rng.randint(1, 300)}号"
                accounts.append((no, holder, p["code"], county["code"], addr,
                                 f"1{rng.randint(3000000000, 8999999999)}"))
                for back in range(3):
                    month_start = (first_of_month - timedelta(days=28 * back + 1)).replace(day=1)
                    kwh = rng.randint(80, 900)
                    amount = (Decimal(kwh) * Decimal("0.538")).quantize(Decimal("0.01"))
                    due = month_start + timedelta(days=45)
                    bills.append((no, month_start.strftime("%Y-%m"), kwh, amount, due,
                                  back > 0))
        counties = p["counties"]
        current = counties[0]["code"]
        planned = counties[-1]["code"]
        start = now.replace(minute=0, second=0, microsecond=0)
        outages.append((p["code"], current, False, start - timedelta(hours=1),
                        start + timedelta(hours=3), "线路故障抢修", None))
        outages.append((p["code"], planned, True, start + timedelta(days=2, hours=8 - start.hour),
                        start + timedelta(days=2, hours=17 - start.hour), "计划检修", None))
    return accounts, bills, outages


def seed_sample_data(store: Store, prefectures: list[dict[str, Any]], *,
                     now: datetime | None = None) -> tuple[int, int, int]:
    """Insert sample data (idempotent: existing rows are left as they are)."""
    accounts, bills, outages = sample_rows(prefectures, now=now or datetime.now(UTC))
    for row in accounts:
        store.execute("INSERT INTO accounts VALUES (%s, %s, %s, %s, %s, %s) "
                      "ON CONFLICT DO NOTHING", row)
    for row in bills:
        store.execute("INSERT INTO bills VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                      row)
    if not store.execute("SELECT 1 FROM outages LIMIT 1"):
        for row in outages:
            store.execute("INSERT INTO outages (prefecture, county, planned, starts_at, ends_at, "
                          "reason, notice_prompt) VALUES (%s, %s, %s, %s, %s, %s, %s)", row)
    return len(accounts), len(bills), len(outages)
