"""The call-time relay (pbxctl/services/relay.py) between a real Asterisk 22 and our real
FastAGI server: healthy sessions pass through unchanged; a path that drops SYNs costs one
connect deadline once and nothing after; a CTI that freezes before its first command or in the
middle of a session is answered by the relay within the command deadline, and the dialplan
goes on. Calls are Local channels originated over AMI (no SIP needed to run a dialplan).

The frozen CTI is our real server with a handler that blocks (a process we can freeze on
demand at an exact point of the session); the unreachable path is a listener whose accept
queue is full, so the kernel drops the SYNs, as for a host that is gone."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ivr_scripts.call import Call
from ivr_scripts.registry import HandlerContext, Registry
from pbxctl.core import chanvars as V
from pbxctl.core.net import free_port
from pbxctl.lab.sandbox.asterisk import AsteriskInstance, find_asterisk
from pbxctl.pbx.ami import AmiClient, Message
from pbxctl.services.relay import Deadlines, Relay, RelaySettings, Target, relay_status
from tests.conftest import AgiFactory

pytestmark = pytest.mark.asterisk

COMMAND_MS = 400
RELAY_PORT_VAR = "RELAYPORT"


def ok(call: Call, ctx: HandlerContext) -> None:
    call.set_variable("MARK", "cti-ran")
    call.set_variable(V.STATUS, V.STATUS_OK)


class Freezer:
    """Handlers that block at a chosen point until the test releases them."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def freeze_first(self, call: Call, ctx: HandlerContext) -> None:
        self.release.wait(60)

    def freeze_mid(self, call: Call, ctx: HandlerContext) -> None:
        call.set_variable("MARK", "before-freeze")
        self.release.wait(60)
        call.set_variable(V.STATUS, V.STATUS_OK)


def dialplan(relay_port: int) -> str:
    event = ("UserEvent(RelayTest,Route: ${EXTEN},AgiStatus: ${AGISTATUS},"
             f"Status: ${{{V.STATUS}}},Reason: ${{{V.FAIL_REASON}}},Relay: ${{PBXCTL_RELAY}},"
             "Mark: ${MARK})")
    return (f"[relay-test]\nexten => _[a-z].,1,AGI(agi://127.0.0.1:{relay_port}/${{EXTEN}})\n"
            f" same => n,{event}\n same => n,Hangup()\n")


