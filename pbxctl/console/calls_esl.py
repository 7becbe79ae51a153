"""Agents' calls for the console when the province runs FreeSWITCH: mod_callcenter tells over
the province's inbound event socket (``CUSTOM callcenter::info``, action
``bridge-agent-start`` the moment an agent's phone is bridged to the caller), and an agent's
ready/paused state is the agent's mod_callcenter status (``Available`` / ``On Break``).

One event connection, read by a thread of its own; every action on a short connection of its
own (the event stream is never mixed with command replies). Lost connection: reconnect with
back-off, as the AMI feed does. Listen/whisper/barge: the supervisor's phone is originated
into the spy code in the province's ``supervisors`` context, as on Asterisk."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping

from pbxctl.console.calls import LiveCalls, Pop, QueueLive
from pbxctl.core.errors import PbxctlError, WaitTimeout
from pbxctl.pbx.esl_inbound import InboundEsl
from pbxctl.pbx.freeswitch_show import table

log = logging.getLogger("pbxctl.console.calls")
CC_EVENT = "callcenter::info"
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
DOMAIN = "pbxctl"  # the directory domain of every site (provisioning.render_freeswitch)
_CODE = re.compile(r"\*[123][0-9]{1,16}")


def _epoch(value: str) -> float | None:
    try:
        return float(value) if value and value != "0" else None
    except ValueError:
        return None


def pop_from_cc(event: Mapping[str, str], *, received: float) -> Pop | None:
    """The pop a ``bridge-agent-start`` describes (None for any other event, or ids with
    characters no seat or channel id has)."""
    if event.get("CC-Action") != "bridge-agent-start":
        return None
    agent, call = event.get("CC-Agent", ""), event.get("CC-Member-Session-UUID", "")
    if not _ID.fullmatch(agent) or not _ID.fullmatch(call):
        return None
    account = event.get("variable_PBXCTL_ACCOUNT", "")
    return Pop(agent=agent, linkedid=call, uniqueid=call,
               caller=event.get("CC-Member-CID-Number", ""),
               did=event.get("variable_pbxctl_did", ""),
               reason=event.get("variable_pbxctl_overflow", ""),
               account=account if account.isdigit() else "",
               queue=event.get("CC-Queue", ""),
               prefecture=event.get("variable_pbxctl_prefecture", ""), mode="",
               start=_epoch(event.get("CC-Member-Joined-Time", "")),
               answer=_epoch(event.get("CC-Agent-Answered-Time", "")), recording="",
               received=received)


def agent_state(row: Mapping[str, str]) -> str:
    """ready | busy | paused | offline, from a mod_callcenter agent row."""
    status, state = row.get("status", ""), row.get("state", "")
    if status == "On Break":
        return "paused"
    if status == "Logged Out":
        return "offline"
    if state in ("Receiving", "In a queue call"):
        return "busy"
    return "ready"


class EslCallFeed(LiveCalls):
    source = "the province FreeSWITCH's event socket"

    def __init__(self, connect: Callable[[], InboundEsl], *, max_backoff: float = 10.0) -> None:
        super().__init__(max_backoff=max_backoff)
        self._connect = connect
        self._events: InboundEsl | None = None

    def _api(self, command: str) -> str:
        try:
            with self._connect() as esl:
                return esl.api(command)
        except PbxctlError as exc:
            raise PbxctlError(f"the province PBX is not reachable just now: {exc.message}"
                              ) from None

    @staticmethod
    def _checked(agent: str) -> str:
        if not _ID.fullmatch(agent):  # it goes into an API command line
            raise PbxctlError(f"not a seat id: {agent!r}")
        return agent

    def queue_pause(self, *, agent: str, paused: bool, reason: str) -> None:
        """mod_callcenter has no pause reason: the status is all it keeps (the reason is in
        the console's log line)."""
        status = "'On Break'" if paused else "Available"
        reply = self._api(f"callcenter_config agent set status {self._checked(agent)} {status}")
        if "+OK" not in reply:
            raise PbxctlError(f"agent status refused: {reply.strip()}")

    def member_state(self, agent: str) -> str:
        try:
            status = self._api(f"callcenter_config agent get status {self._checked(agent)}")
        except PbxctlError:
            return ""
        status = status.strip()
        return {"On Break": "paused", "Available": "ready",
                "Available (On Demand)": "ready"}.get(status, "")

    def spy(self, *, supervisor: str, agent: str, mode: str, code: str) -> None:
        """As on Asterisk: ring the supervisor's phone into ``code`` in the province's
        ``supervisors`` context, where the codes exist — the dialplan, not the console,
        decides what a supervisor may do (``eavesdrop`` on the agent's group)."""
        if not _CODE.fullmatch(code):  # it goes into an originate string
            raise PbxctlError(f"not a spy code: {code!r}")
        head = (f"origination_caller_id_number={code},origination_caller_id_name=pbxctl,"
                "originate_timeout=30")
        try:
            with self._connect() as esl:
                esl.bgapi(f"originate {{{head}}}user/{self._checked(supervisor)}@{DOMAIN} "
                          f"{code} XML supervisors")
        except PbxctlError as exc:
            raise PbxctlError(f"the province PBX is not reachable just now: {exc.message}"
                              ) from None

    def queues(self) -> dict[str, QueueLive]:
        try:
            names = [r["name"] for r in table(self._api("callcenter_config queue list"))
                     if r.get("name")]
            out: dict[str, QueueLive] = {}
            now = time.time()
            for name in names:
                if not _ID.fullmatch(name):
                    continue
                q = out[name] = QueueLive(name)
                waiting = [r for r in table(self._api(
                    f"callcenter_config queue list members {name}"))
                    if r.get("state") in ("Waiting", "Trying")]
                q.waiting = len(waiting)
                joined = [_epoch(r.get("joined_epoch", "")) for r in waiting]
                q.longest_s = max((int(now - j) for j in joined if j), default=0)
                q.members = [(r.get("name", ""), agent_state(r)) for r in table(self._api(
                    f"callcenter_config queue list agents {name}"))]
        except PbxctlError:
            return {}
        return out

    def _open(self) -> None:
        esl = self._connect()
        try:
            esl.subscribe("CUSTOM", CC_EVENT)
        except BaseException:
            esl.close()
            raise
        self._events = esl

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        esl = self._events
        assert esl is not None
        while not self._stop.is_set():
            try:
                event = esl.wait_event(lambda e: True, timeout=1.0, what=CC_EVENT)
            except WaitTimeout:
                continue
            self._deliver(pop_from_cc(event, received=time.time()), loop)

    def _shut(self) -> None:
        esl, self._events = self._events, None
        if esl is not None:
            esl.close()
