"""The province's ``options`` section: timers, survivability rules, management hosts."""

from __future__ import annotations

from dataclasses import fields
from ipaddress import IPv4Address, ip_address

from pbxctl.core.yamlsrc import LocDict
from provisioning.checks import Checker
from provisioning.model import Options


def options(c: Checker, d: LocDict | None, path: str) -> Options:
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
        cti_connect_timeout_ms=c.number(d, "cti_connect_timeout_ms",
                                        f"{path}.cti_connect_timeout_ms", lo=20, hi=10000,
                                        default=dflt.cti_connect_timeout_ms, kind=int),
        cti_command_timeout_ms=c.number(d, "cti_command_timeout_ms",
                                        f"{path}.cti_command_timeout_ms", lo=100, hi=60000,
                                        default=dflt.cti_command_timeout_ms, kind=int),
        cti_session_budget_s=c.number(d, "cti_session_budget_s", f"{path}.cti_session_budget_s",
                                      lo=10, hi=7200, default=dflt.cti_session_budget_s,
                                      kind=int),
        relay_port=c.number(d, "relay_port", f"{path}.relay_port", lo=1, hi=65535,
                            default=dflt.relay_port, kind=int),
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
