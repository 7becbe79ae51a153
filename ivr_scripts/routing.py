"""Which prefecture's agents take a call, and whether they are open: pure, from the model.

Order, most specific first: the caller's account (identified in self-service) → the
account's prefecture; the DID dialled → the prefecture that owns it; the caller's area code
(longest match) → its prefecture; else the prefecture of the gateway the call came in on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from provisioning.model import BusinessHours, Inventory

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class RouteDecision:
    prefecture: str
    queue: str
    reason: str  # account | did | area | gateway
    open: bool
    after_hours: str  # selfservice | message (what to do when not open)


def is_open(hours: BusinessHours, local: datetime) -> bool:
    if DAY_NAMES[local.weekday()] not in hours.days:
        return False
    hhmm = local.strftime("%H:%M")
    return hours.open <= hhmm < hours.close


@dataclass(frozen=True)
class RoutingTable:
    dids: dict[str, str]
    areas: dict[str, str]
    queues: dict[str, str]
    hours: dict[str, BusinessHours]
    timezone: str

    @classmethod
    def from_inventory(cls, inv: Inventory) -> RoutingTable:
        return cls(
            dids={d: p.code for p in inv.prefectures for d in p.dids},
            areas={a: p.code for p in inv.prefectures for a in p.area_codes},
            queues={p.code: p.queue for p in inv.prefectures},
            hours={p.code: p.hours for p in inv.prefectures},
            timezone=inv.province.options.timezone)

    def area_of(self, caller: str) -> str | None:
        digits = caller.lstrip("+")
        if digits.startswith("86"):  # international form of a Chinese number
            digits = "0" + digits[2:]
        for n in range(min(len(digits), 5), 2, -1):
            if digits[:n] in self.areas:
                return self.areas[digits[:n]]
        return None

    def decide(self, *, gateway_prefecture: str, did: str, caller: str,
               account_prefecture: str | None, now: datetime) -> RouteDecision:
        if account_prefecture in self.queues:
            pref, reason = account_prefecture, "account"
        elif did in self.dids:
            pref, reason = self.dids[did], "did"
        elif (area := self.area_of(caller)) is not None:
            pref, reason = area, "area"
        elif gateway_prefecture in self.queues:
            pref, reason = gateway_prefecture, "gateway"
        else:
            raise LookupError(f"no prefecture for DID {did!r}, caller {caller!r}, gateway "
                              f"{gateway_prefecture!r}")
        assert pref is not None
        hours = self.hours[pref]
        local = now.astimezone(ZoneInfo(self.timezone))
        return RouteDecision(pref, self.queues[pref], reason, is_open(hours, local),
                             hours.after_hours)
