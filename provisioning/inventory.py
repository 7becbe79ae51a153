"""Inventory YAML → validated :class:`~provisioning.model.Inventory`.

Every problem is collected, then all are reported at once, each as ``file:line: field: what``.
Values that would break a config line are refused here, before any renderer sees them.
"""

from __future__ import annotations

import re
from dataclasses import fields
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path

from pbxctl.core.errors import InputError
from pbxctl.core.yamlsrc import LocDict, load_yaml
from pbxctl.data.orders import ORDER_TYPES
from provisioning.checks import (
    AFTER_HOURS,
    AREA_CODE,
    CODE,
    DAYS,
    DID,
    EXTENSION,
    GROUP,
    HHMM,
    HHMM_CLOSE,
    HOST_NAME,
    NO_NETWORK,
    NULL_ADDRESS,
    SEAT_ID,
    SECRET_REF,
    Checker,
    InventoryError,
    UniqueIds,
)
from provisioning.model import (
    BusinessHours,
    County,
    Dispatch,
    Host,
    Inventory,
    Options,
    Prefecture,
    Province,
    Seat,
    SeatKind,
)


def _host(c: Checker, reg: UniqueIds, parent: LocDict, key: str, path: str,
          nets: tuple[IPv4Network | None, IPv4Network | None], *, named: bool = True) -> Host:
    d = c.mapping(parent, key, path)
    if d is None:
        return Host(key, NULL_ADDRESS, NULL_ADDRESS)
    allowed = {"a", "b"} | ({"name"} if named else set())
    c.unknown_keys(d, allowed, path)
    name = c.text(d, "name", f"{path}.name", HOST_NAME, what="a host name (a-z, 0-9, -)") \
        if named else key
    if named:
        reg.claim(c, "server name", name, d.loc_of("name"), f"{path}.name")
    addrs: list[IPv4Address] = []
    for link, net in zip(("a", "b"), nets, strict=True):
        if link not in d:
            c.err(d.loc, f"{path}.{link}", f"missing: every server needs an address on switch "
                  f"{link.upper()} (dual links)")
            addrs.append(NULL_ADDRESS)
            continue
        addr = c.address(d, link, f"{path}.{link}")
        if addr is None:
            addrs.append(NULL_ADDRESS)
            continue
        reg.claim(c, "address", str(addr), d.loc_of(link), f"{path}.{link}")
        if net is not None and addr not in net:
            c.err(d.loc_of(link), f"{path}.{link}",
                  f"{addr} is outside switch {link.upper()}'s network {net}")
        addrs.append(addr)
    return Host(name, addrs[0], addrs[1])


def _networks(c: Checker, d: LocDict, path: str
              ) -> tuple[IPv4Network | None, IPv4Network | None]:
    nets = c.mapping(d, "networks", f"{path}.networks")
    if nets is None:
        return None, None
    c.unknown_keys(nets, {"a", "b"}, f"{path}.networks")
    if "b" not in nets or "a" not in nets:
        missing = "b" if "a" in nets else "a"
        c.err(nets.loc, f"{path}.networks.{missing}",
              "missing: two switch networks (a and b) are required, one link only is not allowed")
    a = c.network(nets, "a", f"{path}.networks.a") if "a" in nets else None
    b = c.network(nets, "b", f"{path}.networks.b") if "b" in nets else None
    if a is not None and b is not None and a.overlaps(b):
        c.err(nets.loc_of("b"), f"{path}.networks.b", f"{b} overlaps switch A's network {a}")
    return a, b


def _seats(c: Checker, reg: UniqueIds, parent: LocDict, key: str, path: str, kind: SeatKind,
           home: str, owner: dict[str, str]) -> tuple[Seat, ...]:
    out = []
    items = c.seq(parent, key, path, required=False)
    for i, item in enumerate(items):
        p = f"{path}[{i}]"
        if not isinstance(item, LocDict):
            c.err(items.loc_of(i), p, "must be a mapping with id, name, extension")
            continue
        c.unknown_keys(item, {"id", "name", "extension"}
                       | ({"group"} if kind == "terminal" else set()), p)
        sid = c.text(item, "id", f"{p}.id", SEAT_ID, what="a seat id (a-z, 0-9, -)")
        name = c.name(item, "name", f"{p}.name")
        ext = c.text(item, "extension", f"{p}.extension", EXTENSION, what="3-6 digits")
        if sid and sid in owner:
            c.err(item.loc_of("id"), f"{p}.id",
                  f"seat {sid!r} is already a seat of {owner[sid]}: a seat serves one queue only")
        elif sid:
            owner[sid] = f"{kind} group {home}"
        reg.claim(c, "seat id", sid, item.loc_of("id"), f"{p}.id")
        reg.claim(c, "extension", ext, item.loc_of("extension"), f"{p}.extension")
        group = (c.text(item, "group", f"{p}.group", GROUP, what="a group name (a-z)",
                        required=False, default="field") if kind == "terminal" else "")
        out.append(Seat(sid, name, ext, kind, home, group))
    return tuple(out)


