"""Work orders end to end with real parts: a SIPp caller reaches a SIPp agent; right after the
call the agent dials *9 and keys the type and the customer's account (RFC 2833 DTMF); the
CTI creates the order linked to that call and its recording and dispatches it; the
dispatcher calls the county terminal seat over AMI, Asterisk plays the Mandarin summary
synthesised onto its own disk, the seat (a SIPp phone) presses 1, and the order is accepted
with its full history. A seat whose phone does not answer: retries, then escalation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.handlers import default_registry
from ivr_scripts.phrases import init_system_prompts
from ivr_scripts.registry import HandlerContext
from ivr_scripts.routing import RoutingTable
from pbxctl.data.calls import list_recordings
from pbxctl.data.orders import create, dispatch, get, history
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
from pbxctl.ops.publish import prompt_dir, publish
from pbxctl.pbx.ami import AmiClient
from pbxctl.services.order_notifier import AmiDialer, OrderNotifier
from pbxctl.services.tts import TtsCache
from provisioning.sample import seed_input
from tests.conftest import management_ami
from tests.integration.conftest import Center, connected, place_call
from tests.integration.test_contact_center import collect_all

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp, pytest.mark.pg]

HZ_ACCOUNT = "3301010001"  # sample data: a Hangzhou customer in county HZXS
WEDNESDAY_NOON_SHANGHAI = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


@dataclass
class Desk:
    center: Center
    store: Store
    ami: AmiClient
    dispatcher: OrderNotifier


@pytest.fixture
def desk(center: Center, fresh_db: Store, tts_cache_dir: Path, short_tmp: Path
         ) -> Iterator[Desk]:
    inv = center.inv
    seed_sample_data(fresh_db, seed_input(inv))
    init_system_prompts(fresh_db)
    cache = TtsCache(root=tts_cache_dir)
    publish(fresh_db, inv, short_tmp, cache=cache, sites=[inv.site("zj-pbx")])
    context = HandlerContext(store=fresh_db, routing=RoutingTable.from_inventory(inv),
                             inventory=inv, clock=lambda: WEDNESDAY_NOON_SHANGHAI)
    cti = FastAgiServer(registry=default_registry(), context=context,
                        config=AgiServerConfig(host=str(inv.province.cti.a),
                                               port=inv.province.cti_port))
    cti.start()
    ami = management_ami(center.province, str(inv.province.cti.a))
    disp = OrderNotifier(store=fresh_db, inv=inv, dialer=AmiDialer(ami),
                      prompt_dir=prompt_dir(short_tmp, "zj-pbx"), tts=cache)
    try:
        yield Desk(center, fresh_db, ami, disp)
    finally:
        ami.close()
        cti.shutdown(grace=2)


def test_agent_feature_code_creates_a_linked_order_the_seat_accepts_by_phone(
        desk: Desk, short_tmp: Path) -> None:
    c, store = desk.center, desk.store
    inv = c.inv
    agent = c.phones.login("hz-a001")
    with desk.ami.subscribe() as events:
        caller = place_call(inv, "HZ", short_tmp / "caller", hold_ms=3000)
        caller.start()
        talk = connected(events)
        assert caller.wait().successful == 1 and agent.wait().successful == 1

        # Right after the call: *9, type 1 (repair), the account, #.
        keys = write_scenario(short_tmp / "star9", "star9", dtmf_scenario(
            [(2500, "1"), (3000, HZ_ACCOUNT + "#")], pcap_dir=short_tmp / "star9" / "pcaps",
            head="uac_auth", bye_timeout_ms=40000))
        star9 = c.phones.dial("hz-a001", "*9", scenario=keys)
        star9.start()
        made = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlOrder", timeout=60,
                               what="PbxctlOrder")
        assert star9.wait().successful == 1
        assert (made["Status"], made["Result"], made["Call"]) == ("OK", "created",
                                                                  talk["Linkedid"]), made
        order = get(store, int(made["Order"]))
        assert (order.type, order.account_no, order.status, order.seat, order.created_by) == (
            "repair", HZ_ACCOUNT, "dispatched", "hzxs-t01", "hz-a001")
        assert order.call_linkedid == talk["Linkedid"] and order.call_site == "zj-pbx"

        # The terminal seat's phone answers and presses 1 during the summary.
        answer = write_scenario(short_tmp / "seat", "seat", dtmf_scenario(
            [(1500, "1")], pcap_dir=short_tmp / "seat" / "pcaps", head="uas"))
        seat = c.phones.login("hzxs-t01", scenario=answer, in_queue=False)
        assert desk.dispatcher.run_once() == [f"order {order.id}: call 1 to hzxs-t01 "
                                              "(originated)"]
        answered = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlOrderAnswer",
                                   timeout=60, what="PbxctlOrderAnswer")
        assert seat.wait().successful == 1
    assert (answered["Key"], answered["Result"]) == ("1", "accepted"), answered
    final = get(store, order.id)
    assert final.status == "accepted"
    steps = [(e.event, e.actor, e.to_status) for e in history(store, order.id)]
    assert steps == [("created", "hz-a001", "new"), ("dispatched", "hz-a001", "dispatched"),
                     ("notify", "dispatcher", None),
                     ("accepted", "hzxs-t01 (phone)", "accepted")]
    assert (prompt_dir(short_tmp, "zj-pbx") / "orders" / f"order-{order.id}.wav").is_file()
    # The order's recording is the call's, as the index knows it.
    collect_all(c.province, store, calls=1)
    [rec] = list_recordings(store, site="zj-pbx")
    assert rec.uniqueid == order.recording and rec.status == "ok"


def test_a_seat_that_does_not_answer_gets_retries_then_the_order_is_escalated(
        desk: Desk) -> None:
    c, store, inv = desk.center, desk.store, desk.center.inv
    c.phones.register("hzxs-t01")  # registered, but its phone is gone: nothing answers
    order = dispatch(store, inv, create(store, inv, type="outage", account_no=HZ_ACCOUNT,
                                        created_by="hz-a002").id, actor="hz-a002")
    now = [datetime.now(UTC)]
    desk.dispatcher.clock = lambda: now[0]
    step = timedelta(seconds=inv.dispatch.ring_timeout + inv.dispatch.retry_interval + 1)
    with desk.ami.subscribe() as events:
        for attempt in range(1, inv.dispatch.attempts + 1):
            assert desk.dispatcher.run_once() == [
                f"order {order.id}: call {attempt} to hzxs-t01 (originated)"]
            failed = events.wait_for(lambda m: m.get("Event") == "OriginateResponse",
                                     timeout=60, what="OriginateResponse")
            assert failed["Response"] == "Failure", failed
            assert desk.dispatcher.run_once() == []  # not due again before the interval
            now[0] += step
    assert desk.dispatcher.run_once() == [f"order {order.id}: escalated to HZ"]
    assert get(store, order.id).status == "escalated"
    steps = [e.event for e in history(store, order.id)]
    assert steps == ["created", "dispatched", "notify", "notify", "escalated"]
    assert "not accepted after 2 call(s) to hzxs-t01" in history(store, order.id)[-1].note
