"""Handler scenarios shared by both transports: the Asterisk integration tests run them over
FastAGI with real SIPp calls (tests/integration/test_selfservice_calls.py), the FreeSWITCH
tests over ESL against the protocol-speaking peer (tests/integration/test_esl_handlers.py).

A scenario: the route, what the caller keys at each digit prompt, the channel variables the
handler must leave, and a run of prompts that must be played in that order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ivr_scripts import phrases
from pbxctl.core import chanvars as V
from pbxctl.data.selfservice import latest_unpaid_bill
from pbxctl.data.store import Store

ACCOUNT = "3301010001"  # sample data: Hangzhou, county HZXS


@dataclass(frozen=True)
class Expected:
    variables: dict[str, str]
    played: list[str]  # consecutive prompt ids (folder names) the handler plays


@dataclass(frozen=True)
class Scenario:
    name: str
    route: str
    keys: list[str]  # one entry per digit prompt; AGI callers append "#" where needed
    expect: Callable[[Store], Expected]


def _bill(store: Store) -> Expected:
    bill = latest_unpaid_bill(store, ACCOUNT)
    assert bill is not None, "sample data has an unpaid bill for the account"
    return Expected(
        {V.STATUS: V.STATUS_OK, V.NEXT: V.NEXT_DONE, V.ACCOUNT: ACCOUNT,
         V.BILL_AMOUNT: str(bill.amount), V.BILL_PERIOD: bill.period,
         V.BILL_DUE: bill.due_date.isoformat()},
        ["bill-period", *phrases.period(bill.period), "bill-amount",
         *phrases.money(str(bill.amount)), "bill-due", *phrases.day(bill.due_date)])


def _outage(store: Store) -> Expected:
    return Expected({V.STATUS: V.STATUS_OK, V.NEXT: V.NEXT_DONE, V.OUTAGES: "2"},
                    ["enter-account-or-area", "outage-current", "outage-from"])


def _wrong_account(store: Store) -> Expected:
    return Expected({V.STATUS: V.STATUS_OK, V.NEXT: V.NEXT_AGENT,
                     V.SVC_RESULT: "wrong-input"},
                    ["enter-account", "account-invalid", "enter-account", "account-invalid",
                     "enter-account", "transfer"])


def _welcome(store: Store) -> Expected:
    # The catalogue's default rule names the published welcome by id and version; nothing
    # is played by the handler: the PBX plays that file from its own disk.
    return Expected({V.STATUS: V.STATUS_OK, V.WELCOME_PROMPT: "welcome-default/v1"}, [])


SCENARIOS = [
    Scenario("welcome", "welcome", [], _welcome),
    Scenario("bill", "bill", [ACCOUNT], _bill),
    Scenario("outage-by-area", "outage", [""], _outage),
    Scenario("bill-wrong-account-three-times", "bill", ["12", "34", "56"], _wrong_account),
]


def contiguous(seq: list[str], sub: list[str]) -> bool:
    return any(seq[i:i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))