def _options(c: Checker, d: LocDict | None, path: str) -> Options:
    if d is None:
        return Options()
    names = {f.name for f in fields(Options)}
    c.unknown_keys(d, names, path)
    dflt = Options()
    return Options(
        qualify_frequency=c.number(d, "qualify_frequency", f"{path}.qualify_frequency", lo=1,
                                   hi=60, default=dflt.qualify_frequency, kind=int),
        qualify_timeout=c.number(d, "qualify_timeout", f"{path}.qualify_timeout", lo=0.1, hi=10,
                                 default=dflt.qualify_timeout, kind=float),
        trunk_dial_timeout=c.number(d, "trunk_dial_timeout", f"{path}.trunk_dial_timeout",
                                    lo=1, hi=60, default=dflt.trunk_dial_timeout, kind=int),
        queue_timeout=c.number(d, "queue_timeout", f"{path}.queue_timeout", lo=10, hi=3600,
                               default=dflt.queue_timeout, kind=int),
        agent_ring_timeout=c.number(d, "agent_ring_timeout", f"{path}.agent_ring_timeout", lo=5,
                                    hi=120, default=dflt.agent_ring_timeout, kind=int),
        overflow_wait=c.number(d, "overflow_wait", f"{path}.overflow_wait", lo=5, hi=3600,
                               default=dflt.overflow_wait, kind=int),
        timezone=_timezone(c, d, f"{path}.timezone", dflt.timezone),
        failback_hold_down=c.number(d, "failback_hold_down", f"{path}.failback_hold_down",
                                    lo=1, hi=3600, default=dflt.failback_hold_down, kind=int),
        rtp_timeout=c.number(d, "rtp_timeout", f"{path}.rtp_timeout", lo=2, hi=3600,
                             default=dflt.rtp_timeout, kind=int),
        invite_max_age=c.number(d, "invite_max_age", f"{path}.invite_max_age", lo=0, hi=300,
                                default=dflt.invite_max_age, kind=int),
        failback_rule=_failback_rule(c, d, f"{path}.failback_rule", dflt.failback_rule),
        failback_window=_failback_window(c, d, f"{path}.failback_window"),
        ami_permit=_addresses(c, d, "ami_permit", f"{path}.ami_permit"),
    )


def _addresses(c: Checker, d: LocDict, key: str, path: str) -> tuple[IPv4Address, ...]:
    out = []
    items = c.seq(d, key, path, required=False)
    for i, item in enumerate(items):
        try:
            addr = ip_address(str(item))
        except ValueError:
            addr = None
        if not isinstance(addr, IPv4Address):
            c.err(items.loc_of(i), f"{path}[{i}]", f"{item!r} is not an IPv4 address")
            continue
        out.append(addr)
    return tuple(out)


def _failback_rule(c: Checker, d: LocDict, path: str, default: str) -> str:
    from provisioning.failback import RULES

    value = c.text(d, "failback_rule", path, required=False, default=default)
    if value not in RULES:
        c.err(d.loc_of("failback_rule"), path, f"{value!r} is not one of {', '.join(RULES)}")
        return default
    return value


def _failback_window(c: Checker, d: LocDict, path: str) -> str:
    from pbxctl.core.errors import InputError
    from provisioning.failback import Window

    value = c.text(d, "failback_window", path, required=False, default="")
    if not value:
        return ""
    try:
        return str(Window.parse(value, where=path))
    except InputError:
        c.err(d.loc_of("failback_window"), path, f"{value!r} is not HH:MM-HH:MM "
              "(e.g. 02:00-05:00)")
        return ""


