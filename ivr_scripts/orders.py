"""Work-order handlers: an agent creates an order from the phone right after a call (feature
code → `order_create`: type and account by DTMF, linked to the agent's last call), and a
county terminal seat answers a notify call with 1 (accept) or 2 (return) → `order_answer`.

Refusals (unknown account, a type the rules do not map, an order already accepted…) are not
failures of the handler: the result variable says ``refused`` with the reason, the person
hears it, and nothing in the database changed.
"""

from __future__ import annotations

import logging

from ivr_scripts.call import Call, DialplanBreak
from ivr_scripts.registry import HandlerContext
from ivr_scripts.selfservice import ACCOUNT_DIGITS, Speaker
from pbxctl.core import chanvars as V
from pbxctl.core.dtmf import is_digits
from pbxctl.core.errors import InputError, StoreUnavailable
from pbxctl.data.orders import accept, create, dispatch, return_order
from pbxctl.data.ordertypes import ORDER_TYPES
from pbxctl.data.store import Store
from provisioning.model import Inventory

log = logging.getLogger("pbxctl.agi")


def _needs(ctx: HandlerContext) -> tuple[Inventory, Store]:
    """The inventory and the store these handlers cannot work without."""
    if ctx.inventory is None or ctx.store is None:
        raise DialplanBreak("orders-not-configured")
    return ctx.inventory, ctx.store


def _refuse(call: Call, say: Speaker, reason: str) -> None:
    log.info("work order refused (%s): %s", call.uniqueid, reason)
    call.set_variable(V.ORDER_RESULT, "refused")
    call.set_variable(V.FAIL_REASON, reason[:200])
    say.play("order-refused")


def order_create(call: Call, ctx: HandlerContext) -> None:
    """Params: agent (the seat dialling), call (linkedid of its last answered call), site."""
    inv, store = _needs(ctx)
    agent = call.params.get("agent", "")
    home = next((p for p in inv.prefectures if agent in {a.id for a in p.agents}), None)
    if home is None:
        raise DialplanBreak("not-an-agent")
    # Agents sit at the province PBX (or, in survivable mode, their own LSS): an order from
    # any other PBX naming an agent is not that agent's.
    if call.params.get("site", "") not in (inv.province.pbx.name, home.lss.name):
        raise DialplanBreak("agent-not-at-site")
    say = Speaker(call)
    digit = say.ask("order-type", max_digits=1)
    if not is_digits(digit) or not 1 <= int(digit) <= len(ORDER_TYPES):
        _refuse(call, say, f"no order type for key {digit!r}")
        return
    account_no = say.ask("order-account", max_digits=ACCOUNT_DIGITS)
    try:
        order = create(store, inv, type=ORDER_TYPES[int(digit) - 1], account_no=account_no,
                       created_by=agent, call_site=call.params.get("site", ""),
                       call_linkedid=call.params.get("call", ""))
        order = dispatch(store, inv, order.id, actor=agent)
    except InputError as exc:
        _refuse(call, say, exc.message)
        return
    except StoreUnavailable as exc:
        _refuse(call, say, f"database unavailable: {exc.message}")
        return
    call.set_variable(V.ORDER, str(order.id))
    call.set_variable(V.ORDER_RESULT, "created")
    say.play("order-created")
    call.say_digits(str(order.id))


def order_answer(call: Call, ctx: HandlerContext) -> None:
    """Params: order, seat, key (1 accept, 2 return)."""
    inv, store = _needs(ctx)
    say = Speaker(call)
    order_id, seat, key, seen = (call.params.get(k, "")
                                 for k in ("order", "seat", "key", "version"))
    if not is_digits(order_id):
        raise DialplanBreak("no-order")
    if seat not in {s.id for c in inv.counties for s in c.seats}:
        raise DialplanBreak("not-a-terminal-seat")
    version = int(seen) if is_digits(seen) else None  # as it was when the seat was called
    call.set_variable(V.ORDER, order_id)
    try:
        if key == "1":
            accept(store, int(order_id), seat=seat, actor=f"{seat} (phone)",
                   expect_version=version)
            call.set_variable(V.ORDER_RESULT, "accepted")
            say.play("order-accepted")
        elif key == "2":
            return_order(store, int(order_id), reason="returned by the seat by phone",
                         actor=f"{seat} (phone)", expect_version=version, seat=seat)
            call.set_variable(V.ORDER_RESULT, "returned")
            say.play("order-returned")
        else:
            _refuse(call, say, f"key {key!r} is neither 1 nor 2")
    except (InputError, StoreUnavailable) as exc:
        _refuse(call, say, exc.message)
