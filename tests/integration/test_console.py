"""The web console against a real PostgreSQL, served by uvicorn on loopback: the county
terminal seat's inbox in a real headless Chromium (an order filed like `*9` shows up without a
reload; accept, a phone/screen race with one winner, close), and the security rules over real
HTTP (wrong password, rate limit, expired session, CSRF, scope, escaping, client networks,
the recording streamed with range requests).

The orders come from ``pbxctl.data.orders`` — the very functions the CTI's `*9` flow and the
CLI call; the console under test only reads and acts on them.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
import pytest

from pbxctl.cli import main
from pbxctl.console.app import ConsoleDeps, ConsoleSettings
from pbxctl.console.calls import CallFeed, Pop
from pbxctl.console.live import OrderFeed
from pbxctl.console.passwords import hash_password
from pbxctl.core.errors import ServiceStartError
from pbxctl.core.net import free_port, tcp_accepts
from pbxctl.core.procs import wait_until
from pbxctl.data import orders, site_states
from pbxctl.data.console_auth import set_password, token_hash
from pbxctl.data.kpis import hourly, prefecture_kpis
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store, StoreConfig
from pbxctl.lab.sandbox.postgres import PostgresCluster
from pbxctl.pbx.ami import AmiClient
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.sample import seed_input
from tests.browser import serve, wait_js
from tests.browser import sign_in as sign_in_browser

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.pg

EXAMPLE = Path(__file__).parents[2] / "examples" / "zhejiang" / "province.yaml"
SEATS = ("hzxs-t01", "hzxs-t02", "hzyh-t01", "hzyh-t02", "hz-a001", "hz-a002", "zj-sup01")
PASSWORD = {s: f"console-{s}-pw" for s in SEATS}  # the lab's known passwords
XSS = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def _unreachable() -> AmiClient:
    raise ServiceStartError("AMI 127.0.0.1:1 unreachable (this module runs no PBX)")


@dataclass
class ConsoleSite:
    url: str
    store: Store
    inv: Inventory
    recordings: Path
    calls: CallFeed

    def account(self, county: str) -> str:
        rows = self.store.execute("SELECT account_no FROM accounts WHERE county = %s "
                                  "ORDER BY account_no LIMIT 1", (county,))
        return str(rows[0][0])

    def file_order(self, county: str, *, description: str = "停电，请尽快处理",
                   recording: str = "") -> orders.Order:
        """What an agent's `*9` does: create, then dispatch to the least-loaded seat."""
        order = orders.create(self.store, self.inv, type="repair",
                              account_no=self.account(county), created_by="hz-a001",
                              description=description)
        if recording:
            self.store.execute("UPDATE work_orders SET recording = %s WHERE id = %s",
                               (recording, order.id))
        return orders.dispatch(self.store, self.inv, order.id, actor="hz-a001")

    @contextmanager
    def client(self, seat: str | None = None) -> Iterator[httpx.Client]:
        """An HTTP client, signed in as ``seat`` when given."""
        with httpx.Client(base_url=self.url, follow_redirects=False, timeout=10.0) as c:
            if seat:
                assert sign_in(c, seat).status_code == 303, f"{seat} could not sign in"
            yield c


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def sign_in(c: httpx.Client, seat: str, password: str | None = None) -> httpx.Response:
    page = c.get("/login")
    return c.post("/login", data={"login": seat, "password": password or PASSWORD[seat],
                                  "csrf": csrf_of(page.text), "lang": "en"})


