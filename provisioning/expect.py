"""What a site must show once running, derived from the model alone (not from the renderer),
so tests and `apply` can check that Asterisk holds exactly what the inventory says."""

from __future__ import annotations

from dataclasses import dataclass

from provisioning.model import PATHS, Inventory, Site


@dataclass(frozen=True)
class SiteExpectation:
    endpoints: frozenset[str]
    dialplan: dict[str, frozenset[str]]  # context → extensions
    queues: dict[str, frozenset[str]]  # queue → member interfaces


_S = frozenset(["s"])
_CALL_RECORD = {"pbxctl-call-start": _S, "pbxctl-call-end": _S}
_CONTACT = {"pbxctl-contact": _S, "pbxctl-answered": _S}
_FRESH = {"pbxctl-fresh": _S}  # the ghost-call guard of a site that takes trunk INVITEs
SPY_CODES = ("*1", "*2", "*3")  # listen, whisper, barge


def expected(inv: Inventory, site: Site) -> SiteExpectation:
    if site.role == "province":
        seats = inv.all_seats()
        trunks = {f"gw-{p.code.lower()}-{x}" for p in inv.prefectures for x in PATHS}
        dialplan = {
            "from-gateways": frozenset(p.queue for p in inv.prefectures),
            "seats": frozenset(s.extension for s in seats),
            "supervisors": frozenset(code + a.extension for p in inv.prefectures
                                     for a in p.agents for code in SPY_CODES),
            "pbxctl-overflow": _S,
            "pbxctl-spy": _S,
            "pbxctl-agent-codes": frozenset(["*9"]),
            "pbxctl-order-notify": _S,
            **_CALL_RECORD, **_CONTACT, **_FRESH,
        }
        queues = {p.queue: frozenset(f"PJSIP/{a.id}" for a in p.agents) for p in inv.prefectures}
        queues[inv.province.supervisor_queue] = frozenset(
            f"PJSIP/{s.id}" for s in inv.province.supervisors)
        return SiteExpectation(frozenset(trunks | {s.id for s in seats}), dialplan, queues)
    pref = site.prefecture
    assert pref is not None
    if site.role == "gateway":
        eps = {"pstn"} | {f"province-{x}" for x in PATHS} | {f"lss-{x}" for x in PATHS}
        dialplan = {
            "from-pstn": frozenset([*pref.dids, "_X."]),
            "pbxctl-inbound": frozenset(["s"]),
            "pbxctl-menu": frozenset(["s"]),
            "pbxctl-service": frozenset(["s"]),
            "pbxctl-route": frozenset(["s"]),
            "pbxctl-survivable": frozenset(["s"]),
            "from-trunk": frozenset(["_X."]),
            "pbxctl-headers": _S,
            **_CALL_RECORD,
        }
        return SiteExpectation(frozenset(eps), dialplan, {})
    eps = {f"gw-{x}" for x in PATHS} | {a.id for a in pref.agents}
    dialplan = {"from-gateway": frozenset([pref.lss_queue]),
                "seats": frozenset(a.extension for a in pref.agents),
                **_CALL_RECORD, **_CONTACT, **_FRESH}
    queues = {pref.lss_queue: frozenset(f"PJSIP/{a.id}" for a in pref.agents)}
    return SiteExpectation(frozenset(eps), dialplan, queues)


def differences(want: SiteExpectation, endpoints: set[str], dialplan: dict[str, set[str]],
                queues: dict[str, set[str]]) -> list[str]:
    """Human-readable differences between what the model wants and what Asterisk shows."""
    out = []
    if endpoints != want.endpoints:
        out.append(f"endpoints: missing {sorted(want.endpoints - endpoints)}, "
                   f"unexpected {sorted(endpoints - want.endpoints)}")
    got_dp = {k: frozenset(v) for k, v in dialplan.items()}
    if got_dp != want.dialplan:
        for ctx in sorted(set(got_dp) | set(want.dialplan)):
            if got_dp.get(ctx) != want.dialplan.get(ctx):
                out.append(f"dialplan context {ctx}: want {sorted(want.dialplan.get(ctx, []))}, "
                           f"got {sorted(got_dp.get(ctx, []))}")
    got_q = {k: frozenset(v) for k, v in queues.items()}
    if got_q != want.queues:
        for q in sorted(set(got_q) | set(want.queues)):
            if got_q.get(q) != want.queues.get(q):
                out.append(f"queue {q}: want {sorted(want.queues.get(q, []))}, "
                           f"got {sorted(got_q.get(q, []))}")
    return out


@dataclass(frozen=True)
class FreeSwitchExpectation:
    """What a FreeSWITCH site must hold: SIP profiles with their gateways, directory users,
    mod_callcenter queues with their tiers (queue → agents)."""

    profiles: dict[str, frozenset[str]]  # profile → gateway names
    users: frozenset[str]
    queues: dict[str, frozenset[str]]


def expected_freeswitch(inv: Inventory, site: Site) -> FreeSwitchExpectation:
    pref = site.prefecture
    if site.role == "province":
        gateways = {x: frozenset(f"gw-{p.code.lower()}-{x}" for p in inv.prefectures)
                    for x in PATHS}
        users = frozenset(s.id for s in inv.all_seats())
        queues = {p.queue: frozenset(a.id for a in p.agents) for p in inv.prefectures}
        queues[inv.province.supervisor_queue] = frozenset(
            s.id for s in inv.province.supervisors)
    elif site.role == "gateway":
        assert pref is not None
        gateways = {x: frozenset([f"province-{x}", f"lss-{x}"]) for x in PATHS}
        users, queues = frozenset(), {}
    else:
        assert pref is not None
        gateways = {x: frozenset([f"gw-{x}"]) for x in PATHS}
        users = frozenset(a.id for a in pref.agents)
        queues = {pref.lss_queue: frozenset(a.id for a in pref.agents)}
    return FreeSwitchExpectation({f"switch-{x}": g for x, g in gateways.items()}, users, queues)


def freeswitch_differences(want: FreeSwitchExpectation, *, profiles: dict[str, set[str]],
                           users: set[str], queues: dict[str, set[str]]) -> list[str]:
    out = []
    got_p = {k: frozenset(v) for k, v in profiles.items()}
    for name in sorted(set(got_p) | set(want.profiles)):
        if got_p.get(name) != want.profiles.get(name):
            out.append(f"profile {name}: want gateways {sorted(want.profiles.get(name, []))}, "
                       f"got {sorted(got_p.get(name, []))}")
    if users != want.users:
        out.append(f"users: missing {sorted(want.users - users)}, "
                   f"unexpected {sorted(users - want.users)}")
    got_q = {k: frozenset(v) for k, v in queues.items()}
    for name in sorted(set(got_q) | set(want.queues)):
        if got_q.get(name) != want.queues.get(name):
            out.append(f"queue {name}: want tiers {sorted(want.queues.get(name, []))}, "
                       f"got {sorted(got_q.get(name, []))}")
    return out
