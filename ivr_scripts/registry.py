"""Explicit handler registry: the route in ``agi://host:port/<route>`` is the handler's name."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from ivr_scripts.call import Call
from ivr_scripts.calllog import Entry
from ivr_scripts.catalog import Snapshot
from ivr_scripts.routing import RoutingTable
from pbxctl.data.store import Store
from provisioning.model import Inventory

_ROUTE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Catalog(Protocol):
    """The prompt catalogue as the welcome handler reads it (ivr_scripts.catalog)."""

    def snapshot(self) -> Snapshot | None: ...


class CallJournal(Protocol):
    """Where handlers note what a session did, off the call path (ivr_scripts.calllog)."""

    def record(self, entry: Entry) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class HandlerContext:
    """Everything a handler may use besides the call, each dependency typed. Any of them may
    be absent: a handler that needs a missing one degrades or fails the session (the dialplan
    takes its fallback) — it never fails the call.

    - ``store``: PostgreSQL (self-service data, prompt drift, work orders);
    - ``catalog``: the prompt catalogue's last snapshot (welcome);
    - ``call_log``: the session journal;
    - ``routing``: DIDs, area codes, business hours (route);
    - ``inventory``: counties, seats, dispatch rules (work orders);
    - ``fixed_welcome``: DID → stock prompt, instead of the catalogue (the one-site demo);
    - ``clock``: now, as an aware datetime (tests pin it);
    - ``health``: the serving process's counters (refused peers, sessions over the cap…),
      reported by the ping route to `pbxctl agi health`.
    """

    store: Store | None = None
    catalog: Catalog | None = None
    call_log: CallJournal | None = None
    routing: RoutingTable | None = None
    inventory: Inventory | None = None
    fixed_welcome: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = _utcnow
    health: Callable[[], Mapping[str, int]] | None = None  # the servers' counters, for ping


Handler = Callable[[Call, HandlerContext], None]


class UnknownRoute(LookupError):
    pass


DEFAULT_BUDGET = 10.0  # seconds a handler may run before the watchdog cuts the session


class Registry:
    """Route name → (handler, time budget). A handler over budget is cut off and the dialplan
    takes its fallback; interactive ones (waiting for the caller's digits) get more."""

    def __init__(self, handlers: Iterable[Handler | tuple[Handler, float]] = ()) -> None:
        self._handlers: dict[str, tuple[Handler, float]] = {}
        for item in handlers:
            if isinstance(item, tuple):
                self.add(item[0], budget=item[1])
            else:
                self.add(item)

    def add(self, handler: Handler, *, budget: float = DEFAULT_BUDGET) -> Handler:
        name = handler.__name__
        if not _ROUTE.match(name):
            raise ValueError(f"handler name {name!r} is not a valid route")
        if name in self._handlers:
            raise ValueError(f"route {name!r} registered twice")
        if budget <= 0:
            raise ValueError(f"route {name!r}: budget must be positive")
        self._handlers[name] = (handler, budget)
        return handler

    def get(self, route: str) -> Handler:
        return self.entry(route)[0]

    def entry(self, route: str) -> tuple[Handler, float]:
        try:
            return self._handlers[route]
        except KeyError:
            raise UnknownRoute(route) from None

    def routes(self) -> list[str]:
        return sorted(self._handlers)


def route_of(network_script: str) -> str:
    """``welcome?x=1`` or ``/welcome/extra`` → ``welcome``."""
    path = network_script.split("?", 1)[0].strip("/")
    return path.split("/", 1)[0]