@pytest.fixture(scope="module")
def site(pg_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[ConsoleSite]:
    assert pg_cluster.endpoint is not None
    base = pg_cluster.endpoint.conninfo()
    name = f"console{uuid.uuid4().hex[:8]}"
    with Store(config=StoreConfig(conninfo=base.replace("dbname=pbxctl",
                                                        "dbname=postgres"))) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    conninfo = base.replace("dbname=pbxctl", f"dbname={name}")
    store = Store(config=StoreConfig(conninfo=conninfo))
    store.open()
    store.migrate()
    inv = load_inventory(EXAMPLE)
    seed_sample_data(store, seed_input(inv))
    for seat in SEATS:
        set_password(store, login=seat, password_hash=hash_password(PASSWORD[seat]),
                     admin=False)
    recordings = tmp_path_factory.mktemp("recordings")
    settings = ConsoleSettings(cookie_secure=False, recordings_root=recordings,
                               keepalive_s=1.0)
    calls = CallFeed(_unreachable, max_backoff=30.0)
    deps = ConsoleDeps(store=store, inventory=inv, feed=OrderFeed(conninfo), settings=settings,
                       calls=calls)
    try:
        with serve(deps) as url:
            yield ConsoleSite(url, store, inv, recordings, calls)
    finally:
        store.close()


# -- sign-in, sessions, CSRF ----------------------------------------------------------------
def test_wrong_password_is_refused_then_the_login_is_rate_limited(
        site: ConsoleSite, caplog: pytest.LogCaptureFixture) -> None:
    with site.client() as c:
        for _ in range(5):
            r = sign_in(c, "hzyh-t02", "not-the-password")
            assert r.status_code == 401 and "Wrong seat id or password" in r.text
            assert "pbxctl_session" not in r.cookies
        # The right password no longer helps: 5 failures in 15 minutes for this login.
        r = sign_in(c, "hzyh-t02")
        assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    # Another seat from the same client is not locked out by hzyh-t02's failures.
    with site.client() as c:
        assert sign_in(c, "hzyh-t01").status_code == 303
    assert "not-the-password" not in caplog.text and PASSWORD["hzyh-t02"] not in caplog.text


def test_sign_in_needs_the_login_forms_csrf_token(site: ConsoleSite) -> None:
    with site.client() as c:
        r = c.post("/login", data={"login": "hzxs-t01", "password": PASSWORD["hzxs-t01"],
                                   "csrf": "forged"})
        assert r.status_code == 403 and "CSRF" in r.text


def test_state_changes_without_the_csrf_token_are_refused(site: ConsoleSite) -> None:
    order = site.file_order("HZXS")
    with site.client(order.seat) as c:
        r = c.post(f"/orders/{order.id}/accept", data={"version": str(order.version)})
        assert r.status_code == 403 and "CSRF" in r.text
        r = c.post(f"/orders/{order.id}/accept", data={"version": str(order.version),
                                                       "csrf": "x" * 43})
        assert r.status_code == 403
    assert orders.get(site.store, order.id).status == "dispatched"


def test_an_idle_session_expires_and_sign_out_ends_it(site: ConsoleSite) -> None:
    with site.client("hzxs-t01") as c:
        assert c.get("/inbox").status_code == 200
        mine = token_hash(c.cookies["pbxctl_session"])
        site.store.execute("UPDATE console_sessions SET seen_at = now() - interval '31 min' "
                           "WHERE token_hash = %s", (mine,))
        r = c.get("/inbox", headers={"Accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert c.get("/inbox/rows").status_code == 401
    assert not site.store.execute("SELECT 1 FROM console_sessions WHERE token_hash = %s",
                                  (mine,))
    with site.client("hzxs-t01") as c:
        csrf = csrf_of(c.get("/inbox").text)
        assert c.post("/logout", data={"csrf": csrf}).status_code == 303
        assert c.get("/inbox/rows").status_code == 401


# -- role and scope -------------------------------------------------------------------------
def test_a_county_seat_cannot_see_or_act_on_another_countys_order(site: ConsoleSite) -> None:
    order = site.file_order("HZXS")
    wav = site.recordings / "scope.wav"
    _write_wav(wav, seconds=1)
    uid = f"scope-{order.id}"
    _index_recording(site.store, uid, wav)
    site.store.execute("UPDATE work_orders SET recording = %s WHERE id = %s", (uid, order.id))
    with site.client("hzyh-t01") as other:
        for path in (f"/orders/{order.id}", f"/orders/{order.id}/row",
                     f"/orders/{order.id}/recording"):
            r = other.get(path)
            assert r.status_code == 403, path
            assert "outside your scope" in r.text
        assert f'id="order-{order.id}"' not in other.get("/inbox").text
        csrf = csrf_of(other.get("/inbox").text)
        r = other.post(f"/orders/{order.id}/accept",
                       data={"csrf": csrf, "version": str(order.version)})
        assert r.status_code == 403
    with site.client("hz-a001") as agent:  # an agent sees the prefecture's orders, acts on none
        assert agent.get(f"/orders/{order.id}").status_code == 200
        csrf = csrf_of(agent.get("/inbox").text)
        r = agent.post(f"/orders/{order.id}/accept",
                       data={"csrf": csrf, "version": str(order.version)})
        assert r.status_code == 403
    mate = "hzxs-t02" if order.seat == "hzxs-t01" else "hzxs-t01"
    with site.client(mate) as c:  # same county, not the assigned seat: told to whom it went
        csrf = csrf_of(c.get("/inbox").text)
        r = c.post(f"/orders/{order.id}/accept",
                   data={"csrf": csrf, "version": str(order.version)})
        assert r.status_code == 409 and f"dispatched to {order.seat}" in r.text
    assert orders.get(site.store, order.id).status == "dispatched"


def test_the_recording_is_streamed_with_ranges_only_from_below_its_root(
        site: ConsoleSite, tmp_path: Path) -> None:
    order = site.file_order("HZXS")
    wav = site.recordings / f"call-{order.id}.wav"
    _write_wav(wav, seconds=2)
    uid = f"rec-{order.id}"
    _index_recording(site.store, uid, wav)
    site.store.execute("UPDATE work_orders SET recording = %s WHERE id = %s", (uid, order.id))
    with site.client(order.seat) as c:
        r = c.get(f"/orders/{order.id}/recording", headers={"Range": "bytes=0-99"})
        assert r.status_code == 206 and len(r.content) == 100
        assert r.headers["content-range"] == f"bytes 0-99/{wav.stat().st_size}"
        assert r.content == wav.read_bytes()[:100]
        assert 'id="recording"' in c.get(f"/orders/{order.id}").text
        # An index row pointing outside the recordings root is never served.
        outside = tmp_path / "secret.wav"
        _write_wav(outside, seconds=1)
        site.store.execute("UPDATE recordings SET path = %s WHERE uniqueid = %s",
                           (str(outside), uid))
        assert c.get(f"/orders/{order.id}/recording").status_code == 404


def test_clients_outside_the_allowed_networks_are_refused(site: ConsoleSite) -> None:
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=site.url, transport=transport, timeout=10.0) as c:
        r = c.get("/login")
    assert r.status_code == 403 and "may not use the console" in r.text


def test_markup_in_any_text_field_is_shown_as_text(site: ConsoleSite) -> None:
    account = site.account("HZXS")
    site.store.execute("UPDATE accounts SET holder = %s, address = %s WHERE account_no = %s",
                       (XSS, XSS, account))
    try:
        order = site.file_order("HZXS", description=XSS)
        with site.client(order.seat) as c:
            for path in ("/inbox", f"/orders/{order.id}", f"/orders/{order.id}/row"):
                html = c.get(path).text
                assert "<script>window.pwned" not in html and "<img src=x" not in html, path
                assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html, path
            csp = c.get("/inbox").headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    finally:
        seed = site.store.execute("SELECT holder FROM accounts WHERE account_no = %s",
                                  (account,))
        assert seed  # the account is still there; restore a plain address for later tests
        site.store.execute("UPDATE accounts SET holder = '测试户', address = '萧山区测试路1号' "
                           "WHERE account_no = %s", (account,))


# -- the agent's screen (the pops here are published by the test: this module runs no PBX;
# tests/integration/test_console_calls.py has them from a real call) ----------------------------
def _pop(agent: str, linkedid: str, account: str, caller: str = "057188880001") -> Pop:
    return Pop(agent=agent, linkedid=linkedid, uniqueid=linkedid, caller=caller,
               did="057195598", reason="account", account=account, queue="acd-HZ",
               prefecture="HZ", mode="central", start=100.0, answer=112.5, recording="",
               received=time.time())


def test_an_agent_sees_only_their_own_pops_and_files_orders_in_their_prefecture(
        site: ConsoleSite) -> None:
    hz, nb = site.account("HZXS"), site.account("NBYY")
    site.calls.publish(_pop("hz-a001", "zj-pbx-100.1", hz, caller=XSS))
    site.calls.publish(_pop("hz-a002", "zj-pbx-200.1", hz))
    with site.client("hz-a001") as me, site.client("hzxs-t01") as seat:
        page = me.get("/agent")
        assert page.status_code == 200 and "&lt;script&gt;window.pwned" in page.text
        assert "<script>window.pwned" not in page.text
        pop = me.get("/agent/pop/zj-pbx-100.1")
        assert pop.status_code == 200 and 'id="customer-account">' + hz in pop.text
        assert me.get("/agent/pop/zj-pbx-200.1").status_code == 404  # hz-a002's call
        assert seat.get("/agent").status_code == 403  # not an agent
        csrf = csrf_of(page.text)
        form = {"csrf": csrf, "linkedid": "zj-pbx-100.1", "account_no": hz, "type": "repair",
                "priority": "2", "description": "门口电杆倾斜"}
        assert me.post("/agent/orders", data={**form, "csrf": ""}).status_code == 403
        r = me.post("/agent/orders", data={**form, "linkedid": "zj-pbx-200.1"})
        assert r.status_code == 403 and "not on your phone" in r.text
        r = me.post("/agent/orders", data={**form, "account_no": nb})
        assert r.status_code == 403 and "another prefecture" in r.text
        r = me.post("/agent/orders", data={**form, "type": "teleport"})
        assert r.status_code == 400 and "not one of" in r.text
        before = site.store.execute("SELECT count(*) FROM work_orders")[0][0]
        r = me.post("/agent/orders", data=form)
        assert r.status_code == 303 and r.headers["location"].startswith("/agent?filed=")
        order = orders.get(site.store, int(r.headers["location"].split("=")[1]))
        assert (order.call_linkedid, order.call_site, order.priority, order.status) == \
            ("zj-pbx-100.1", "zj-pbx", 2, "dispatched")
        assert site.store.execute("SELECT count(*) FROM work_orders")[0][0] == before + 1  # type: ignore[operator]
        # Ready/paused needs the PBX: unreachable here, so nothing is claimed.
        r = me.post("/agent/state", data={"csrf": csrf, "state": "paused", "reason": "meal"})
        assert r.status_code == 503 and "not reachable" in r.text
        r = me.post("/agent/state", data={"csrf": csrf, "state": "asleep"})
        assert r.status_code == 400


# -- the supervisor wallboard ------------------------------------------------------------------
def test_wallboard_kpis_follow_their_definitions(site: ConsoleSite) -> None:
    """Hand-computed figures (docs/console.md, KPIs) for records placed at fixed local times
    of today; yesterday's and queue-less records do not count."""
    zone = ZoneInfo(site.inv.province.options.timezone)
    midnight = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)

    def rec(uid: str, pref: str, start_h: float, wait_s: float | None, *,
            queue: str = "acd-HZ") -> None:
        start = midnight + timedelta(hours=start_h)
        answer = start + timedelta(seconds=wait_s) if wait_s is not None else None
        site.store.execute(
            "INSERT INTO call_records (site, uniqueid, linkedid, prefecture, queue, started_at,"
            " answered_at, ended_at) VALUES ('zj-pbx', %s, %s, %s, %s, %s, %s, %s)",
            (uid, uid, pref, queue, start, answer, start + timedelta(minutes=3)))

    rec("k1", "HZ", 10.0, 5)        # answered within 20 s
    rec("k2", "HZ", 10.5, 25)       # answered, too late for the service level
    rec("k3", "HZ", 11.0, None)     # abandoned
    rec("k4", "NB", 11.25, 2, queue="acd-NB")
    rec("k5", "HZ", 12.0, 40, queue="acd-supervisors")  # overflowed, a supervisor answered
    rec("k6", "HZ", -2.0, 1)        # yesterday
    rec("k7", "HZ", 13.0, None, queue="")  # never queued (self-service only)
    # HZ: offered 4, answered 3, abandoned 1, within 20 s 1 → SL 25 %, ASA (5+25+40)/3 s,
    # abandonment 25 %. NB: offered 1, answered 1, SL 100 %, ASA 2 s.
    figures = prefecture_kpis(site.store, since=midnight, until=midnight + timedelta(days=1))
    hz, nb = figures["HZ"], figures["NB"]
    assert (hz.offered, hz.answered, hz.abandoned, hz.answered_in_sl) == (4, 3, 1, 1)
    assert hz.service_level == 0.25 and hz.abandon_rate == 0.25
    assert hz.asa_s == pytest.approx(70 / 3)
    assert (nb.offered, nb.answered, nb.service_level, nb.asa_s) == (1, 1, 1.0, 2.0)
    hours = hourly(site.store, since=midnight, until=midnight + timedelta(days=1),
                   zone=str(zone))
    assert [(h.hour, h.offered, h.answered, h.abandoned) for h in hours if h.offered] == \
        [(10, 2, 2, 0), (11, 2, 1, 1), (12, 1, 1, 0)]
    # The watchers' reports: HZ survivable with both paths down; NB's last report too old.
    site_states.report(site.store, site="hz-gw", prefecture="HZ", mode="survivable",
                       since=midnight + timedelta(hours=9), path_a=False, path_b=False)
    site_states.report(site.store, site="nb-gw", prefecture="NB", mode="central",
                       since=midnight, path_a=True, path_b=True)
    site.store.execute("UPDATE prefecture_states SET reported_at = now() - interval '1 min' "
                       "WHERE site = 'nb-gw'")
    with site.client("zj-sup01") as sup:
        board = sup.get("/wallboard/board")
        assert 'data-mode="survivable"' in board.text and 'data-paths="down/down"' in board.text
        assert 'data-mode="unheard"' in board.text  # NB: not trusted after 15 s
        assert board.status_code == 200
        assert 'id="kpi-HZ" data-offered="4" data-answered="3" data-abandoned="1"' in board.text
        assert "25.0%" in board.text and "23.3 s" in board.text
        assert 'id="hourly"' in board.text and "<script" not in board.text
        csrf = csrf_of(sup.get("/wallboard").text)
        spy = {"csrf": csrf, "agent": "hz-a001", "mode": "listen"}
        assert sup.post("/wallboard/spy", data={**spy, "csrf": ""}).status_code == 403
        assert sup.post("/wallboard/spy", data={**spy, "mode": "record"}).status_code == 400
        assert sup.post("/wallboard/spy", data={**spy, "agent": "hzxs-t01"}).status_code == 400
        r = sup.post("/wallboard/spy", data=spy)  # no PBX in this module: nothing claimed
        assert r.status_code == 503 and "not reachable" in r.text
    with site.client("hz-a001") as agent:
        csrf = csrf_of(agent.get("/agent").text)
        r = agent.post("/wallboard/spy", data={"csrf": csrf, "agent": "hz-a002",
                                               "mode": "listen"})
        assert r.status_code == 403
    # The daily report and its CSV: the same figures by hour, and the prefecture's orders.
    done = site.file_order("WZRA")
    orders.accept(site.store, done.id, seat=str(done.seat), actor=str(done.seat))
    orders.close(site.store, done.id, actor=str(done.seat), note="修复")
    late = site.file_order("WZRA")  # urgent (2 h), filed at 00:00:01: overdue by midnight
    site.store.execute("UPDATE work_orders SET priority = 1, created_at = %s WHERE id = %s",
                       (midnight + timedelta(seconds=1), late.id))
    with site.client("zj-sup01") as sup:
        page = sup.get("/reports/daily?prefecture=WZ")
        assert page.status_code == 200 and 'id="report-orders"' in page.text
        lines = sup.get(f"/reports/daily.csv?prefecture=HZ&date={midnight.date()}").text
        assert "10,2,2,0,1,0.5000,15.0,0.0000" in lines  # hour 10: k1 and k2
        assert "HZ," + str(midnight.date()) + ",total,4,3,1,1,0.2500,23.3,0.2500" in lines
        wz = sup.get("/reports/daily.csv?prefecture=WZ").text.splitlines()
        assert wz[-2:] == ["orders_opened,orders_closed,orders_overdue", "2,1,1"]
        yesterday = (midnight - timedelta(days=1)).date()
        old = sup.get(f"/reports/daily.csv?prefecture=HZ&date={yesterday}").text
        assert f"HZ,{yesterday},22,1,1,0,1" in old  # k6
        assert sup.get("/reports/daily?prefecture=XX").status_code == 400
        assert sup.get("/reports/daily?date=yesterday").status_code == 400
    for seat in ("hz-a001", "hzxs-t01"):  # not supervisors: no wallboard, no stream
        with site.client(seat) as c:
            for path in ("/wallboard", "/wallboard/board", "/wallboard/events",
                         "/reports/daily", "/reports/daily.csv"):
                assert c.get(path).status_code == 403, (seat, path)


# -- helpers ----------------------------------------------------------------------------------
def _write_wav(path: Path, *, seconds: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * 8000 * seconds)


def _index_recording(store: Store, uid: str, path: Path) -> None:
    store.execute("INSERT INTO call_records (site, uniqueid, linkedid, started_at, ended_at) "
                  "VALUES ('zj-pbx', %s, %s, now(), now())",
                  (uid, uid))
    store.execute("INSERT INTO recordings (site, uniqueid, path, status) "
                  "VALUES ('zj-pbx', %s, %s, 'ok')", (uid, str(path)))




# -- a real browser ---------------------------------------------------------------------------
def browser_sign_in(driver: WebDriver, site: ConsoleSite, seat: str, *,
                    lang: str = "en") -> None:
    sign_in_browser(driver, site.url, seat, PASSWORD[seat], lang=lang)


@pytest.mark.browser
def test_an_order_filed_by_an_agent_appears_in_the_county_inbox_and_is_worked_there(
        site: ConsoleSite, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    browser_sign_in(browser, site, "hzxs-t01")
    assert "Work orders of county HZXS" in browser.find_element(By.TAG_NAME, "h1").text
    # Filed like `*9`; least-loaded dispatch picks the seat, so file until hzxs-t01 has one.
    filed = time.monotonic()
    order = site.file_order("HZXS", description=XSS)
    while order.seat != "hzxs-t01":
        filed = time.monotonic()
        order = site.file_order("HZXS", description=XSS)
    seen = wait_js(browser, f"document.getElementById('order-{order.id}')",
                   what=f"order {order.id} to appear without a reload")
    print(f"\ninbox lag from commit to row: {(seen - filed) * 1000:.0f} ms")
    row = browser.find_element(By.ID, f"order-{order.id}")
    assert XSS in row.text  # shown as text…
    assert browser.execute_script("return window.pwned === undefined")  # …never run
    # Accept from the row: the order page shows it accepted, as does the database.
    row.find_element(By.CSS_SELECTOR, "button.accept").click()
    wait_js(browser, "document.getElementById('status') && "
                     "document.getElementById('status').dataset.status === 'accepted'",
            what="the order page after accept")
    assert orders.get(site.store, order.id).status == "accepted"
    # Close with a result; the history says who did what.
    browser.find_element(By.ID, "result").send_keys("已抢修复电")
    browser.find_element(By.ID, "close").click()
    wait_js(browser, "document.getElementById('status').dataset.status === 'done'",
            what="the order page after close")
    events = [(e.actor, e.event) for e in orders.history(site.store, order.id)]
    assert events[-2:] == [("hzxs-t01", "accepted"), ("hzxs-t01", "done")]


@pytest.mark.browser
def test_phone_and_screen_accepting_one_order_have_one_winner(
        site: ConsoleSite, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    browser_sign_in(browser, site, "hzyh-t01")
    order = site.file_order("HZYH")
    while order.seat != "hzyh-t01":
        order = site.file_order("HZYH")
    browser.get(f"{site.url}/orders/{order.id}")
    assert browser.find_element(By.ID, "status").get_attribute("data-status") == "dispatched"
    # The seat's phone accepts first (the `1` key of the notification call), then the screen
    # opened before it tries with the version it showed.
    orders.accept(site.store, order.id, seat="hzyh-t01", actor="hzyh-t01",
                  expect_version=order.version)
    browser.find_element(By.ID, "accept").click()
    wait_js(browser, "document.getElementById('problem')", what="the refusal")
    assert "changed since version" in browser.find_element(By.ID, "problem").text
    assert [e.event for e in orders.history(site.store, order.id)].count("accepted") == 1


@pytest.mark.browser
def test_the_console_speaks_chinese_by_default(site: ConsoleSite, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{site.url}/login")
    assert browser.find_element(By.TAG_NAME, "h1").text == "登录"
    browser.find_element(By.ID, "login").send_keys("hzxs-t02")
    browser.find_element(By.ID, "password").send_keys(PASSWORD["hzxs-t02"])
    browser.find_element(By.ID, "submit").click()
    wait_js(browser, "document.body.dataset.live === '1'", what="the inbox to go live")
    assert browser.find_element(By.TAG_NAME, "h1").text == "HZXS 县区工单"
    assert browser.find_element(By.ID, "live-state").text == "实时"


# -- the CLI ----------------------------------------------------------------------------------
def test_passwd_reads_the_password_from_stdin_and_checks_the_seat(site: ConsoleSite,
                                                                  tmp_path: Path) -> None:
    conninfo = site.store.config.conninfo
    env = {"PBXCTL_DATABASE_DSN": conninfo}

    def passwd(*argv: str, stdin: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        rc = main(["console", "passwd", *argv], environ=env, stdout=out, stderr=err,
                  stdin=io.StringIO(stdin))
        return rc, out.getvalue() + err.getvalue()

    rc, text = passwd("hzyh-t02", "--inventory", str(EXAMPLE), stdin="a-new-pass-123\n")
    assert rc == 0 and "a-new-pass-123" not in text
    stored = site.store.execute("SELECT password_hash FROM console_logins WHERE login = "
                                "'hzyh-t02'")[0][0]
    assert str(stored).startswith("$argon2id$")
    with site.client() as c:
        assert sign_in(c, "hzyh-t01").status_code == 303  # others unaffected
    rc, text = passwd("nobody-t09", "--inventory", str(EXAMPLE), stdin="long-enough-pw\n")
    assert rc == 3 and "no such seat" in text
    rc, text = passwd("hzyh-t02", "--inventory", str(EXAMPLE), stdin="short\n")
    assert rc == 3 and "at least 10 characters" in text
    assert not site.store.execute("SELECT 1 FROM console_logins WHERE login = 'nobody-t09'")
    # The short one changed nothing: the password set before still signs in.
    PASSWORD["hzyh-t02"] = "a-new-pass-123"
    site.store.execute("DELETE FROM console_login_failures")  # the rate-limit test's
    with site.client() as c:
        assert sign_in(c, "hzyh-t02").status_code == 303


def test_serve_from_the_config_file_binds_the_chosen_address(site: ConsoleSite,
                                                            tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    cfg = tmp_path / "pbxctl.yaml"
    cfg.write_text(f"database: {{dsn: \"{site.store.config.conninfo}\"}}\n"
                   f"console: {{inventory: {EXAMPLE}, host: 127.0.0.3, port: {port}, "
                   "allow: [127.0.0.0/8], cookie_secure: false}\n")
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("database: {password: console-db-secret-1}\n")
    secrets.chmod(0o600)
    log = tmp_path / "console.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "pbxctl", "console", "serve",
                                 "--config", str(cfg)], stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: tcp_accepts("127.0.0.3", port) or proc.poll() is not None,
                   timeout=30, what="pbxctl console serve to listen")
        assert proc.poll() is None, log.read_text()
        assert not tcp_accepts("127.0.0.1", port)  # only the chosen address
        r = httpx.get(f"http://127.0.0.3:{port}/login", timeout=10)
        assert r.status_code == 200 and "登录" in r.text
        with httpx.Client(base_url=f"http://127.0.0.3:{port}", timeout=10) as c:
            assert sign_in(c, "zj-sup01").status_code == 303
            assert "Work orders of the province" in c.get("/inbox").text
        assert "console-db-secret-1" not in " ".join(Path(f"/proc/{proc.pid}/cmdline")
                                                     .read_text().split("\0"))
    finally:
        proc.terminate()
        rc = proc.wait(timeout=15)
    text = log.read_text()
    assert rc == 0, text
    assert "console-db-secret-1" not in text and PASSWORD["zj-sup01"] not in text


def test_serve_on_an_inherited_listening_socket(site: ConsoleSite, tmp_path: Path) -> None:
    """--listen-fd: the lab makes the listener on the host's loopback and starts the console in
    the province's namespace; systemd socket activation hands one over the same way."""
    cfg = tmp_path / "pbxctl.yaml"
    cfg.write_text(f"database: {{dsn: \"{site.store.config.conninfo}\"}}\n"
                   f"console: {{inventory: {EXAMPLE}, cookie_secure: false}}\n")
    listener = socket.socket()
    listener.bind(("127.0.0.5", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    log = tmp_path / "console.log"
    argv = [sys.executable, "-m", "pbxctl", "console", "serve", "--config", str(cfg)]
    with log.open("wb") as fh:
        proc = subprocess.Popen([*argv, "--listen-fd", str(listener.fileno())],
                                stdout=fh, stderr=subprocess.STDOUT,
                                pass_fds=(listener.fileno(),))
    listener.close()  # the console holds its own copy
    try:
        with httpx.Client(base_url=f"http://127.0.0.5:{port}", timeout=30) as c:
            # Connections queue on the inherited socket until the console accepts them.
            assert sign_in(c, "zj-sup01").status_code == 303
            assert "Work orders of the province" in c.get("/inbox").text
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, log.read_text()
    # An fd that is not a listening socket is one clear line, and nothing starts.
    with (tmp_path / "plain").open("w") as plain:
        fd = plain.fileno()
        res = subprocess.run([*argv, "--listen-fd", str(fd)], pass_fds=(fd,),
                             capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode != 0
    assert f"--listen-fd {fd}: not an open socket" in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2, res.stderr
