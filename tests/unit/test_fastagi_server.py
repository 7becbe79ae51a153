"""The FastAGI server over real loopback sockets: malformed sessions by the ten thousand,
a concurrent healthy session that must never notice, graceful shutdown."""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr_scripts.call import Call
from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.handlers import default_registry
from ivr_scripts.health import check
from ivr_scripts.registry import HandlerContext, Registry
from pbxctl.core.net import free_port

ENV_OK = b"agi_network: yes\nagi_network_script: welcome\nagi_uniqueid: 1.1\nagi_dnid: 95598\n"


@pytest.fixture(scope="module")
def server() -> Iterator[FastAgiServer]:
    srv = FastAgiServer(registry=default_registry(),
                        context=HandlerContext(fixed_welcome={"default": "x"}),
                        config=AgiServerConfig(port=free_port(), env_timeout=0.3,
                                               read_timeout=0.3))
    srv.start()
    yield srv
    srv.shutdown(grace=5)


# -- what a broken or hostile peer sends -------------------------------------------------
env_line = st.one_of(
    st.just(b"agi_request: agi://x/welcome\n"),
    st.binary(max_size=64).map(lambda b: b.replace(b"\n", b"") + b"\n"),  # garbage, non-UTF-8
    st.integers(4096, 9000).map(lambda n: b"agi_x: " + b"A" * n + b"\n"),  # over-long line
    st.just(b"HANGUP\n"),
    st.just(b"\xff\xfe\xfd: \x80\n"),
)
reply_line = st.sampled_from([b"200 result=1\n", b"HANGUP\n", b"511 Command Not Permitted\n",
                              b"520-Invalid command syntax.\n", b"nonsense\n", b"200\n",
                              b"200 result=-1\n", b"\x00\x01\x02\n", b"5" * 5000 + b"\n"])
session = st.tuples(
    st.lists(env_line, max_size=6),
    st.booleans(),                      # the blank line that ends the environment
    st.lists(reply_line, max_size=6),
    st.sampled_from(["close", "half-close", "silent"]),
)


def _run_bad(port: int, spec: tuple[list[bytes], bool, list[bytes], str]) -> None:
    env, blank, replies, end = spec
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        try:
            s.sendall(b"".join(env) + (b"\n" if blank else b"") + b"".join(replies))
            if end == "half-close":
                s.shutdown(socket.SHUT_WR)
            if end != "close":
                s.settimeout(2)
                while s.recv(65536):  # until the server gives up on us
                    pass
        except OSError:
            pass  # the server may close first: that is its right


class Healthy:
    """A correct session running in a loop for the whole test."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ok = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                check("127.0.0.1", self.port, timeout=5)
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 -- every failure is a finding
                self.errors.append(repr(exc))


SESSIONS_PER_EXAMPLE = 50
EXAMPLES = 205  # 205 x 50 = 10,250 malformed sessions


def test_ten_thousand_malformed_sessions_leave_a_healthy_session_alone(
        server: FastAgiServer) -> None:
    port = server.address[1]
    healthy = Healthy(port)
    healthy.thread.start()
    sent = {"n": 0}
    pool = ThreadPoolExecutor(max_workers=SESSIONS_PER_EXAMPLE)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(session, min_size=SESSIONS_PER_EXAMPLE, max_size=SESSIONS_PER_EXAMPLE))
    def batch(specs: list[tuple[list[bytes], bool, list[bytes], str]]) -> None:
        list(pool.map(lambda spec: _run_bad(port, spec), specs))
        sent["n"] += len(specs)

    try:
        batch()
    finally:
        healthy.stop.set()
        healthy.thread.join(timeout=10)
        pool.shutdown()
    assert sent["n"] >= 10_000
    assert healthy.errors == [] and healthy.ok > 0
    assert server._thread is not None and server._thread.is_alive()
    assert server.stats["sessions"] >= sent["n"] + healthy.ok


def test_unknown_route_sets_the_failure_variables(server: FastAgiServer) -> None:
    with socket.create_connection(server.address, timeout=3) as s:
        s.sendall(ENV_OK.replace(b"welcome", b"nope") + b"\n")
        f = s.makefile("rb")
        assert f.readline() == b'SET VARIABLE "PBXCTL_FAIL_REASON" "unknown-route"\n'
        s.sendall(b"200 result=1\n")
        assert f.readline() == b'SET VARIABLE "PBXCTL_STATUS" "FAIL"\n'


def test_graceful_shutdown_finishes_running_calls_and_refuses_new() -> None:
    release = threading.Event()

    def slow(call: Call, ctx: HandlerContext) -> None:
        release.wait(10)

    srv = FastAgiServer(registry=Registry([slow]), context=HandlerContext(),
                        config=AgiServerConfig(port=free_port()))
    srv.start()
    host, port = srv.address
    running = socket.create_connection((host, port), timeout=5)
    running.sendall(ENV_OK.replace(b"welcome", b"slow") + b"\n")
    left: list[int] = []
    stopper = threading.Thread(target=lambda: left.append(srv.shutdown(grace=10)))
    deadline = time.monotonic() + 5
    while srv.stats["sessions"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stopper.start()
    refused = False
    deadline = time.monotonic() + 5
    while not refused and time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            time.sleep(0.02)
        except OSError:
            refused = True
    assert refused and stopper.is_alive()  # new calls refused while the old one runs
    release.set()
    f = running.makefile("rb")
    assert f.readline() == b'SET VARIABLE "PBXCTL_STATUS" "OK"\n'
    running.sendall(b"200 result=1\n")
    stopper.join(timeout=10)
    assert left == [0]
    running.close()


def test_holds_two_thousand_concurrent_sessions() -> None:
    """2,000 sessions inside a handler at once (a listen backlog of 1024 absorbs the burst);
    each is answered once released."""
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 3 * n:  # both ends of every connection live in this process
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * n), hard))
    inside = threading.Semaphore(0)
    release = threading.Event()

    def hold(call: Call, ctx: HandlerContext) -> None:
        inside.release()
        release.wait(60)

    srv = FastAgiServer(registry=Registry([(hold, 120.0)]), context=HandlerContext(),
                        config=AgiServerConfig(port=free_port(), read_timeout=60))
    srv.start()
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(srv.address, timeout=10)
            s.sendall(ENV_OK.replace(b"welcome", b"hold") + b"\n")
            socks.append(s)
        for _ in range(n):
            assert inside.acquire(timeout=60), "not every session reached its handler"
        release.set()
        answered = 0
        for s in socks:
            f = s.makefile("rb")
            if f.readline() == b'SET VARIABLE "PBXCTL_STATUS" "OK"\n':
                answered += 1
            s.sendall(b"200 result=1\n")
        assert answered == n
    finally:
        release.set()
        for s in socks:
            s.close()
        srv.shutdown(grace=10)
