"""Call-time handlers. Each computes and sets channel variables; the dialplan owns the call."""

from __future__ import annotations

import logging

from ivr_scripts.call import Call, DialplanBreak
from ivr_scripts.calllog import Entry
from ivr_scripts.catalog import choose_welcome
from ivr_scripts.orders import order_answer, order_create
from ivr_scripts.registry import HandlerContext, Registry
from ivr_scripts.selfservice import bill, outage
from pbxctl.core import chanvars as V
from pbxctl.core.errors import StoreUnavailable
from pbxctl.data.prompts import record_drift
from pbxctl.data.selfservice import account

log = logging.getLogger("pbxctl.agi")

DEFAULT_WELCOME = "hello-world"


def ping(call: Call, ctx: HandlerContext) -> None:
    """Health check: success means the server answered and ran a handler; it also reports
    the server's counters (``PBXCTL_HEALTH``: ``refused_peers=3 over_capacity=0 …``)."""
    if ctx.health is not None:
        counters = ctx.health()
        call.set_variable(V.HEALTH, " ".join(f"{k}={v}" for k, v in sorted(counters.items())))


def welcome(call: Call, ctx: HandlerContext) -> None:
    """Decide the welcome prompt this call plays from the PBX's own disk.

    Central control, local playback: only the prompt's name (``<id>/v<version>``) crosses the
    link. The catalogue's rules pick it (prefecture, caller's area, time window, priority);
    ``ctx.fixed_welcome`` maps a DID to a fixed stock prompt (the one-site lab demo).
    """
    fixed = ctx.fixed_welcome
    if fixed:
        prompt = fixed.get(call.dnid, fixed.get("default", DEFAULT_WELCOME))
    else:
        snap = ctx.catalog.snapshot() if ctx.catalog is not None else None
        prompt = choose_welcome(snap, prefecture=call.params.get("pref", ""),
                                caller=call.caller, now=ctx.clock())
    call.set_variable(V.WELCOME_PROMPT, prompt)
    if ctx.call_log is not None:  # written off the call path
        ctx.call_log.record(Entry(call.uniqueid, "welcome", call.dnid, call.caller, prompt))


def prompt_missing(call: Call, ctx: HandlerContext) -> None:
    """The PBX did not find the prompt file it was told to play: record the drift."""
    site, prompt = call.params.get("site", "?"), call.params.get("prompt", "?")
    log.warning("prompt drift: %s lacks %s (call %s)", site, prompt, call.uniqueid)
    if ctx.store is not None:
        try:
            record_drift(ctx.store, site=site, prompt=prompt, uniqueid=call.uniqueid,
                         problem="file missing at call time")
        except StoreUnavailable as exc:
            log.warning("prompt drift not recorded: %s", exc)


def route(call: Call, ctx: HandlerContext) -> None:
    """Which prefecture's queue takes this caller, and is it open (business hours)?

    Needs the routing table (``agi serve --inventory``); the account, when self-service
    identified one, is looked up in the store; a store outage only loses that hint.
    """
    table = ctx.routing
    if table is None:
        raise DialplanBreak("routing-not-configured")
    account_no = call.get_variable(V.ACCOUNT)
    account_pref = None
    if account_no and ctx.store is not None:
        try:
            found = account(ctx.store, account_no)
            account_pref = found.prefecture if found else None
        except StoreUnavailable as exc:
            log.warning("route without the account's prefecture: %s", exc)
    try:
        d = table.decide(gateway_prefecture=call.params.get("pref", ""),
                         did=call.get_variable(V.DID) or call.dnid, caller=call.caller,
                         account_prefecture=account_pref,
                         now=ctx.clock())
    except LookupError as exc:
        raise DialplanBreak("no-route") from exc
    call.set_variable(V.ROUTE_PREFECTURE, d.prefecture)
    call.set_variable(V.ROUTE_QUEUE, d.queue)
    call.set_variable(V.ROUTE_REASON, d.reason)
    call.set_variable(V.ROUTE_OPEN, "1" if d.open else "0")
    call.set_variable(V.AFTER_HOURS, d.after_hours)
    if ctx.call_log is not None:
        ctx.call_log.record(Entry(call.uniqueid, "route", call.dnid, call.caller,
                                  f"{d.queue} by {d.reason}{'' if d.open else ' (closed)'}"))


def default_registry() -> Registry:
    # Self-service waits for the caller's digits: up to 3 tries of 8 s plus the prompts.
    return Registry([ping, welcome, prompt_missing, route, (bill, 180.0), (outage, 180.0),
                     (order_create, 120.0), (order_answer, 60.0)])
