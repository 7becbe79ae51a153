"""Live state of PBX instances from AMI: queues, agents, active calls.

Every refresh is a resync (QueueStatus + CoreShowChannels), so a view can never drift from
Asterisk's own state; ``ResilientAmi`` keeps one connection per site across Asterisk restarts
and slow replies (reconnect with backoff, every wait bounded) and reports a site it cannot
reach instead of failing the whole view.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pbxctl.core.errors import CommandFailed, ServiceStartError, WaitTimeout
from pbxctl.pbx.ami import AmiClient, Message

log = logging.getLogger("pbxctl.pbx.monitor")

# Queue member Status (a device state) → what a supervisor calls it.
_MEMBER_STATE = {"0": "unknown", "1": "available", "2": "busy", "3": "busy", "4": "invalid",
                 "5": "unavailable", "6": "ringing", "7": "busy", "8": "on hold"}


@dataclass(frozen=True)
class AmiTarget:
    site: str
    host: str
    port: int
    username: str
    secret: str
    source: str | None = None


@dataclass(frozen=True)
class MemberView:
    queue: str
    interface: str
    name: str
    state: str
    paused: bool
    calls_taken: int


@dataclass(frozen=True)
class QueueView:
    name: str
    waiting: int
    longest_wait_s: int
    available: int
    busy: int
    paused: int
    unavailable: int
    completed: int
    abandoned: int


@dataclass(frozen=True)
class ChannelView:
    channel: str
    state: str
    caller: str
    where: str  # context/exten, or the application running
    duration_s: int
    bridged: bool
    linkedid: str


@dataclass(frozen=True)
class SiteStatus:
    site: str
    reachable: bool
    error: str = ""
    queues: tuple[QueueView, ...] = ()
    members: tuple[MemberView, ...] = ()
    channels: tuple[ChannelView, ...] = ()
    fetched_at: float = field(default_factory=time.time)


def _int(msg: Message, key: str) -> int:
    try:
        return int(msg.get(key, "0") or 0)
    except ValueError:
        return 0


def _hms(text: str) -> int:
    try:
        h, m, s = (int(x) for x in text.split(":"))
    except ValueError:
        return 0
    return h * 3600 + m * 60 + s


def queue_views(events: list[Message]) -> tuple[tuple[QueueView, ...], tuple[MemberView, ...]]:
    """Fold QueueStatus's events (QueueParams, QueueMember, QueueEntry) into views."""
    members = [MemberView(
        queue=e.get("Queue", ""), interface=e.get("StateInterface") or e.get("Location", ""),
        name=e.get("Name") or e.get("MemberName", ""),
        state="paused" if e.get("Paused") == "1" else _MEMBER_STATE.get(e.get("Status", "0"),
                                                                         "unknown"),
        paused=e.get("Paused") == "1", calls_taken=_int(e, "CallsTaken"))
        for e in events if e.get("Event") == "QueueMember"]
    waits: dict[str, list[int]] = {}
    for e in events:
        if e.get("Event") == "QueueEntry":
            waits.setdefault(e.get("Queue", ""), []).append(_int(e, "Wait"))
    queues = []
    for e in events:
        if e.get("Event") != "QueueParams":
            continue
        name = e.get("Queue", "")
        mine = [m for m in members if m.queue == name]
        queues.append(QueueView(
            name=name, waiting=len(waits.get(name, [])),
            longest_wait_s=max(waits.get(name, [0])),
            available=sum(m.state == "available" for m in mine),
            busy=sum(m.state in ("busy", "ringing", "on hold") for m in mine),
            paused=sum(m.paused for m in mine),
            unavailable=sum(m.state in ("unavailable", "invalid", "unknown") for m in mine),
            completed=_int(e, "Completed"), abandoned=_int(e, "Abandoned")))
    return tuple(sorted(queues, key=lambda q: q.name)), tuple(members)


def channel_views(events: list[Message]) -> tuple[ChannelView, ...]:
    out = []
    for e in events:
        if e.get("Event") != "CoreShowChannel":
            continue
        app = e.get("Application", "")
        where = app if app else f"{e.get('Context', '')}/{e.get('Exten', '')}"
        out.append(ChannelView(
            channel=e.get("Channel", ""), state=e.get("ChannelStateDesc", ""),
            caller=e.get("CallerIDNum", ""), where=where, duration_s=_hms(e.get("Duration", "")),
            bridged=bool(e.get("BridgeId")), linkedid=e.get("Linkedid", "")))
    return tuple(out)


def snapshot(client: AmiClient, site: str, *, timeout: float = 5.0) -> SiteStatus:
    """One consistent read of a site (two list actions, each bounded by ``timeout``)."""
    q = client.action("QueueStatus", timeout=timeout)
    c = client.action("CoreShowChannels", timeout=timeout)
    for reply, what in ((q, "QueueStatus"), (c, "CoreShowChannels")):
        if not reply.ok:
            raise CommandFailed(f"AMI {what} on {site}: {reply.response.get('Message')}")
    queues, members = queue_views(q.events)
    return SiteStatus(site, True, queues=queues, members=members,
                      channels=channel_views(c.events))


_LINK_ERRORS = (CommandFailed, ServiceStartError, WaitTimeout, OSError)


class ResilientAmi:
    """One site's AMI connection that comes back after Asterisk restarts.

    ``call(fn)`` runs ``fn(client)`` on a live connection, connecting first if needed; a
    broken link is dropped and retried no sooner than the backoff allows, so a dead site costs
    one bounded attempt per backoff period, not one per refresh.
    """

    def __init__(self, target: AmiTarget, *, timeout: float = 5.0,
                 max_backoff: float = 10.0,
                 on_connect: Callable[[AmiClient], None] | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.on_connect = on_connect
        self._client: AmiClient | None = None
        self._lock = threading.Lock()
        self._backoff = 0.5
        self._next_try = 0.0
        self.reconnects = 0
        self.last_error = ""

    def _live(self) -> AmiClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop()
        now = time.monotonic()
        if now < self._next_try:
            raise ServiceStartError(f"{self.target.site}: AMI down ({self.last_error}); "
                                    f"retry in {self._next_try - now:.1f}s")
        t = self.target
        client = AmiClient(host=t.host, port=t.port, username=t.username, secret=t.secret,
                           timeout=self.timeout, source=t.source)
        try:
            client.connect()
            if self.on_connect is not None:
                self.on_connect(client)
        except _LINK_ERRORS as exc:
            client.close()
            self._fail(exc)
            raise
        self._client, self._backoff = client, 0.5
        self.reconnects += 1
        return client

    def _fail(self, exc: BaseException) -> None:
        self.last_error = str(getattr(exc, "message", exc)) or type(exc).__name__
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.max_backoff)

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def call(self, fn: Callable[[AmiClient], SiteStatus]) -> SiteStatus:
        with self._lock:
            try:
                client = self._live()
                return fn(client)
            except _LINK_ERRORS as exc:
                if self._client is not None:  # the link broke mid-call: reconnect next time
                    self._drop()
                    self._fail(exc)
                return SiteStatus(self.target.site, False, error=self.last_error or str(exc))

    def status(self) -> SiteStatus:
        return self.call(lambda c: snapshot(c, self.target.site, timeout=self.timeout))

    def close(self) -> None:
        with self._lock:
            self._drop()
