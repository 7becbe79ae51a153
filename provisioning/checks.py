"""The inventory checker: field patterns, problem collection with file:line, and
province-wide uniqueness. :mod:`provisioning.inventory` builds the model with it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any, TypeVar

from pbxctl.core.errors import InputError
from pbxctl.core.yamlsrc import Loc, LocDict, LocList

CODE = re.compile(r"^[A-Z][A-Z0-9]{1,11}$")
SEAT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
SECRET_REF = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
EXTENSION = re.compile(r"^[0-9]{3,6}$")
DID = re.compile(r"^[0-9]{5,15}$")
AREA_CODE = re.compile(r"^0[0-9]{2,3}$")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
HHMM_CLOSE = re.compile(r"^(24:00|([01][0-9]|2[0-3]):[0-5][0-9])$")
GROUP = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
AFTER_HOURS = re.compile(r"^(selfservice|message)$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A display name goes into callerid "…" and queue member names: nothing that ends a value,
# a line, a section or a list there.
# Also every control character (incl. NEL and the Unicode line/paragraph separators some
# parsers end lines at) and FreeSWITCH's variable syntax ($${…} is expanded at load).
NAME_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f\x85\u2028\u2029;\[\],"<>\\()]|\$\{|\$\$')

T = TypeVar("T")


class InventoryError(InputError):
    """All problems of an inventory; ``problems`` lists them one per line."""

    def __init__(self, problems: list[str]) -> None:
        head = f"{len(problems)} problem(s) in the inventory"
        super().__init__(head, hint="fix each file:line named below",
                         detail="\n".join(problems))
        self.problems = problems


@dataclass
class Checker:
    problems: list[str] = field(default_factory=list)

    def err(self, loc: Loc, path: str, msg: str) -> None:
        self.problems.append(f"{loc}: {path}: {msg}")

    # -- typed access -----------------------------------------------------------------------
    def mapping(self, parent: LocDict, key: str, path: str, *, required: bool = True
                ) -> LocDict | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.err(parent.loc, path, "missing (a mapping is required)")
            return None
        if not isinstance(value, LocDict):
            self.err(parent.loc_of(key), path, "must be a mapping")
            return None
        return value

    def seq(self, parent: LocDict, key: str, path: str, *, required: bool = True) -> LocList:
        value = parent.get(key)
        if value is None:
            if required:
                self.err(parent.loc, path, "missing (a list is required)")
            empty = LocList()
            empty.loc, empty.item_locs = parent.loc, []
            return empty
        if not isinstance(value, LocList):
            self.err(parent.loc_of(key), path, "must be a list")
            empty = LocList()
            empty.loc, empty.item_locs = parent.loc_of(key), []
            return empty
        return value

    def text(self, parent: LocDict, key: str, path: str, pattern: re.Pattern[str] | None = None,
             *, what: str = "", required: bool = True, default: str = "") -> str:
        value = parent.get(key)
        loc = parent.loc_of(key)
        if value is None:
            if required:
                self.err(parent.loc, path, "missing")
            return default
        if isinstance(value, int) and not isinstance(value, bool) and pattern is not None:
            self.err(loc, path, f"write it as a quoted string ('{value}' read as the number "
                     f"{value}; YAML drops leading zeros and reads 0-prefixed digits as octal)")
            return default
        if not isinstance(value, str):
            self.err(loc, path, f"must be a string, not {type(value).__name__}")
            return default
        if pattern is not None and not pattern.match(value):
            self.err(loc, path, f"{value!r} is not {what or 'valid'}")
            return default
        return value

    def name(self, parent: LocDict, key: str, path: str) -> str:
        value = self.text(parent, key, path)
        bad = NAME_FORBIDDEN.search(value)
        if bad:
            self.err(parent.loc_of(key), path,
                     f"{value!r} contains {bad.group()!r}, which would break a config line")
            return ""
        if value and not value.strip():
            self.err(parent.loc_of(key), path, "is blank")
        if len(value) > 40:
            self.err(parent.loc_of(key), path, "longer than 40 characters")
        return value

    def number(self, parent: LocDict, key: str, path: str, *, lo: float, hi: float,
               default: T, kind: Callable[[Any], T]) -> T:
        value = parent.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.err(parent.loc_of(key), path, f"must be a number, not {value!r}")
            return default
        if not lo <= value <= hi:
            self.err(parent.loc_of(key), path, f"{value} is outside {lo:g}..{hi:g}")
            return default
        return kind(value)

    def unknown_keys(self, d: LocDict, allowed: set[str], path: str) -> None:
        for key in d:
            if key not in allowed:
                self.err(d.loc_of(key), f"{path}.{key}",
                         f"unknown field (expected one of: {', '.join(sorted(allowed))})")

    def network(self, parent: LocDict, key: str, path: str) -> IPv4Network | None:
        value = self.text(parent, key, path)
        if not value:
            return None
        try:
            net = ip_network(value, strict=True)
        except ValueError as exc:
            self.err(parent.loc_of(key), path, f"not a network: {exc}")
            return None
        if not isinstance(net, IPv4Network):
            self.err(parent.loc_of(key), path, "IPv4 only")
            return None
        return net

    def address(self, parent: LocDict, key: str, path: str) -> IPv4Address | None:
        value = self.text(parent, key, path)
        if not value:
            return None
        try:
            addr = ip_address(value)
        except ValueError:
            self.err(parent.loc_of(key), path, f"{value!r} is not an IPv4 address")
            return None
        if not isinstance(addr, IPv4Address):
            self.err(parent.loc_of(key), path, "IPv4 only")
            return None
        return addr


# Placeholders where a value was invalid: the problem is recorded and no model is returned.
NULL_ADDRESS = IPv4Address("0.0.0.0")
NO_NETWORK = IPv4Network("0.0.0.0/32")


@dataclass
class UniqueIds:
    """Province-wide uniqueness: extensions, DIDs, seat ids, addresses, host names."""

    seen: dict[tuple[str, str], Loc] = field(default_factory=dict)

    def claim(self, c: Checker, kind: str, value: str, loc: Loc, path: str) -> None:
        if not value:
            return
        prev = self.seen.get((kind, value))
        if prev is not None:
            c.err(loc, path, f"duplicate {kind} {value!r} (first at {prev})")
        else:
            self.seen[(kind, value)] = loc
