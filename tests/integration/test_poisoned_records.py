"""Services never die on one record: the call-log writer, the collector and the work-order
notifier each get a poisoned record between two good ones. Both good ones land, the poison is
quarantined with its reason, and the service is still running for the next record."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr_scripts.calllog import CallLog, Entry
from pbxctl.core.net import free_port
from pbxctl.core.procs import wait_until
from pbxctl.data.calls import call_count
from pbxctl.data.orders import create, dispatch, get, history
from pbxctl.data.rejects import recent
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store
from pbxctl.services.collector import Collector, CollectorConfig
from pbxctl.services.order_notifier import AmiDialer, OrderNotifier
from pbxctl.services.tts import TtsCache
from provisioning.inventory import load_inventory
from provisioning.sample import seed_input
from tests.conftest import AmiOf, GatewayFactory
from tests.integration.test_collector import append, record

pytestmark = pytest.mark.pg

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"
HZ_ACCOUNT = "3301010001"


def test_call_log_writer_quarantines_a_nul_and_keeps_writing(fresh_db: Store) -> None:
    journal = CallLog(store=fresh_db)
    journal.start()
    journal.record(Entry("good-1", "welcome", "95598", "0571", "hz/v1"))
    journal.record(Entry("poison", "welcome", "95598", "0571\x00evil", "hz/v1"))
    journal.record(Entry("good-2", "welcome", "95598", "0571", "hz/v1"))
    wait_until(lambda: journal.written + journal.rejected == 3, timeout=30,
               what="the call log writer to take all three")
    journal.record(Entry("good-3", "route", "95598", "0571", "acd-HZ"))  # still alive
    journal.close(timeout=10)
    ids = sorted(str(r["uniqueid"]) for r in fresh_db.agi_calls())
    assert ids == ["good-1", "good-2", "good-3"]
    [(_, source, reason, rec)] = recent(fresh_db, source="call-log")
    assert source == "call-log" and "NUL" in str(reason) and "\\x00" in str(rec)


def test_collector_keeps_a_torn_line_aside_and_a_nul_out_of_the_database(
        fresh_db: Store, tmp_path: Path) -> None:
    cfg = CollectorConfig(call_log=tmp_path / "log" / "pbxctl-calls.log",
                          recordings_dir=tmp_path / "monitor", state_dir=tmp_path / "state",
                          settle_s=0.0)
    torn = record("torn-a", recording=False)[:60]  # a write cut short, then the next one
    append(cfg, record("good-1", recording=False) + torn + record("merged-b", recording=False)
           + record("nul", caller="0571%00x", recording=False).replace("0571%2500x", "0571%00x")
           + record("good-2", recording=False))
    res = Collector(config=cfg, store=fresh_db).run_once()
    assert (res.calls, res.rejected) == (3, 1), res
    assert call_count(fresh_db, site="zj-pbx") == 3
    [nul] = fresh_db.execute("SELECT caller FROM call_records WHERE uniqueid = 'nul'")
    assert nul == ("0571\ufffdx",)  # kept, the NUL PostgreSQL cannot store replaced
    rejected = (cfg.state_dir / "rejected.log").read_text().splitlines()
    assert len(rejected) == 1 and "merged-b" in rejected[0]


@pytest.mark.asterisk
def test_notifier_escalates_an_order_it_cannot_announce_and_calls_the_others(
        fresh_db: Store, tmp_path: Path, tts_cache_dir: Path, gateway_factory: GatewayFactory,
        ami_of: AmiOf) -> None:
    inv = load_inventory(SMALL)
    seed_sample_data(fresh_db, seed_input(inv))
    orders = []
    for text in ("停电", "抢修，身份证号 330102199001011234，电话 057188880000", "表计"):
        o = create(fresh_db, inv, type="repair", account_no=HZ_ACCOUNT, created_by="hz-a001",
                   description=text)
        orders.append(dispatch(fresh_db, inv, o.id, actor="hz-a001"))
    good1, long_numbers, poison = orders
    prompts = tmp_path / "prompts"
    # A real fault for one order: its summary's place on the PBX's disk is taken by a folder.
    (prompts / "orders" / f"order-{poison.id}.wav").mkdir(parents=True)
    ast, _ = gateway_factory(agi_port=free_port())
    ami = ami_of(ast)
    notifier = OrderNotifier(store=fresh_db, inv=inv, dialer=AmiDialer(ami), prompt_dir=prompts,
                             tts=TtsCache(root=tts_cache_dir))
    lines = notifier.run_once()
    assert len(lines) == 3, lines
    for o in (good1, long_numbers):
        assert get(fresh_db, o.id).notify_attempts == 1
        assert any("call 1/" in e.note for e in history(fresh_db, o.id))
    assert get(fresh_db, poison.id).status == "escalated"
    assert any("cannot be announced" in e.note for e in history(fresh_db, poison.id))
    [(_, _, reason, _)] = recent(fresh_db, source="order-notifier")
    assert "IsADirectoryError" in str(reason)
    assert notifier.run_once() == []  # nothing due: no crash loop on the same order
