"""Who a signed-in login is, and what it may see and do. The inventory decides the role and
scope of a seat at every request: a seat removed from the inventory can no longer act, even
with a live session. Every page and API asks these functions, never its own ``if``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pbxctl.data.orders import Order
from provisioning.model import Inventory

Role = Literal["agent", "county", "supervisor", "admin"]
ACTIONS = ("accept", "return", "close")


@dataclass(frozen=True)
class Principal:
    login: str
    name: str
    role: Role
    prefecture: str = ""  # agents: their prefecture; county seats: their county's
    county: str = ""      # county seats only


def principal(inv: Inventory, login: str, *, admin: bool) -> Principal | None:
    """None: a login the inventory does not know (and not an admin) has no role."""
    if admin:
        return Principal(login, login, "admin")
    for sup in inv.province.supervisors:
        if sup.id == login:
            return Principal(login, sup.name, "supervisor")
    for pref in inv.prefectures:
        for agent in pref.agents:
            if agent.id == login:
                return Principal(login, agent.name, "agent", prefecture=pref.code)
    for county in inv.counties:
        for seat in county.seats:
            if seat.id == login:
                return Principal(login, seat.name, "county", prefecture=county.prefecture,
                                 county=county.code)
    return None


def may_see_order(who: Principal, order: Order) -> bool:
    if who.role in ("admin", "supervisor"):
        return True
    if who.role == "agent":
        return order.prefecture == who.prefecture
    return order.county == who.county


def may_act_on_order(who: Principal, order: Order, action: str) -> bool:
    """Terminal-seat actions (accept, return, close) belong to the county seat the order is
    dispatched to. Supervisors and admins act from the CLI (`pbxctl orders`), where the
    prefecture's reassignment rules live; the screen does not offer them a second path."""
    return (action in ACTIONS and who.role == "county" and order.county == who.county
            and order.seat == who.login)


def home_page(who: Principal) -> str:
    """Where a signed-in seat lands: agents on their call screen, supervisors and admins on
    the wallboard, county seats on their inbox."""
    return {"agent": "/agent", "county": "/inbox"}.get(who.role, "/wallboard")


def order_scope(who: Principal) -> tuple[str | None, str | None]:
    """(prefecture, county) filters of the orders ``who`` may list; None: any."""
    if who.role == "county":
        return None, who.county
    if who.role == "agent":
        return who.prefecture, None
    return None, None
