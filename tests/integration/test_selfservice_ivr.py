"""Self-service that survives the province: the gateway's order of service, with real calls.

Real parts: the province's PostgreSQL (wal_level=logical) and HZ's IVR database subscribed to
HZ's publication (`pbxctl db replicas publish/subscribe`); the province CTI (our FastAGI
server on the inventory's CTI address, reading the province database) and HZ's IVR (the same
server on HZ's IVR address — by default the LSS host — reading the replica); the rendered
province PBX and HZ gateway in Asterisk sandboxes; a SIPp caller pressing 1 and an account
number with RFC 2833 DTMF. Evidence: the gateway's PbxctlService UserEvent (who answered,
the amount said) against the province database.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from ivr_scripts import phrases
from ivr_scripts.catalog import PromptCatalog
from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.handlers import default_registry
from ivr_scripts.registry import HandlerContext
from ivr_scripts.routing import RoutingTable
from pbxctl.cli.app import main
from pbxctl.core import chanvars as V
from pbxctl.core.procs import wait_until
from pbxctl.data.prompts import published_versions, rules
from pbxctl.data.store import Store, StoreConfig
from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.lab.sandbox.postgres import PostgresCluster
from pbxctl.lab.sandbox.sipp import SippProcess
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
from pbxctl.ops.publish import publish
from pbxctl.pbx.ami import Message
from pbxctl.services.tts import TtsCache
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.secrets import ensure_secrets, secrets_path
from tests.conftest import SiteFactory, management_ami

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp, pytest.mark.pg]

ACCOUNT = "3301010001"  # HZ's first sample account
MENU_AT = 1500


def _cli(dsn: str, *argv: str) -> None:
    err = io.StringIO()
    code = main(list(argv), environ={"PBXCTL_DSN": dsn}, stdout=io.StringIO(), stderr=err)
    assert code == 0, err.getvalue()


def _agi(store: Store, host: str, port: int, catalog: PromptCatalog | None,
         inv: Inventory) -> FastAgiServer:
    server = FastAgiServer(registry=default_registry(),
                           context=HandlerContext(store=store, catalog=catalog,
                                                  routing=RoutingTable.from_inventory(inv)),
                           config=AgiServerConfig(host=host, port=port))
    server.start()
    return server


@dataclass
class Stack:
    inv: Inventory
    province_dsn: str
    replica_dsn: str
    gw: AsteriskInstance
    cti: FastAgiServer
    ivr: FastAgiServer
    workdir: Path

    def amount(self, which: str) -> str:
        dsn = self.province_dsn if which == "province" else self.replica_dsn
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT amount FROM bills WHERE account_no = %s AND NOT paid "
                               "ORDER BY period DESC LIMIT 1", (ACCOUNT,)).fetchone()
        assert row is not None
        return str(row[0])

    def bill_call(self, name: str) -> Message:
        hz = self.inv.prefecture("HZ")
        scenario = write_scenario(self.workdir, name, dtmf_scenario(
            [(MENU_AT, "1"), (2000, ACCOUNT + "#")], pcap_dir=self.workdir / f"{name}-pcaps",
            hold_ms=None, bye_timeout_ms=90000))
        ami = management_ami(self.gw, str(self.inv.province.cti.a))
        try:
            with ami.subscribe() as events:
                sipp = SippProcess(scenario=scenario, workdir=self.workdir,
                                   local_ip=str(hz.pstn_gateway.a),
                                   remote=(str(hz.gateway.a), 5060), service=hz.dids[0],
                                   keys={"caller": "057188880000"}, timeout=120)
                sipp.start()
                try:
                    result = sipp.wait()
                finally:
                    sipp.stop()
                event = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlService",
                                        timeout=10, what="PbxctlService UserEvent")
        finally:
            ami.close()
        assert result.successful == 1 and result.failed == 0, result
        return event


@pytest.fixture
def stack(small_inventory_path: Path, site_factory: SiteFactory, tts_cache_dir: Path,
          short_tmp: Path) -> Iterator[Stack]:
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    province = PostgresCluster(root=short_tmp / "pg-province", logical=True)
    replica = PostgresCluster(root=short_tmp / "pg-hz")
    servers: list[FastAgiServer] = []
    stores: list[Store] = []
    try:
        pe, re_ = province.start(), replica.start()
        prov_dsn, repl_dsn = pe.conninfo(), re_.conninfo()
        _cli(prov_dsn, "db", "migrate", "--sample-data", "--inventory", str(small_inventory_path))
        _cli(repl_dsn, "db", "migrate")
        _cli(prov_dsn, "db", "replicas", "publish", "--inventory", str(small_inventory_path))
        _cli(repl_dsn, "db", "replicas", "subscribe", "--inventory", str(small_inventory_path),
             "--prefecture", "HZ", "--publisher-host", "127.0.0.1",
             "--publisher-port", str(pe.port))
        prov_store = Store(config=StoreConfig(conninfo=prov_dsn))
        repl_store = Store(config=StoreConfig(conninfo=repl_dsn))
        for s in (prov_store, repl_store):
            s.open()
            stores.append(s)
        phrases.init_system_prompts(prov_store)
        publish(prov_store, inv, short_tmp, cache=TtsCache(root=tts_cache_dir),
                sites=[inv.site("hz-gw")])
        catalog = PromptCatalog(load=lambda: (rules(prov_store), published_versions(prov_store)))
        assert catalog.prime()
        hz = inv.prefecture("HZ")
        servers.append(_agi(prov_store, str(inv.province.cti.a), inv.province.cti_port,
                            catalog, inv))
        # HZ's IVR: no catalogue (the welcome is the province's business), the replica.
        servers.append(_agi(repl_store, str(hz.ivr_host.a), inv.province.cti_port, None, inv))
        site_factory(inv, secrets, "zj-pbx")  # answers the gateway's trunk qualify
        gw = site_factory(inv, secrets, "hz-gw", verbose_log=True)
        st = Stack(inv, prov_dsn, repl_dsn, gw, servers[0], servers[1], short_tmp / "sipp")
        wait_until(lambda: st.amount("replica") == st.amount("province"), timeout=60,
                   what="HZ's replica to hold the province's bills")
        yield st
    finally:
        for server in servers:
            server.shutdown(grace=5)
        for s in stores:
            s.close()
        replica.stop()
        province.stop()


def test_the_province_answers_first_then_hzs_own_ivr_from_its_replica(stack: Stack) -> None:
    # 1. Everything up: the province CTI answers.
    event = stack.bill_call("central")
    assert (event["By"], event["Status"], event["Account"]) == (
        V.SVC_BY_PROVINCE, V.STATUS_OK, ACCOUNT)
    assert event["Amount"] == stack.amount("province")
    assert stack.cti.stats["sessions"] >= 2 and stack.ivr.stats["sessions"] == 0

    # 2. Survivable mode (the watcher sets the global): HZ's IVR answers, from the replica —
    # the amount the province would have said.
    stack.gw.cli(f"dialplan set global {V.SURVIVABLE} 1")
    event = stack.bill_call("survivable")
    assert (event["By"], event["Status"]) == (V.SVC_BY_IVR, V.STATUS_OK), event
    assert event["Amount"] == stack.amount("province")

    # 3. The province corrects the bill; once replicated, the IVR says the new amount.
    with psycopg.connect(stack.province_dsn, autocommit=True) as conn:
        conn.execute("UPDATE bills SET amount = amount + 12.34 WHERE account_no = %s AND period"
                     " = (SELECT max(period) FROM bills WHERE account_no = %s AND NOT paid)",
                     (ACCOUNT, ACCOUNT))
    new = stack.amount("province")
    wait_until(lambda: stack.amount("replica") == new, timeout=30,
               what="the corrected bill at HZ's replica")
    event = stack.bill_call("corrected")
    assert (event["By"], event["Amount"]) == (V.SVC_BY_IVR, new)

    # 4. Not survivable, but the province CTI is gone on both paths: the IVR again.
    stack.gw.cli(f"dialplan set global {V.SURVIVABLE} 0")
    stack.cti.shutdown(grace=5)
    event = stack.bill_call("cti-gone")
    assert (event["By"], event["Status"], event["Amount"]) == (V.SVC_BY_IVR, V.STATUS_OK, new)
