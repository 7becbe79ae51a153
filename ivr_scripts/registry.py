"""Explicit handler registry: the route in ``agi://host:port/<route>`` is the handler's name."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .call import Call

_ROUTE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass
class HandlerContext:
    """What handlers may use besides the call: the store and prompt catalogue (either may be
    None: handlers degrade, never fail the call), and settings."""

    store: Any = None
    catalog: Any = None
    call_log: Any = None
    settings: dict[str, Any] = field(default_factory=dict)


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
