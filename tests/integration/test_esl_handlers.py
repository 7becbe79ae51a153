"""The IVR handlers over ESL (greenswitch's outbound server, our bounded adapter) against a
protocol-speaking FreeSWITCH stand-in — the same scenarios the Asterisk tests run over
FastAGI with real calls (tests/handler_scenarios.py).

No real FreeSWITCH runs here: it is in no Debian suite and no reachable registry. What this
proves is the ESL wire protocol as FreeSWITCH speaks it and the handlers' behaviour through
it; not media, timing, or FreeSWITCH's own dialplan."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr_scripts.call import Call, CallHangup, CallTimeout
from ivr_scripts.catalog import PromptCatalog
from ivr_scripts.esl import EslServer
from ivr_scripts.handlers import default_registry
from ivr_scripts.phrases import init_system_prompts
from ivr_scripts.registry import HandlerContext, Registry
from pbxctl.cli import main
from pbxctl.core import chanvars as V
from pbxctl.core.net import free_port
from pbxctl.core.procs import wait_until
from pbxctl.data.prompts import published_versions, rules
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store
from pbxctl.ops.publish import publish
from pbxctl.services.tts import TtsCache
from provisioning.inventory import load_inventory
from provisioning.sample import seed_input
from tests.fakes.fake_freeswitch import FakeChannel, FakeEventSocket, call_outbound
from tests.handler_scenarios import SCENARIOS, WELCOME, Scenario, contiguous, seed_oracle_bill

pytestmark = pytest.mark.pg

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"
PROMPTS = "/var/lib/pbxctl-test/sounds/pbxctl"
TIMEOUT = 2.0


@pytest.fixture
def esl(fresh_db: Store, tts_cache_dir: Path, tmp_path: Path) -> Iterator[EslServer]:
    inv = load_inventory(SMALL)
    seed_sample_data(fresh_db, seed_input(inv))
    seed_oracle_bill(fresh_db)
    init_system_prompts(fresh_db)  # and published, so the catalogue can name the welcome
    publish(fresh_db, inv, tmp_path, cache=TtsCache(root=tts_cache_dir),
            sites=[inv.site("hz-gw")])
    catalog = PromptCatalog(load=lambda: (rules(fresh_db), published_versions(fresh_db)))
    assert catalog.prime()
    server, thread = serve(HandlerContext(store=fresh_db, catalog=catalog))
    yield server
    server.stop()
    thread.join(timeout=10)


def channel(route: str, *, keys: list[str] | None = None) -> FakeChannel:
    return FakeChannel(uuid=str(uuid.uuid4()), digits=list(keys or []),
                       variables={"pbxctl_route": route,
                                  "pbxctl_params": "site=hz-gw&pref=HZ",
                                  V.PROMPT_DIR: PROMPTS})


def prompt_ids(ch: FakeChannel) -> list[str]:
    return [p.removeprefix(PROMPTS + "/").removesuffix("/current.wav") for p in ch.played]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_handlers_pass_the_shared_scenarios_over_esl(esl: EslServer, fresh_db: Store,
                                                     scenario: Scenario) -> None:
    ch = call_outbound("127.0.0.1", esl.bound_port, channel(scenario.route, keys=scenario.keys))
    want = scenario.expect
    got = {k: ch.variables.get(k, "") for k in want.variables}
    assert got == want.variables, ch.executed
    assert contiguous(prompt_ids(ch), want.played), prompt_ids(ch)


def test_welcome_over_esl_names_the_catalogues_version_and_plays_nothing(
        esl: EslServer) -> None:
    ch = call_outbound("127.0.0.1", esl.bound_port, channel("welcome"))
    assert {k: ch.variables.get(k, "") for k in WELCOME} == WELCOME, ch.executed
    assert prompt_ids(ch) == []  # the PBX plays the named file from its own disk


def serve(context: HandlerContext, registry: Registry | None = None
          ) -> tuple[EslServer, threading.Thread]:
    server = EslServer(registry=registry or default_registry(), context=context,
                       host="127.0.0.1", port=free_port(), timeout=TIMEOUT)
    thread = threading.Thread(target=server.listen, daemon=True)
    thread.start()
    wait_until(lambda: server._running, timeout=10, what="the ESL server listening")
    return server, thread


def test_welcome_over_esl_names_a_local_prompt() -> None:
    server, thread = serve(HandlerContext(fixed_welcome={"057195598": "hz/v3", "default": "x"}))
    try:
        ch = call_outbound("127.0.0.1", server.bound_port, channel("welcome"))
    finally:
        server.stop()
        thread.join(timeout=10)
    assert (ch.variables[V.STATUS], ch.variables[V.WELCOME_PROMPT]) == ("OK", "hz/v3")


def test_unknown_route_takes_the_one_failure_path(esl: EslServer) -> None:
    ch = call_outbound("127.0.0.1", esl.bound_port, channel("no_such_route"))
    assert (ch.variables[V.STATUS], ch.variables[V.FAIL_REASON]) == ("FAIL", "unknown-route")


@pytest.mark.parametrize(("how", "error", "outcome"), [
    ("vanish_at", CallHangup, "hangup"),   # the socket closes instead of a reply
    ("silent_at", CallTimeout, "timeout"),  # the socket stays, no reply ever comes
])
def test_a_session_that_goes_away_mid_command_raises_the_typed_error_in_time(
        how: str, error: type[Exception], outcome: str) -> None:
    seen: list[tuple[type[Exception], float]] = []

    def probe(call: Call, ctx: HandlerContext) -> None:
        started = time.monotonic()
        try:
            call.play("anything")
        except Exception as exc:
            seen.append((type(exc), time.monotonic() - started))
            raise

    server, thread = serve(HandlerContext(), Registry([probe]))
    try:
        ch = FakeChannel(uuid=str(uuid.uuid4()), variables={"pbxctl_route": "probe"})
        setattr(ch, how, 1)  # the first command the handler sends
        call_outbound("127.0.0.1", server.bound_port, ch, timeout=30)
        wait_until(lambda: sum(server.stats.values()) == 1, timeout=TIMEOUT * 4,
                   what="the ESL session to end")
    finally:
        server.stop()
        thread.join(timeout=10)
    [(kind, waited)] = seen
    assert kind is error and waited <= TIMEOUT + 1.0
    assert server.stats == {outcome: 1}
    assert ch.variables.get(V.STATUS, "") == ""  # nothing claimed success


def test_status_over_freeswitch_reads_channels_through_the_inbound_event_socket() -> None:
    chans = [{"uuid": "u-1", "direction": "inbound", "cid_num": "057188880000",
              "dest": "057195598", "application": "socket", "callstate": "ACTIVE"}]
    fs = FakeEventSocket(password="s3cret", channels=chans)
    fs.start()
    try:
        out, err = io.StringIO(), io.StringIO()
        code = main(["status", "show", "--freeswitch", f"127.0.0.1:{fs.port}", "--json"],
                    environ={"PBXCTL_ESL_PASSWORD": "s3cret"}, stdout=out, stderr=err)
        assert code == 0, err.getvalue()
        assert json.loads(out.getvalue())["channels"] == chans
        code = main(["status", "show", "--freeswitch", f"127.0.0.1:{fs.port}"],
                    environ={"PBXCTL_ESL_PASSWORD": "wrong"}, stdout=out, stderr=err)
        assert code == 6 and "ESL login refused" in err.getvalue()
    finally:
        fs.stop()