class Bench:
    def __init__(self, ast: AsteriskInstance, ami: AmiClient, relay: Relay,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.ast, self.ami, self.relay, self.loop = ast, ami, relay, loop

    def run(self, exten: str) -> Message:
        with self.ami.subscribe(keep=lambda m: m.get("UserEvent") == "RelayTest") as events:
            self.ami.action("Originate", Channel=f"Local/{exten}@relay-test",
                            Application="Wait", Data="5", Async="true")
            return events.wait_for(lambda m: m.get("Route") == exten, timeout=20,
                                   what=f"the dialplan after AGI {exten}")

    def status(self) -> dict[str, object]:
        host, port = self.relay.settings.host, self.relay.settings.port
        return asyncio.run_coroutine_threadsafe(relay_status(host, port), self.loop).result(10)


def syn_dropping_listener() -> tuple[socket.socket, list[socket.socket], int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(3):  # fill the accept queue; then the kernel drops new SYNs
        filler = socket.socket()
        filler.settimeout(0.3)
        try:
            filler.connect(("127.0.0.1", port))
        except OSError:
            filler.close()
            break
        fillers.append(filler)
    return listener, fillers, port


@pytest.fixture
def bench(agi_server_factory: AgiFactory, short_tmp: Path
          ) -> Iterator[Callable[[list[Target]], Bench]]:
    freezer = Freezer()
    server = agi_server_factory(registry=Registry([(ok, 30.0), (freezer.freeze_first, 90.0),
                                                   (freezer.freeze_mid, 90.0)]))
    cti_port = server.address[1]
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    made: list[tuple[Relay, AsteriskInstance, AmiClient]] = []

    def make(targets: list[Target]) -> Bench:
        settings = RelaySettings(
            host="127.0.0.1", port=free_port(), probe_interval_s=0.2,
            targets=tuple(t if t.port else Target(t.name, t.host, cti_port) for t in targets),
            deadlines=Deadlines(connect_ms=250, command_ms=COMMAND_MS, session_s=60))
        relay = Relay(settings)
        asyncio.run_coroutine_threadsafe(relay.start(), loop).result(10)
        ast = AsteriskInstance(name="relay", root=short_tmp / "ast", binary=find_asterisk(22),
                               configs={"extensions.conf": dialplan(settings.port)})
        ast.start()
        assert ast.ami is not None
        ami = AmiClient(host=ast.ami.host, port=ast.ami.port, username=ast.ami.username,
                        secret=ast.ami.secret)
        ami.connect()
        made.append((relay, ast, ami))
        return Bench(ast, ami, relay, loop)

    yield make
    freezer.release.set()
    for relay, ast, ami in made:
        ami.close()
        ast.stop()
        asyncio.run_coroutine_threadsafe(relay.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


CTI_A = Target("cti-a", "127.0.0.1", 0)  # port 0: the test's FastAGI server


def test_a_healthy_session_passes_through_unchanged(
        bench: Callable[[list[Target]], Bench]) -> None:
    b = bench([CTI_A])
    got = b.run("ok")
    assert (got["AgiStatus"], got["Status"], got["Mark"], got["Relay"]) == (
        "SUCCESS", "OK", "cti-ran", "")
    counters = dict(b.status()["counters"])  # type: ignore[call-overload]
    assert counters.get("relayed") == 1 and "answered_locally" not in counters


def test_a_path_that_drops_syns_costs_one_connect_deadline_then_nothing(
        bench: Callable[[list[Target]], Bench]) -> None:
    listener, fillers, dead_port = syn_dropping_listener()
    try:
        b = bench([Target("cti-a", "127.0.0.1", dead_port), Target("cti-b", "127.0.0.1", 0)])
        first, second = b.run("ok"), b.run("ok")
        status = b.status()
    finally:
        for s in [listener, *fillers]:
            s.close()
    assert (first["Status"], first["Mark"]) == ("OK", "cti-ran")  # over path B
    assert (second["Status"], second["Mark"]) == ("OK", "cti-ran")
    counters = dict(status["counters"])  # type: ignore[call-overload]
    assert counters["deadline_connect"] == 1  # the second call did not try path A at all
    assert status["paths"] == {"cti-a": "down", "cti-b": "up"}


def test_every_path_down_is_answered_at_once_with_the_failure_status(
        bench: Callable[[list[Target]], Bench]) -> None:
    b = bench([Target("cti-a", "127.0.0.1", free_port())])  # nothing listens: refused
    got = b.run("ok")
    assert (got["AgiStatus"], got["Status"], got["Reason"], got["Relay"], got["Mark"]) == (
        "SUCCESS", "FAIL", "cti-unreachable", "connect", "")


def test_a_province_silent_on_every_path_is_named_so_the_call_can_go_to_the_lss(
        bench: Callable[[list[Target]], Bench]) -> None:
    listener, fillers, dead_port = syn_dropping_listener()
    try:
        b = bench([Target("cti-a", "127.0.0.1", dead_port)])
        first, second = b.run("ok"), b.run("ok")
    finally:
        for s in [listener, *fillers]:
            s.close()
    # No SYN-ACK, no RST: not "the CTI refused" but "nothing answers there at all".
    assert (first["Status"], first["Reason"], first["Relay"]) == (
        "FAIL", "cti-unreachable", "silent")
    assert (second["Status"], second["Relay"]) == ("FAIL", "silent")  # known, not re-tried


def test_a_cti_frozen_before_its_first_command_gets_the_failure_status(
        bench: Callable[[list[Target]], Bench]) -> None:
    b = bench([CTI_A])
    got = b.run("freeze_first")
    assert (got["Status"], got["Reason"], got["Relay"]) == ("FAIL", "cti-timeout", "command")
    assert b.status()["paths"] == {"cti-a": "down"}  # new calls skip it until a ping answers


def test_a_cti_frozen_mid_session_leaves_the_session_broken_not_the_caller_waiting(
        bench: Callable[[list[Target]], Bench]) -> None:
    b = bench([CTI_A])
    got = b.run("freeze_mid")
    # The CTI's first command ran; then it froze: the relay ended the session, STATUS is not
    # OK (the dialplan's "session broke" branch: apology, agent).
    assert (got["Mark"], got["Status"], got["Relay"]) == ("before-freeze", "", "command")


def test_a_relay_that_is_not_running_is_refused_at_once(short_tmp: Path) -> None:
    ast = AsteriskInstance(name="norelay", root=short_tmp / "n", binary=find_asterisk(22),
                           configs={"extensions.conf": dialplan(free_port())})
    ast.start()
    try:
        assert ast.ami is not None
        with AmiClient(host=ast.ami.host, port=ast.ami.port, username=ast.ami.username,
                       secret=ast.ami.secret) as ami, ami.subscribe(
                keep=lambda m: m.get("UserEvent") == "RelayTest") as events:
            ami.action("Originate", Channel="Local/ok@relay-test", Application="Wait",
                       Data="5", Async="true")
            got = events.wait_for(lambda m: m.get("Route") == "ok", timeout=20, what="event")
    finally:
        ast.stop()
    assert got["AgiStatus"] == "FAILURE"  # the dialplan's branch for "no relay here"
