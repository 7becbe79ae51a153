"""The agent's screen on real calls: a SIPp caller on the Hangzhou gateway presses 0, the
province ACD connects them to agent hz-a001's SIPp phone, and the agent's open console page
(headless Chromium) pops the call — caller, number dialled, why it was routed here, wait, and
the customer the account names — from the province PBX's own event; the agent files a work
order from the pre-filled form (linked to the call) and pauses / readies themselves in the
queue, which the PBX's queue state shows. The supervisor's wallboard, fed by the collector from
the province's call log, counts that call, then — without a reload — an abandoned one; its
listen button rings the supervisor's phone into the province's spy code.

No CTI runs here, so self-service cannot identify an account: the test sets the gateway
channel's PBXCTL_ACCOUNT over the gateway's AMI while the caller is in the welcome — the
variable the bill/outage handlers set with SET VARIABLE — and everything after that (the SIP
header to the province, the pop, the panel) is the real path.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from pbxctl.console.app import ConsoleDeps, ConsoleSettings
from pbxctl.console.calls import CallFeed
from pbxctl.console.live import OrderFeed
from pbxctl.console.passwords import hash_password
from pbxctl.core.procs import wait_until
from pbxctl.data import orders
from pbxctl.data.callrecords import CALL_LOG_NAME
from pbxctl.data.console_auth import set_password
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store
from pbxctl.pbx.ami import AmiClient
from pbxctl.services.collector import Collector, CollectorConfig
from provisioning.render_asterisk import AMI_PORT, AMI_USERS
from provisioning.sample import seed_input
from tests.browser import serve, sign_in, wait_js
from tests.conftest import management_ami
from tests.integration.conftest import Center, connected, place_call

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp, pytest.mark.pg, pytest.mark.browser]

PASSWORD = "agent-hz-a001-pw"
SUP_PASSWORD = "supervisor-zj-sup01-pw"
ACCOUNT = "3301010001"  # sample data: Hangzhou, county HZXS
CALLER = "057188880001"


def console_ami(center: Center) -> AmiClient:
    """The console's own AMI user, from the CTI host's address (as deployed)."""
    inv = center.inv
    client = AmiClient(host=str(inv.province.pbx.a), port=AMI_PORT,
                       username=AMI_USERS["console"],
                       secret=center.secrets.ami_console[inv.province.pbx.name],
                       source=str(inv.province.cti.a), timeout=5.0)
    client.connect()
    return client


def test_the_agent_sees_the_call_pop_files_an_order_and_pauses(
        center: Center, fresh_db: Store, browser: WebDriver, short_tmp: Path) -> None:
    inv = center.inv
    seed_sample_data(fresh_db, seed_input(inv))
    set_password(fresh_db, login="hz-a001", password_hash=hash_password(PASSWORD), admin=False)
    set_password(fresh_db, login="zj-sup01", password_hash=hash_password(SUP_PASSWORD),
                 admin=False)
    holder = str(fresh_db.execute("SELECT holder FROM accounts WHERE account_no = %s",
                                  (ACCOUNT,))[0][0])
    deps = ConsoleDeps(store=fresh_db, inventory=inv, feed=OrderFeed(fresh_db.config.conninfo),
                       settings=ConsoleSettings(cookie_secure=False),
                       calls=CallFeed(lambda: console_ami(center)))
    hz = inv.prefecture("HZ")
    gw_ami = management_ami(center.gateways["hz-gw"], str(inv.province.cti.a))
    ami = management_ami(center.province, str(inv.province.cti.a))
    try:
        with serve(deps) as url:
            sign_in(browser, url, "hz-a001", PASSWORD)  # live: the console's AMI is up
            assert "/agent" in browser.current_url
            phone = center.phones.login("hz-a001")
            with ami.subscribe() as events, gw_ami.subscribe() as gw_events:
                caller = place_call(inv, "HZ", short_tmp / "callers", hold_ms=8000,
                                    caller=CALLER)
                caller.start()
                inbound = gw_events.wait_for(
                    lambda m: m.get("Event") == "Newchannel" and m.get("Exten") == hz.dids[0],
                    timeout=15, what="the caller's channel on hz-gw")
                gw_ami.setvar("PBXCTL_ACCOUNT", ACCOUNT, channel=inbound["Channel"])
                connected(events)
                bridged = time.monotonic()
                popped = wait_js(browser, "document.body.dataset.popped",
                                 what="the screen pop", timeout=10)
                print(f"\nscreen pop shown {(popped - bridged) * 1000:+.0f} ms from the "
                      "AgentConnect event (negative: before it)")
                assert caller.wait().successful == 1
            assert phone.wait().successful == 1

            linkedid = str(browser.execute_script("return document.body.dataset.popped"))
            text = browser.find_element(By.ID, "pop").text
            assert CALLER in text
            assert browser.find_element(By.ID, "pop-did").text == hz.dids[0]
            # No CTI: the gateway routed to its own prefecture, and says so.
            assert "own prefecture" in browser.find_element(By.ID, "pop-reason").text
            assert browser.find_element(By.ID, "pop-wait").text.endswith(" s")
            assert browser.find_element(By.ID, "customer-account").text == ACCOUNT
            assert browser.find_element(By.ID, "customer-holder").text == holder
            bills = fresh_db.execute("SELECT count(*) FROM bills WHERE account_no = %s",
                                     (ACCOUNT,))[0][0]
            assert isinstance(bills, int) and bills > 0
            assert len(browser.find_elements(By.CSS_SELECTOR, "#bills tbody tr")) == \
                min(3, bills)

            # The work-order form is pre-filled with the account and linked to the call.
            assert browser.find_element(By.ID, "order-account").get_attribute("value") == \
                ACCOUNT
            Select(browser.find_element(By.ID, "order-type")).select_by_value("repair")
            browser.find_element(By.ID, "order-description").send_keys("电表箱冒烟，请速派人")
            browser.find_element(By.ID, "order-submit").click()
            wait_js(browser, "document.getElementById('filed')", what="the filed order")
            order_id = int(str(browser.find_element(By.ID, "filed").get_attribute(
                "data-order")))
            order = orders.get(fresh_db, order_id)
            assert (order.account_no, order.call_linkedid, order.status, order.seat,
                    order.created_by) == (ACCOUNT, linkedid, "dispatched", "hzxs-t01",
                                          "hz-a001")

            # Pause (meal), then ready again: the province's queue state follows.
            Select(browser.find_element(By.ID, "pause-reason")).select_by_value("meal")
            browser.find_element(By.ID, "set-paused").click()
            wait_js(browser, "document.getElementById('agent-state').dataset.state === "
                             "'paused'", what="the paused state")
            assert _member(ami, "hz-a001") == ("1", "meal")
            browser.find_element(By.ID, "set-ready").click()
            wait_js(browser, "document.getElementById('agent-state').dataset.state === "
                             "'ready'", what="the ready state")
            assert _member(ami, "hz-a001")[0] == "0"

            # The supervisor's wallboard, fed by the collector from the province's call log.
            collector = Collector(store=fresh_db, config=CollectorConfig(
                call_log=center.province.root / "log" / CALL_LOG_NAME,
                recordings_dir=center.province.spool / "monitor",
                state_dir=short_tmp / "collector"))
            collect_until(collector, fresh_db, 1)
            browser.find_element(By.ID, "logout").click()
            sign_in(browser, url, "zj-sup01", SUP_PASSWORD)
            assert "/wallboard" in browser.current_url
            row = "document.getElementById('kpi-HZ').dataset"
            wait_js(browser, f"{row}.offered === '1' && {row}.answered === '1'",
                    what="the answered call on the wallboard")
            # An abandoned call: hz-a001 paused, no supervisor phone, the caller gives up.
            assert ami.action("QueuePause", Interface="PJSIP/hz-a001", Paused="true",
                              Reason="meeting").ok
            wait_js(browser, "document.querySelector('#kpi-HZ td.paused')"
                             ".textContent === '1'", what="hz-a001 paused on the wallboard")
            quitter = place_call(inv, "HZ", short_tmp / "quitter", hold_ms=2000,
                                 caller="057188880002")
            assert quitter.run().successful == 1
            collect_until(collector, fresh_db, 2)
            wait_js(browser, f"{row}.abandoned === '1' && {row}.offered === '2'",
                    what="the abandoned call on the wallboard, without a reload")
            rate = browser.find_element(By.CSS_SELECTOR, "#kpi-HZ .abandon-rate").text
            assert rate == "50.0%"

            # Listen to hz-a001 from the wallboard: the supervisor's own phone rings and runs
            # the province's *1<ext> code (hz-a001 is on no call now, so ChanSpy ends at once).
            sup_phone = center.phones.login("zj-sup01")
            with ami.subscribe() as events:
                browser.find_element(By.CSS_SELECTOR, "#agent-hz-a001 button.spy-listen").click()
                spy = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlSpy", timeout=20,
                                      what="PbxctlSpy on the province")
            assert (spy["Supervisor"], spy["Agent"], spy["Mode"]) == \
                ("zj-sup01", "hz-a001", "listen")
            assert sup_phone.wait().successful == 1
    finally:
        ami.close()
        gw_ami.close()


def collect_until(collector: Collector, store: Store, calls: int) -> None:
    """Run the collector (as `calls collect --follow` does) until the province has ``calls``
    call records that entered a queue."""
    def enough() -> bool:
        collector.run_once()
        n = store.execute("SELECT count(*) FROM call_records WHERE site = 'zj-pbx' "
                          "AND queue <> ''")[0][0]
        return isinstance(n, int) and n >= calls

    wait_until(enough, timeout=30, what=f"{calls} call record(s) collected", interval=0.2)


def _member(ami: AmiClient, agent: str) -> tuple[str, str]:
    reply = ami.action("QueueStatus", Queue="acd-HZ", Member=f"PJSIP/{agent}")
    member = next(e for e in reply.events if e.get("Event") == "QueueMember")
    return member.get("Paused", ""), member.get("PausedReason", "")
