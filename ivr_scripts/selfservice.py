"""24x7 self-service handlers: electricity bill and outage information, against PostgreSQL.

The caller's input comes by DTMF; answers are spoken by the PBX from its own published
prompt files. Three wrong inputs, or a database that is down or slow (bounded by the store's
timeouts), end in an agent route — the call is never dropped.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ivr_scripts import phrases
from ivr_scripts.call import Call, DialplanBreak
from ivr_scripts.registry import HandlerContext
from pbxctl.core import chanvars as V
from pbxctl.core.dtmf import is_digits
from pbxctl.core.errors import StoreUnavailable
from pbxctl.data.selfservice import Account, account, latest_unpaid_bill, outages_for

log = logging.getLogger("pbxctl.agi")

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
ACCOUNT_DIGITS = 10
MAX_TRIES = 3
INPUT_TIMEOUT_MS = 8000


class Speaker:
    """Plays published prompts from the PBX's own prompt folder."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.dir = call.get_variable(V.PROMPT_DIR)
        if not self.dir:
            raise DialplanBreak("no-prompt-dir")

    def path(self, prompt_id: str) -> str:
        return f"{self.dir}/{prompt_id}/current"

    def play(self, *prompt_ids: str) -> None:
        for pid in prompt_ids:
            self.call.play(self.path(pid))

    def ask(self, prompt_id: str, *, max_digits: int) -> str:
        return self.call.collect_digits(self.path(prompt_id), max_digits=max_digits,
                                        timeout_ms=INPUT_TIMEOUT_MS)


def _to_agent(call: Call, say: Speaker, reason: str) -> None:
    log.info("self-service %s → agent: %s", call.uniqueid, reason)
    call.set_variable(V.SVC_RESULT, reason)
    call.set_variable(V.NEXT, V.NEXT_AGENT)
    say.play("apology" if reason == "store-unavailable" else "transfer")


class _StoreDown(Exception):
    pass


def _lookup(ctx: HandlerContext, account_no: str) -> Account | None:
    if ctx.store is None:
        raise _StoreDown
    try:
        return account(ctx.store, account_no)
    except StoreUnavailable as exc:
        raise _StoreDown from exc


def _ask_account(call: Call, ctx: HandlerContext, say: Speaker, prompt: str, *,
                 allow_empty: bool = False) -> Account | str | None:
    """An account, "" (caller chose the area: empty input when allowed), or None after
    three wrong inputs (already routed to an agent). Raises _StoreDown."""
    for attempt in range(1, MAX_TRIES + 1):
        digits = say.ask(prompt, max_digits=ACCOUNT_DIGITS)
        if digits == "" and allow_empty:
            return ""
        if is_digits(digits, length=ACCOUNT_DIGITS):
            acct = _lookup(ctx, digits)
            if acct is not None:
                return acct
        log.info("self-service %s: wrong input %d/%d", call.uniqueid, attempt, MAX_TRIES)
        if attempt < MAX_TRIES:
            say.play("account-invalid")
    _to_agent(call, say, "wrong-input")
    return None


def bill(call: Call, ctx: HandlerContext) -> None:
    """Electricity bill: account by DTMF (ended by #), then period, amount and due date."""
    say = Speaker(call)
    call.set_variable(V.NEXT, V.NEXT_DONE)
    try:
        acct = _ask_account(call, ctx, say, "enter-account")
        if not isinstance(acct, Account):
            return
        assert ctx.store is not None
        try:
            latest = latest_unpaid_bill(ctx.store, acct.account_no)
        except StoreUnavailable as exc:
            raise _StoreDown from exc
    except _StoreDown:
        _to_agent(call, say, "store-unavailable")
        return
    call.set_variable(V.ACCOUNT, acct.account_no)
    if latest is None:
        say.play("bill-none")
        return
    call.set_variable(V.BILL_PERIOD, latest.period)
    call.set_variable(V.BILL_AMOUNT, str(latest.amount))
    call.set_variable(V.BILL_DUE, latest.due_date.isoformat())
    say.play("bill-period", *phrases.period(latest.period))
    say.play("bill-amount", *phrases.money(str(latest.amount)))
    say.play("bill-due", *phrases.day(latest.due_date))


def outage(call: Call, ctx: HandlerContext) -> None:
    """Outage information for the caller's account area (or, on a bare #, the prefecture)."""
    say = Speaker(call)
    call.set_variable(V.NEXT, V.NEXT_DONE)
    prefecture, county = call.params.get("pref", ""), None
    try:
        acct = _ask_account(call, ctx, say, "enter-account-or-area", allow_empty=True)
        if acct is None:
            return
        if isinstance(acct, Account):
            prefecture, county = acct.prefecture, acct.county
            call.set_variable(V.ACCOUNT, acct.account_no)
        assert ctx.store is not None
        try:
            found = outages_for(ctx.store, prefecture=prefecture, county=county,
                                now=datetime.now(UTC))
        except StoreUnavailable as exc:
            raise _StoreDown from exc
    except _StoreDown:
        _to_agent(call, say, "store-unavailable")
        return
    call.set_variable(V.OUTAGES, str(len(found)))
    if not found:
        say.play("outage-none")
        return
    for o in found:
        say.play("outage-planned" if o.planned else "outage-current")
        if o.notice_prompt:
            say.play(o.notice_prompt)
        say.play("outage-from", *phrases.moment(o.starts_at.astimezone(LOCAL_TZ)))
        say.play("outage-to", *phrases.moment(o.ends_at.astimezone(LOCAL_TZ)))
