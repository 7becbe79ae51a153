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
    """What handlers may use besides the call: the store (may be None), settings, a clock."""

    store: Any = None
    settings: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Call, HandlerContext], None]


class UnknownRoute(LookupError):
    pass


class Registry:
    def __init__(self, handlers: Iterable[Handler] = ()) -> None:
        self._handlers: dict[str, Handler] = {}
        for handler in handlers:
            self.add(handler)

    def add(self, handler: Handler) -> Handler:
        name = handler.__name__
        if not _ROUTE.match(name):
            raise ValueError(f"handler name {name!r} is not a valid route")
        if name in self._handlers:
            raise ValueError(f"route {name!r} registered twice")
        self._handlers[name] = handler
        return handler

    def get(self, route: str) -> Handler:
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
