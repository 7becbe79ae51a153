"""The validated province: immutable, typed. Built only by :mod:`provisioning.inventory`."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

SeatKind = Literal["agent", "supervisor", "terminal"]
Role = Literal["province", "gateway", "lss"]
PATHS = ("a", "b")  # switch A and switch B: every server is on both


@dataclass(frozen=True)
class Host:
    """A server with one address on each switch network."""

    name: str
    a: IPv4Address
    b: IPv4Address

    def addr(self, path: str) -> IPv4Address:
        return self.a if path == "a" else self.b


@dataclass(frozen=True)
class Seat:
    id: str
    name: str
    extension: str
    kind: SeatKind
    home: str  # prefecture code (agents), county code (terminals), province code (supervisors)
    group: str = ""  # terminals: the seat group work orders are dispatched to (e.g. field)


@dataclass(frozen=True)
class BusinessHours:
    days: tuple[str, ...]
    open: str
    close: str
    # Out of hours a caller who asks for a person gets: "selfservice" (back to the 24x7 menu
    # with a closed notice) or "message" (the closed notice, then the call ends).
    after_hours: str = "selfservice"


@dataclass(frozen=True)
class Options:
    qualify_frequency: int = 1
    qualify_timeout: float = 1.0
    trunk_dial_timeout: int = 5
    queue_timeout: int = 300
    agent_ring_timeout: int = 15
    overflow_wait: int = 60  # seconds in the prefecture queue before the supervisors take over
    timezone: str = "Asia/Shanghai"  # business hours are local time
    # Survivable mode: back to the province only after it stayed reachable this long.
    failback_hold_down: int = 30
    # A call whose audio stopped (its path died under it) is torn down after this many
    # seconds without RTP on an inter-site trunk, instead of dead air until the caller quits.
    rtp_timeout: int = 20
    # Ghost-call guard: an INVITE older than this (seconds, by the gateway's stamp; needs
    # NTP-synced clocks) is refused by the province/LSS. 0 turns the guard off.
    invite_max_age: int = 5
    # Optional failback rules on top of the hold-down (pbxctl/failback.py): "lss-idle" waits
    # until the LSS carries no call; a window ("02:00-05:00", local time) waits for it.
    failback_rule: str = "hold-down"
    failback_window: str = ""
    # AMI: besides the CTI hosts and the site itself, these management hosts (an NMS, the
    # lab's drill nodes) may sign in as the operations user. Exact addresses, no networks.
    ami_permit: tuple[IPv4Address, ...] = ()
    # The call-time relay beside each gateway/LSS (pbxctl/services/relay.py): how long a
    # caller may wait on the CTI — to connect on one path, for the CTI's next command once
    # Asterisk answered the last, and for a whole AGI session. Defaults: docs/survivability.md.
    cti_connect_timeout_ms: int = 250
    cti_command_timeout_ms: int = 1500
    cti_session_budget_s: int = 300
    relay_port: int = 4574


@dataclass(frozen=True)
class Prefecture:
    code: str
    name: str
    area_codes: tuple[str, ...]
    dids: tuple[str, ...]
    network_a: IPv4Network
    network_b: IPv4Network
    pstn_gateway: Host
    gateway: Host
    lss: Host
    agents: tuple[Seat, ...]
    hours: BusinessHours
    ivr: Host | None = None  # None: the IVR runs on the LSS host

    @property
    def ivr_host(self) -> Host:
        """Where the prefecture's IVR and its replica database run."""
        return self.ivr or self.lss

    @property
    def queue(self) -> str:
        """The province ACD queue of this prefecture."""
        return f"acd-{self.code}"

    @property
    def lss_queue(self) -> str:
        return f"lss-{self.code}"


@dataclass(frozen=True)
class County:
    code: str
    name: str
    prefecture: str
    seats: tuple[Seat, ...]


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    network_a: IPv4Network
    network_b: IPv4Network
    pbx: Host
    cti: Host
    cti_port: int
    db_secret: str
    supervisors: tuple[Seat, ...]
    options: Options

    @property
    def supervisor_queue(self) -> str:
        return "acd-supervisors"


@dataclass(frozen=True)
class Site:
    """One Asterisk instance to render: the province PBX, a gateway or an LSS."""

    name: str
    role: Role
    host: Host
    prefecture: Prefecture | None = None


@dataclass(frozen=True)
class Dispatch:
    """Work-order dispatch: which seat group handles which order type (a type not listed
    cannot be dispatched), and how terminal seats are called about a new order."""

    groups: dict[str, str]  # order type -> seat group
    ring_timeout: int = 30  # seconds a terminal seat rings
    attempts: int = 3  # calls before the order is escalated to the prefecture
    retry_interval: int = 60  # seconds between calls


@dataclass(frozen=True)
class Inventory:
    source: str
    province: Province
    prefectures: tuple[Prefecture, ...]
    counties: tuple[County, ...]
    dispatch: Dispatch = Dispatch(groups={})

    def county(self, code: str) -> County:
        for c in self.counties:
            if c.code == code:
                return c
        raise KeyError(code)

    def prefecture(self, code: str) -> Prefecture:
        for p in self.prefectures:
            if p.code == code:
                return p
        raise KeyError(code)

    def sites(self) -> tuple[Site, ...]:
        out = [Site(self.province.pbx.name, "province", self.province.pbx)]
        for p in self.prefectures:
            out.append(Site(p.gateway.name, "gateway", p.gateway, p))
            out.append(Site(p.lss.name, "lss", p.lss, p))
        return tuple(out)

    def site(self, name: str) -> Site:
        for s in self.sites():
            if s.name == name:
                return s
        raise KeyError(name)

    def all_seats(self) -> tuple[Seat, ...]:
        seats = list(self.province.supervisors)
        for p in self.prefectures:
            seats.extend(p.agents)
        for c in self.counties:
            seats.extend(c.seats)
        return tuple(seats)

    # -- pbxctl.data.orders.DispatchRules: what dispatching needs of the province ----------
    def order_group(self, order_type: str) -> str | None:
        return self.dispatch.groups.get(order_type)

    def county_seats(self, county: str) -> list[tuple[str, str]]:
        """(seat id, group) of a county's terminal seats; KeyError for an unknown county."""
        return [(s.id, s.group) for s in self.county(county).seats]

    def counties_of(self, prefecture: str) -> tuple[County, ...]:
        return tuple(c for c in self.counties if c.prefecture == prefecture)
