"""Handler scenarios shared by both transports: the Asterisk integration tests run them over
FastAGI with real SIPp calls (tests/integration/test_selfservice_calls.py), the FreeSWITCH
tests over ESL (tests/integration/test_esl_handlers.py).

A scenario: the route, what the caller keys at each digit prompt, the channel variables the
handler must leave, and a run of prompts that must be played in that order.

The expectations are written here by hand: a bill the test itself inserts (`seed_oracle_bill`)
and the exact prompt ids a caller must hear for it. Nothing is computed with the functions the
handlers use (`latest_unpaid_bill`, `phrases.money/period/day`), so a wrong word in one of them
fails these scenarios instead of agreeing with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbxctl.core import chanvars as V
from pbxctl.data.store import Store

ORACLE_ACCOUNT = "3301010099"  # not in the sample data: inserted by seed_oracle_bill


def seed_oracle_bill(store: Store) -> None:
    """One account with a paid later bill and an unpaid earlier one: the handler must pick
    the latest *unpaid* bill (2026-10), not the latest bill."""
    store.execute("INSERT INTO accounts VALUES (%s, '测试户', 'HZ', 'HZXS', '萧山测试路1号', '') "
                  "ON CONFLICT DO NOTHING", (ORACLE_ACCOUNT,))
    for period, kwh, amount, due, paid in (("2026-09", 410, "220.58", "2026-10-15", False),
                                           ("2026-10", 612, "329.26", "2026-11-15", False),
                                           ("2026-11", 500, "269.00", "2026-12-15", True)):
        store.execute("INSERT INTO bills VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                      (ORACLE_ACCOUNT, period, kwh, amount, due, paid))


# zh-<code point> is the fragment naming scheme (docs/prompts.md); written out by hand.
# 二零二六年十月 / 三百二十九元二角六分 / 二零二六年十一月十五日
PERIOD_2026_10 = ["zh-4e8c", "zh-96f6", "zh-4e8c", "zh-516d", "zh-5e74", "zh-5341", "zh-6708"]
AMOUNT_329_26 = ["zh-4e09", "zh-767e", "zh-4e8c", "zh-5341", "zh-4e5d", "zh-5143", "zh-4e8c",
                 "zh-89d2", "zh-516d", "zh-5206"]
DUE_2026_11_15 = ["zh-4e8c", "zh-96f6", "zh-4e8c", "zh-516d", "zh-5e74", "zh-5341", "zh-4e00",
                  "zh-6708", "zh-5341", "zh-4e94", "zh-65e5"]


@dataclass(frozen=True)
class Expected:
    variables: dict[str, str]
    played: list[str]  # consecutive prompt ids (folder names) the handler plays; never empty


@dataclass(frozen=True)
class Scenario:
    name: str
    route: str
    keys: list[str]  # one entry per digit prompt; AGI callers append "#" where needed
    expect: Expected


BILL = Expected(
    {V.STATUS: V.STATUS_OK, V.NEXT: V.NEXT_DONE, V.ACCOUNT: ORACLE_ACCOUNT,
     V.BILL_AMOUNT: "329.26", V.BILL_PERIOD: "2026-10", V.BILL_DUE: "2026-11-15"},
    ["enter-account", "bill-period", *PERIOD_2026_10, "bill-amount", *AMOUNT_329_26,
     "bill-due", *DUE_2026_11_15])

OUTAGE = Expected({V.STATUS: V.STATUS_OK, V.NEXT: V.NEXT_DONE, V.OUTAGES: "2"},
                  ["enter-account-or-area", "outage-current", "outage-from"])

WRONG_ACCOUNT = Expected({V.STATUS: V.STATUS_OK, V.NEXT: V.NEXT_AGENT,
                          V.SVC_RESULT: "wrong-input"},
                         ["enter-account", "account-invalid", "enter-account", "account-invalid",
                          "enter-account", "transfer"])

SCENARIOS = [
    Scenario("bill", "bill", [ORACLE_ACCOUNT], BILL),
    Scenario("outage-by-area", "outage", [""], OUTAGE),
    Scenario("bill-wrong-account-three-times", "bill", ["12", "34", "56"], WRONG_ACCOUNT),
]

# The welcome: the catalogue's default rule names the published welcome by id and version;
# the handler plays nothing, the PBX plays that file from its own disk.
WELCOME = {V.STATUS: V.STATUS_OK, V.WELCOME_PROMPT: "welcome-default/v1"}


def contiguous(seq: list[str], sub: list[str]) -> bool:
    """`sub` occurs in `seq` as one unbroken run. An empty `sub` is a mistake in the test
    (it would match anything), not a pass."""
    if not sub:
        raise ValueError("contiguous() with nothing to look for proves nothing")
    return any(seq[i:i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))
