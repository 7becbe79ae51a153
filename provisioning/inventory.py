"""Inventory YAML → validated :class:`~provisioning.model.Inventory`.

Every problem is collected, then all are reported at once, each as ``file:line: field: what``.
Values that would break a config line are refused here, before any renderer sees them.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from pbxctl.core.yamlsrc import LocDict, load_yaml
from pbxctl.data.ordertypes import ORDER_TYPES
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
from provisioning.includes import LISTS, MAX_TREE_BYTES, collect
from provisioning.model import (
    BusinessHours,
    County,
    Dispatch,
    Host,
    Inventory,
    Prefecture,
    Province,
    Seat,
    SeatKind,
)
from provisioning.options import options


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
    opts = options(c, c.mapping(d, "options", "province.options", required=False),
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
                       "gateway", "lss", "ivr", "agents", "business_hours"}, path)
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
    # The prefecture's own IVR (self-service from a replica): its own server when given.
    ivr = _host(c, reg, d, "ivr", f"{path}.ivr", nets) if "ivr" in d else None
    agents = _seats(c, reg, d, "agents", f"{path}.agents", "agent", code or "-", owner)
    if not agents:
        c.err(d.loc, f"{path}.agents", "at least one agent seat is required")
    hours = _hours(c, c.mapping(d, "business_hours", f"{path}.business_hours", required=False),
                   f"{path}.business_hours")
    return Prefecture(code, name, areas, dids, nets[0] or NO_NETWORK, nets[1] or NO_NETWORK,
                      pstn, gw, lss, agents, hours, ivr)


def _county(c: Checker, reg: UniqueIds, d: LocDict, path: str, owner: dict[str, str]) -> County:
    c.unknown_keys(d, {"code", "name", "prefecture", "seats"}, path)
    code = c.text(d, "code", f"{path}.code", CODE, what="an upper-case code")
    reg.claim(c, "county code", code, d.loc_of("code"), f"{path}.code")
    name = c.name(d, "name", f"{path}.name")
    pref = c.text(d, "prefecture", f"{path}.prefecture", CODE, what="a prefecture code")
    seats = _seats(c, reg, d, "seats", f"{path}.seats", "terminal", code or "-", owner)
    return County(code, name, pref, seats)


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
    items: dict[str, list[tuple[LocDict, str]]] = {key: [] for key in LISTS}
    collect(c, path, {path.resolve()}, items, root, base=path.resolve().parent,
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
