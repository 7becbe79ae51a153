"""Agents' calls for the console: the province PBX tells (UserEvent ``PbxctlAgentPop``, sent
by the queue's answer gosub the moment an agent's phone answers) and the console pops the call
on that agent's open page; an agent's ready/paused state is set with ``QueuePause``.

One AMI connection (user ``pbxctl-console``: read user,agent; write agent), read by the AMI
client's own thread; pops cross into the event loop with ``call_soon_threadsafe``. Lost
connection: reconnect with back-off; pops in between are lost for the screen only (the call
itself, its record and recording are not affected), and the page says "not live".
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote

from pbxctl.core.errors import PbxctlError, WaitTimeout
from pbxctl.pbx.ami import AmiClient, Message

log = logging.getLogger("pbxctl.console.calls")
POP_EVENT = "PbxctlAgentPop"
KEEP_PER_AGENT = 5


@dataclass(frozen=True)
class Pop:
    agent: str
    linkedid: str
    uniqueid: str
    caller: str
    did: str
    reason: str
    account: str
    queue: str
    prefecture: str
    mode: str
    start: float | None
    answer: float | None
    recording: str
    received: float  # time.time() when the console got the event

    @property
    def wait_s(self) -> float | None:
        if self.start is None or self.answer is None:
            return None
        return max(0.0, self.answer - self.start)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def pop_from_event(msg: Mapping[str, str], *, received: float) -> Pop | None:
    """The pop an event describes, or None when it names no agent or call (or names them
    with characters no endpoint or linkedid has). Free text came URI-encoded; the account is
    kept only if it is all digits."""
    agent, linkedid = msg.get("Agent", ""), msg.get("Linkedid", "")
    if not _ID.fullmatch(agent) or not _ID.fullmatch(linkedid):
        return None
    account = msg.get("Account", "")
    return Pop(agent=agent, linkedid=linkedid, uniqueid=msg.get("CallerUniqueid", ""),
               caller=unquote(msg.get("Caller", "")), did=unquote(msg.get("Did", "")),
               reason=msg.get("Reason", ""), account=account if account.isdigit() else "",
               queue=msg.get("Queue", ""), prefecture=msg.get("Prefecture", ""),
               mode=msg.get("Mode", ""), start=_number(msg.get("Start", "")),
               answer=_number(msg.get("Answer", "")), recording=msg.get("Recording", ""),
               received=received)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


# Asterisk device states of a queue member (QueueMember's Status) that mean "on a call".
_BUSY = {"2", "3", "6", "7", "8"}  # in use, busy, ringing, ring+in use, on hold


def member_state(event: Mapping[str, str]) -> str:
    """ready | busy | paused | offline, from a QueueMember event."""
    if event.get("Paused") == "1":
        return "paused"
    status = event.get("Status", "")
    if status in ("0", "4", "5"):  # unknown, invalid, unavailable: no phone there
        return "offline"
    if event.get("InCall") == "1" or status in _BUSY:
        return "busy"
    return "ready"


@dataclass
class QueueLive:
    name: str
    waiting: int = 0
    longest_s: int = 0
    members: list[tuple[str, str]] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(1 for _, s in self.members if s == state)

    def state_of(self, seat: str) -> str:
        return next((s for m, s in self.members if m == seat), "")


class LiveCalls:
    """What the pages use, whatever the province's engine: the agents' latest pops, live
    page subscriptions, and (in each engine's feed) pause, member state, spy and queues.
    ``run()`` is the console's background task."""

    source = "the province PBX"  # for log lines: what the pops are read from

    def __init__(self, *, max_backoff: float = 10.0) -> None:
        self.max_backoff = max_backoff
        self._recent: dict[str, deque[Pop]] = {}
        self._subs: dict[str, set[asyncio.Queue[Pop]]] = {}
        self._stop = threading.Event()
        self.connected = False
        self.received = 0

    # -- for the pages -------------------------------------------------------------------------
    def recent(self, agent: str) -> list[Pop]:
        return list(self._recent.get(agent, ()))

    def pop(self, agent: str, linkedid: str) -> Pop | None:
        """The agent's own pop of that call (another agent's is not found)."""
        return next((p for p in self._recent.get(agent, ()) if p.linkedid == linkedid), None)

    @contextmanager
    def subscribe(self, agent: str) -> Iterator[asyncio.Queue[Pop]]:
        q: asyncio.Queue[Pop] = asyncio.Queue(maxsize=64)
        self._subs.setdefault(agent, set()).add(q)
        try:
            yield q
        finally:
            self._subs.get(agent, set()).discard(q)

    def publish(self, pop: Pop) -> None:
        """Keep ``pop`` as the agent's latest and tell their open pages (event loop only)."""
        self._recent.setdefault(pop.agent, deque(maxlen=KEEP_PER_AGENT)).appendleft(pop)
        for q in self._subs.get(pop.agent, ()):
            if q.full():  # a stalled page: it reloads its pops on reconnect
                continue
            q.put_nowait(pop)

    def queue_pause(self, *, agent: str, paused: bool, reason: str) -> None:
        raise NotImplementedError

    def member_state(self, agent: str) -> str:
        raise NotImplementedError

    def spy(self, *, supervisor: str, agent: str, mode: str, code: str) -> None:
        """Ring ``supervisor``'s phone into listen/whisper/barge (``mode``) on ``agent``'s
        call; ``code`` is the feature code the province's dialplan has for it."""
        raise NotImplementedError

    def queues(self) -> dict[str, QueueLive]:
        raise NotImplementedError

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        thread = threading.Thread(target=self._read, args=(loop,), name="console-calls",
                                  daemon=True)
        thread.start()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            self._stop.set()
            self._close()
            await asyncio.to_thread(thread.join, 5.0)

    def _close(self) -> None:
        """Interrupt the reader's wait (called from the event loop when stopping)."""

    # -- the reader (a thread): connect with back-off, listen until lost, again ----------------
    def _open(self) -> None:
        raise NotImplementedError

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        raise NotImplementedError

    def _shut(self) -> None:
        raise NotImplementedError

    def _deliver(self, pop: Pop | None, loop: asyncio.AbstractEventLoop) -> None:
        if pop is not None:
            self.received += 1
            loop.call_soon_threadsafe(self.publish, pop)

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._open()
            except PbxctlError as exc:
                log.warning("%s for screen pops unreachable: %s", self.source, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.5
            self.connected = True
            log.info("screen pops: listening on %s", self.source)
            try:
                self._listen(loop)
            except (PbxctlError, OSError) as exc:
                log.warning("screen pops: %s failed: %s", self.source, exc)
            finally:
                self.connected = False
                self._shut()
            if not self._stop.is_set():
                log.warning("screen pops: %s lost; reconnecting", self.source)


class CallFeed(LiveCalls):
    """An Asterisk province: pops from AMI, actions over the same AMI connection."""

    source = "the province PBX's AMI"

    def __init__(self, connect: Callable[[], AmiClient], *, max_backoff: float = 10.0) -> None:
        super().__init__(max_backoff=max_backoff)
        self._connect = connect
        self._client: AmiClient | None = None

    def queue_pause(self, *, agent: str, paused: bool, reason: str) -> None:
        """Pause or unpause the agent's phone in every queue it is a member of."""
        client = self._client
        if client is None or not client.connected:
            raise PbxctlError("the province PBX is not reachable just now: state unchanged")
        reply = client.action("QueuePause", Interface=f"PJSIP/{agent}",
                              Paused="true" if paused else "false", Reason=reason)
        if not reply.ok:
            raise PbxctlError(f"QueuePause refused: {reply.response.get('Message', '')}")

    def member_state(self, agent: str) -> str:
        """"paused", "ready", or "" when the PBX cannot say just now."""
        client = self._client
        if client is None or not client.connected:
            return ""
        reply = client.action("QueueStatus", Member=f"PJSIP/{agent}")
        members = [e for e in reply.events if e.get("Event") == "QueueMember"]
        if not members:
            return ""
        return "paused" if any(m.get("Paused") == "1" for m in members) else "ready"

    def spy(self, *, supervisor: str, agent: str, mode: str, code: str) -> None:
        """Ring the supervisor's phone; answered, it dials ``code`` (e.g. *1<ext>, listen) in
        the province's ``supervisors`` context — the one place the spy codes exist, so the
        dialplan, not the console, decides what a supervisor may do."""
        client = self._client
        if client is None or not client.connected:
            raise PbxctlError("the province PBX is not reachable just now: no call placed")
        reply = client.action("Originate", Channel=f"PJSIP/{supervisor}",
                              Context="supervisors", Exten=code, Priority="1",
                              CallerID=f"pbxctl {code}", Timeout="30000", Async="true")
        if not reply.ok:
            raise PbxctlError(f"Originate refused: {reply.response.get('Message', '')}")

    def queues(self) -> dict[str, QueueLive]:
        """Every queue's live state (one QueueStatus), or {} when the PBX cannot say."""
        client = self._client
        if client is None or not client.connected:
            return {}
        reply = client.action("QueueStatus")
        out: dict[str, QueueLive] = {}
        for e in reply.events:
            name = e.get("Queue", "")
            if not name:
                continue
            q = out.setdefault(name, QueueLive(name))
            kind = e.get("Event")
            if kind == "QueueParams":
                q.waiting = _int(e.get("Calls", "0"))
            elif kind == "QueueEntry":
                q.longest_s = max(q.longest_s, _int(e.get("Wait", "0")))
            elif kind == "QueueMember":
                where = e.get("Location", e.get("Interface", ""))
                q.members.append((where.removeprefix("PJSIP/"), member_state(e)))
        return out

    # -- the reader ----------------------------------------------------------------------------
    def _close(self) -> None:
        client = self._client
        if client is not None:
            client.close()

    def _open(self) -> None:
        self._client = self._connect()

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        client = self._client
        assert client is not None
        keep: Callable[[Message], bool] = lambda m: m.get("UserEvent") == POP_EVENT  # noqa: E731
        with client.subscribe(keep=keep) as events:
            while not self._stop.is_set() and client.connected:
                try:
                    msg = events.wait_for(lambda m: True, timeout=1.0, what=POP_EVENT)
                except WaitTimeout:
                    continue
                self._deliver(pop_from_event(msg, received=time.time()), loop)

    def _shut(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