def _timezone(c: Checker, d: LocDict, path: str, default: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = c.text(d, "timezone", path, required=False, default=default)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        c.err(d.loc_of("timezone"), path, f"unknown time zone {name!r} (e.g. Asia/Shanghai)")
        return default
    return name


def _province(c: Checker, reg: UniqueIds, root: LocDict, owner: dict[str, str]) -> Province:
    d = c.mapping(root, "province", "province")
    if d is None:
        d = LocDict()
        d.loc, d.key_locs = root.loc, {}
    c.unknown_keys(d, {"code", "name", "networks", "pbx", "cti", "db", "supervisors",
                       "options"}, "province")
    code = c.text(d, "code", "province.code", CODE, what="an upper-case code")
    name = c.name(d, "name", "province.name")
    nets = _networks(c, d, "province")
    pbx = _host(c, reg, d, "pbx", "province.pbx", nets)
    cti_d = c.mapping(d, "cti", "province.cti")
    cti_port = 4573
    if cti_d is not None:
        cti_port = c.number(cti_d, "port", "province.cti.port", lo=1, hi=65535, default=4573,
                            kind=int)
        cti_plain = LocDict({k: v for k, v in cti_d.items() if k != "port"})
        cti_plain.loc, cti_plain.key_locs = cti_d.loc, cti_d.key_locs
        holder = LocDict({"cti": cti_plain})
        holder.loc, holder.key_locs = d.loc, d.key_locs
        cti = _host(c, reg, holder, "cti", "province.cti", nets)
    else:
        cti = Host("cti", NULL_ADDRESS, NULL_ADDRESS)
    db = c.mapping(d, "db", "province.db")
    db_secret = ""
    if db is not None:
        c.unknown_keys(db, {"dsn_secret"}, "province.db")
        db_secret = c.text(db, "dsn_secret", "province.db.dsn_secret", SECRET_REF,
                           what="a secret name (a-z, 0-9, _)")
    sups = _seats(c, reg, d, "supervisors", "province.supervisors", "supervisor", code or "-",
                  owner)
    if not sups:
        c.err(d.loc, "province.supervisors", "at least one supervisor seat is required")
    opts = _options(c, c.mapping(d, "options", "province.options", required=False),
                    "province.options")
    return Province(code, name, nets[0] or NO_NETWORK, nets[1] or NO_NETWORK, pbx, cti, cti_port,
                    db_secret, sups, opts)


def _hours(c: Checker, d: LocDict | None, path: str) -> BusinessHours:
    if d is None:
        return BusinessHours(DAYS, "00:00", "24:00")
    c.unknown_keys(d, {"days", "open", "close", "after_hours"}, path)
    days_raw = c.seq(d, "days", f"{path}.days", required=False)
    days: list[str] = []
    for i, day in enumerate(days_raw or DAYS):
        if day not in DAYS:
            c.err(days_raw.loc_of(i), f"{path}.days[{i}]",
                  f"{day!r} is not one of {', '.join(DAYS)}")
        elif day in days:
            c.err(days_raw.loc_of(i), f"{path}.days[{i}]", f"{day!r} listed twice")
        else:
            days.append(day)
    opens = c.text(d, "open", f"{path}.open", HHMM, what="HH:MM")
    close = c.text(d, "close", f"{path}.close", HHMM_CLOSE, what="HH:MM (or 24:00)")
    if opens and close and opens >= close:
        c.err(d.loc_of("close"), f"{path}.close", f"closes ({close}) before it opens ({opens})")
    after = c.text(d, "after_hours", f"{path}.after_hours", AFTER_HOURS,
                   what="selfservice or message", required=False, default="selfservice")
    return BusinessHours(tuple(days), opens, close, after)


def _digits_list(c: Checker, reg: UniqueIds, d: LocDict, key: str, path: str,
                 pattern: re.Pattern[str], what: str, kind: str) -> tuple[str, ...]:
    out = []
    items = c.seq(d, key, path)
    for i, value in enumerate(items):
        holder = LocDict({key: value})
        holder.loc, holder.key_locs = items.loc_of(i), {key: items.loc_of(i)}
        text = c.text(holder, key, f"{path}[{i}]", pattern, what=what)
        reg.claim(c, kind, text, items.loc_of(i), f"{path}[{i}]")
        if text:
            out.append(text)
    if not items and key in d:
        c.err(d.loc_of(key), path, "must not be empty")
    return tuple(out)


def _prefecture(c: Checker, reg: UniqueIds, d: LocDict, path: str,
                owner: dict[str, str]) -> Prefecture:
    c.unknown_keys(d, {"code", "name", "area_codes", "dids", "networks", "pstn_gateway",
                       "gateway", "lss", "agents", "business_hours"}, path)
    code = c.text(d, "code", f"{path}.code", CODE, what="an upper-case code")
    reg.claim(c, "prefecture code", code, d.loc_of("code"), f"{path}.code")
    name = c.name(d, "name", f"{path}.name")
    areas = _digits_list(c, reg, d, "area_codes", f"{path}.area_codes", AREA_CODE,
                         "an area code like '0571'", "area code")
    dids = _digits_list(c, reg, d, "dids", f"{path}.dids", DID, "5-15 digits", "DID")
    nets = _networks(c, d, path)
    pstn = _host(c, reg, d, "pstn_gateway", f"{path}.pstn_gateway", nets, named=False)
    gw = _host(c, reg, d, "gateway", f"{path}.gateway", nets)
    lss = _host(c, reg, d, "lss", f"{path}.lss", nets)
    agents = _seats(c, reg, d, "agents", f"{path}.agents", "agent", code or "-", owner)
    if not agents:
        c.err(d.loc, f"{path}.agents", "at least one agent seat is required")
    hours = _hours(c, c.mapping(d, "business_hours", f"{path}.business_hours", required=False),
                   f"{path}.business_hours")
    return Prefecture(code, name, areas, dids, nets[0] or NO_NETWORK, nets[1] or NO_NETWORK,
                      pstn, gw, lss, agents, hours)


def _county(c: Checker, reg: UniqueIds, d: LocDict, path: str, owner: dict[str, str]) -> County:
    c.unknown_keys(d, {"code", "name", "prefecture", "seats"}, path)
    code = c.text(d, "code", f"{path}.code", CODE, what="an upper-case code")
    reg.claim(c, "county code", code, d.loc_of("code"), f"{path}.code")
    name = c.name(d, "name", f"{path}.name")
    pref = c.text(d, "prefecture", f"{path}.prefecture", CODE, what="a prefecture code")
    seats = _seats(c, reg, d, "seats", f"{path}.seats", "terminal", code or "-", owner)
    return County(code, name, pref, seats)


_LISTS = ("prefectures", "counties")


MAX_INCLUDES = 200
MAX_TREE_BYTES = 32 * 1024 * 1024


def _collect(c: Checker, path: Path, seen: set[Path],
             out: dict[str, list[tuple[LocDict, str]]], root: LocDict, *,
             base: Path, budget: list[int]) -> None:
    """Prefecture and county items from ``root`` and, once each, its includes (relative to
    the including file)."""
    for key in _LISTS:
        items = c.seq(root, key, key, required=False)
        for i, item in enumerate(items):
            if isinstance(item, LocDict):
                out[key].append((item, f"{key}[{len(out[key])}]"))
            else:
                c.err(items.loc_of(i), f"{key}[{i}]", "must be a mapping")
    includes = c.seq(root, "include", "include", required=False)
    for i, inc in enumerate(includes):
        if not isinstance(inc, str):
            c.err(includes.loc_of(i), f"include[{i}]", "must be a file name")
            continue
        target = (path.parent / inc).resolve()
        if not target.is_relative_to(base):
            c.err(includes.loc_of(i), f"include[{i}]",
                  f"{inc} is outside the inventory's folder {base} (symlinks included)")
            continue
        if target in seen:
            c.err(includes.loc_of(i), f"include[{i}]", f"{inc} is included twice (or in a cycle)")
            continue
        seen.add(target)
        try:
            if len(seen) > MAX_INCLUDES:
                raise InputError(f"more than {MAX_INCLUDES} files in the include tree")
            budget[0] -= target.stat().st_size if target.is_file() else 0
            if budget[0] < 0:
                raise InputError(f"the include tree is larger than {MAX_TREE_BYTES // 2**20} "
                                 "MB in total")
            sub = load_yaml(target)
        except InputError as exc:
            c.problems.append(f"{includes.loc_of(i)}: include[{i}]: {exc.message}")
            continue
        c.unknown_keys(sub, {"prefectures", "counties", "include"}, str(target.name))
        _collect(c, target, seen, out, sub, base=base, budget=budget)


def load_inventory(path: Path) -> Inventory:
    """Load, validate and build the model; raise :class:`InventoryError` with every problem."""
    root = load_yaml(path)
    c = Checker()
    reg = UniqueIds()
    owner: dict[str, str] = {}
    c.unknown_keys(root, {"version", "province", "prefectures", "counties", "include",
                          "dispatch"}, "(top)")
    if root.get("version", 1) != 1:
        c.err(root.loc_of("version"), "version", "only version 1 is understood")
    province = _province(c, reg, root, owner)
    items: dict[str, list[tuple[LocDict, str]]] = {key: [] for key in _LISTS}
    _collect(c, path, {path.resolve()}, items, root, base=path.resolve().parent,
             budget=[MAX_TREE_BYTES - path.stat().st_size])
    pref_items, county_items = items["prefectures"], items["counties"]
    prefectures = tuple(_prefecture(c, reg, d, p, owner) for d, p in pref_items)
    if not prefectures:
        c.err(root.loc, "prefectures", "at least one prefecture is required")
    counties = tuple(_county(c, reg, d, p, owner) for d, p in county_items)
    codes = {p.code for p in prefectures}
    for (d, p), county in zip(county_items, counties, strict=True):
        if county.prefecture and county.prefecture not in codes:
            c.err(d.loc_of("prefecture"), f"{p}.prefecture",
                  f"unknown prefecture {county.prefecture!r} (known: {', '.join(sorted(codes))})")
    dispatch = _dispatch(c, c.mapping(root, "dispatch", "dispatch", required=False), counties)
    _no_clash_with_generated_names(c, reg, root, pref_items)
    if c.problems:
        raise InventoryError(c.problems)
    return Inventory(str(path), province, prefectures, counties, dispatch)


def _dispatch(c: Checker, d: LocDict | None, counties: tuple[County, ...]) -> Dispatch:
    if d is None:
        return Dispatch(groups={})
    c.unknown_keys(d, {"types", "ring_timeout", "attempts", "retry_interval"}, "dispatch")
    types = c.mapping(d, "types", "dispatch.types") or LocDict()
    groups: dict[str, str] = {}
    known = {s.group for county in counties for s in county.seats}
    for key in types:
        p = f"dispatch.types.{key}"
        if key not in ORDER_TYPES:
            c.err(types.loc_of(key), p, f"unknown order type (known: {', '.join(ORDER_TYPES)})")
            continue
        group = c.text(types, key, p, GROUP, what="a seat group name (a-z)")
        if group and group not in known:
            c.err(types.loc_of(key), p, f"no terminal seat is in group {group!r}")
        groups[key] = group
    return Dispatch(
        groups=groups,
        ring_timeout=c.number(d, "ring_timeout", "dispatch.ring_timeout", lo=5, hi=300,
                              default=30, kind=int),
        attempts=c.number(d, "attempts", "dispatch.attempts", lo=1, hi=10, default=3,
                          kind=int),
        retry_interval=c.number(d, "retry_interval", "dispatch.retry_interval", lo=1,
                                hi=3600, default=60, kind=int))


# Names the renderers give to objects of every site (pjsip sections, queues, contexts, the AMI
# user); a seat or server with one of them would make two sections of one name.
FIXED_NAMES = ("global", "system", "general", "globals", "pstn", "transport-a", "transport-b",
               "province-a", "province-b", "lss-a", "lss-b", "gw-a", "gw-b", "seats",
               "supervisors", "from-gateway", "from-gateways", "from-pstn", "from-trunk",
               "acd-supervisors", "pbxctl")


def _no_clash_with_generated_names(c: Checker, reg: UniqueIds, root: LocDict,
                                   pref_items: list[tuple[LocDict, str]]) -> None:
    made: dict[str, str] = {n: "a name pbxctl generates for every site" for n in FIXED_NAMES}
    for d, _ in pref_items:
        code = str(d.get("code", "")).lower()
        where = f"prefecture {code.upper()} at {d.loc_of('code')}"
        for name, what in ((f"gw-{code}-a", "trunk"), (f"gw-{code}-b", "trunk"),
                           (f"acd-{code}", "queue"), (f"lss-{code}", "queue")):
            made[name] = f"the {what} generated for {where}"
    for (kind, value), loc in reg.seen.items():
        if kind not in ("seat id", "server name"):
            continue
        low = value.lower()
        if low in made or low.startswith("pbxctl-"):
            c.problems.append(f"{loc}: {kind} {value!r} collides with "
                              f"{made.get(low, 'the pbxctl-* contexts')}: pick another name")
