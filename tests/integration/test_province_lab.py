"""The whole province as one system (issue 16): `pbxctl lab up --inventory` with data, prompts,
CTI, collectors, dispatcher and a phone bank; the guided tour's eight steps as real calls;
`lab call --json`; bad input; `lab down` leaves nothing behind.

One lab for the module (bringing it up takes ~30 s); the tests run in file order and the
tour's steps leave the lab as they found it (phones freed, WAN restored)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from selenium.webdriver.common.by import By

from pbxctl.cli import main
from pbxctl.core.procs import pid_alive, wait_until
from pbxctl.data import site_states
from pbxctl.data.store import Store, StoreConfig
from pbxctl.lab.province import LAB_CONSOLE_PASSWORD
from tests.browser import sign_in, wait_js
from tests.integration.test_lab import _procs_mentioning

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.lab, pytest.mark.asterisk, pytest.mark.pg, pytest.mark.sipp]

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"


@dataclass
class Lab:
    root: Path
    environ: dict[str, str]
    state: dict[str, Any]

    def run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), environ=self.environ, stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def store(self) -> Store:
        pg = self.state["pg"]
        store = Store(config=StoreConfig(
            conninfo=f"host={pg['socket']} port={pg['port']} dbname=pbxctl user=postgres"))
        store.open()
        return store


def _namespaces(tag: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"pbx{tag}-")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("the namespace lab needs root (CI runs as root)")
    root = Path("/tmp") / f"pbxlab-{os.getpid()}"
    environ = {**os.environ, "PBXCTL_LAB_DIR": str(root)}
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(["lab", "up", "--inventory", str(SMALL), "--always-open", "--hold-down",
                     "5", "--json"], environ=environ, stdout=out, stderr=err)
        assert code == 0, err.getvalue()[-3000:]
        yield Lab(root, environ, json.loads(out.getvalue()))
    finally:
        main(["lab", "down"], environ=environ, stdout=io.StringIO(), stderr=io.StringIO())


def test_every_service_runs_and_every_phone_is_registered(lab: Lab) -> None:
    st = lab.state
    assert all(pid_alive(p) for p in [st["pg"]["pid"], st["cti"]["pid"],
                                      *(s["pid"] for s in st["services"].values()),
                                      *(k["pid"] for k in st["phones"].values())])
    assert sorted(st["services"]) == ["collector:hz-gw", "collector:hz-lss", "collector:nb-gw",
                                      "collector:nb-lss", "collector:zj-pbx", "dispatcher",
                                      "relay:hz-gw", "relay:nb-gw"]
    # Each gateway's call-time relay answers in the gateway's namespace, both paths up.
    for gw in ("hz-gw", "nb-gw"):
        ns = st["nodes"][st["sites"][gw]["node"]]["ns"]
        res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "pbxctl",
                              "relay", "status", "--json"],
                             capture_output=True, text=True, timeout=30, check=False)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["paths"] == {"cti-a": "up", "cti-b": "up"}
    # Each prefecture's IVR answers from its own replica, subscribed and complete.
    assert sorted(st["ivrs"]) == ["HZ", "NB"]
    for code, ivr in st["ivrs"].items():
        assert pid_alive(ivr["pid"]) and pid_alive(ivr["pg"]["pid"])
        assert ivr["node"] == f"{code.lower()}lss"  # no `ivr:` in the example: the LSS host
        env = {**lab.environ, "PBXCTL_CONFIG": ivr["config"]}
        status = io.StringIO()
        assert main(["db", "replicas", "status", "--json"], environ=env, stdout=status,
                    stderr=io.StringIO()) == 0
        [sub] = json.loads(status.getvalue())["subscriptions"]
        assert sub["worker_running"] and sub["tables"] == {"ready": 3}
    # Each gateway's watcher reports its prefecture's mode and paths to the province.
    store = lab.store()
    try:
        def reported() -> bool:
            return set(site_states.latest(store)) == {"HZ", "NB"}

        wait_until(reported, timeout=30, what="both watchers' state reports")
        got = {k: (v.site, v.mode, v.path_a, v.path_b)
               for k, v in site_states.latest(store).items()}
    finally:
        store.close()
    assert got == {"HZ": ("hz-gw", "central", True, True), "NB": ("nb-gw", "central", True, True)}
    # The DSN reaches the services through the config file, never their command lines.
    for info in [st["cti"], st["console"], *st["services"].values(), *st["ivrs"].values()]:
        cmd = Path(f"/proc/{info['pid']}/cmdline").read_bytes().decode()
        assert "dbname" not in cmd and "--dsn" not in cmd and "fixed-welcome" not in cmd
    code, out, _ = lab.run("lab", "phones", "--json")
    rows = json.loads(out)
    assert code == 0
    assert {r["seat"]: r["kind"] for r in rows} == {
        "hz-a001": "agent", "hz-a002": "agent", "nb-a001": "agent", "hzxs-t01": "county",
        "zj-sup01": "supervisor"}
    for r in rows:  # agents at the province and their LSS; the others at the province
        want = {"zj-pbx"} | ({f"{r['prefecture'].lower()}-lss"} if r["kind"] == "agent"
                             else set())
        assert r["registrations"] == {site: "registered" for site in want}, r
    # Every gateway and LSS holds the catalogue on its own disk: the drift report is clean.
    code, out, _ = lab.run("prompts", "status", "--inventory", st["inventory"], "--target",
                           str(lab.root), "--config", st["config"], "--json")
    assert code == 0 and json.loads(out)["drift"] == []


def test_lab_call_json_reads_back_the_bill_that_postgresql_holds(lab: Lab) -> None:
    code, out, err = lab.run("lab", "call", "--prefecture", "HZ", "--keys", "1 3301010001#",
                             "--json")
    assert code == 0, err[-2000:]
    report = json.loads(out)
    [svc] = report["services"]
    assert svc["Service"] == "bill" and svc["Status"] == "OK"
    assert (svc["Period"], svc["Amount"], svc["Due"]) == (
        svc["db"]["period"], svc["db"]["amount"], svc["db"]["due"])
    assert report["welcome"]["branch"] == "central"
    assert [s["what"] for s in report["timeline"]][:2] == ["call arrives", "welcome: central"]
    assert [r["site"] for r in report["records"]] == ["hz-gw"]


def test_the_tour_shows_all_eight_points_with_real_calls(lab: Lab) -> None:
    code, out, err = lab.run("lab", "tour", "--json")
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [r["step"].split()[0] for r in rows] == [str(i) for i in range(1, 9)], err[-2000:]
    failed = [r for r in rows if not r["ok"]]
    assert not failed, failed
    assert code == 0
    # What the tour claims, checked again at the source.
    store = lab.store()
    try:
        orders = store.execute("SELECT status, seat, recording FROM work_orders")
        lss_calls = int(str(store.execute("SELECT count(*) FROM call_records WHERE site = 'hz-lss' "
                                  "AND agent <> ''")[0][0]))
        overflowed = store.execute("SELECT agent FROM call_records WHERE site = 'zj-pbx' "
                                   "AND overflow <> ''")
        welcome = store.execute("SELECT max(version) FROM prompts WHERE prompt_id = "
                                "'welcome-default' AND published_at IS NOT NULL")[0][0]
    finally:
        store.close()
    assert [(s, seat) for s, seat, _ in orders] == [("accepted", "hzxs-t01")]
    assert orders[0][2]  # the order links the call's recording
    assert lss_calls >= 1
    assert [a for (a,) in overflowed] == ["zj-sup01"]
    assert welcome == 2
    wan = rows[0]["happened"]
    assert "audio 0 B" in wan


@pytest.mark.browser
def test_the_labs_console_signs_in_seats_and_pops_a_real_call(lab: Lab,
                                                               browser: WebDriver) -> None:
    """`lab up` runs the web console on the province node, its listener on the host's
    loopback, every seat signing in with the lab's known password: the supervisor's wallboard
    shows both prefectures as the watchers report them, and a real call queued to hz-a001
    pops on hz-a001's open page."""
    console = lab.state["console"]
    assert pid_alive(console["pid"])
    url = console["url"].rstrip("/")
    assert url.startswith("http://127.0.0.1:")
    sign_in(browser, url, "zj-sup01", LAB_CONSOLE_PASSWORD)
    assert "/wallboard" in browser.current_url
    for pref in ("HZ", "NB"):
        wait_js(browser, f"document.querySelector('#kpi-{pref} td.mode').dataset.mode "
                         "=== 'central'", what=f"{pref} central on the wallboard", timeout=30)
    browser.find_element(By.ID, "logout").click()
    sign_in(browser, url, "hz-a001", LAB_CONSOLE_PASSWORD)
    assert "/agent" in browser.current_url
    code, _, err = lab.run("lab", "phones", "set", "hz-a002", "busy")  # so hz-a001 answers
    assert code == 0, err
    try:
        call = subprocess.Popen(
            [sys.executable, "-m", "pbxctl", "lab", "call", "--prefecture", "HZ", "--keys", "0",
             "--from", "057188880123", "--talk", "3", "--json"],
            env=lab.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_js(browser, "document.body.dataset.popped", what="the lab call's screen pop",
                    timeout=90)
        finally:
            out, err = call.communicate(timeout=180)
    finally:
        lab.run("lab", "phones", "set", "hz-a002", "free")
    assert call.returncode == 0, err[-2000:]
    report = json.loads(out)
    assert report["agent"] == "hz-a001" and report["served_by"] == "province"
    assert "057188880123" in browser.find_element(By.ID, "pop").text
    # Wrong password: refused like any other console's.
    browser.find_element(By.ID, "logout").click()
    sign_in(browser, url, "hz-a001", "not-the-lab-password", live=False)
    assert "/login" in browser.current_url


def test_bad_input_is_one_clear_line(lab: Lab) -> None:
    code, _, err = lab.run("lab", "call", "--prefecture", "XX")
    assert code == 2 and "valid: HZ, NB" in err, err
    code, _, err = lab.run("lab", "call", "--prefecture", "HZ", "--keys", "1 x#")
    assert code == 2 and "'x' is not a DTMF key" in err
    code, _, err = lab.run("lab", "phones", "set", "nobody", "busy")
    assert code == 2 and "no phone 'nobody'" in err
    code, _, err = lab.run("lab", "up", "--inventory", str(SMALL))
    assert code == 10 and "already up" in err
    code, _, err = lab.run("lab", "up", "--inventory", str(SMALL), "--prefectures", "HZ,QQ")
    assert code == 10 and "already up" in err  # the running lab is not touched


def test_lab_down_leaves_no_process_namespace_or_link(lab: Lab) -> None:
    tag = lab.state["tag"]
    pids = [p for p in _all_pids(lab.state) if p]
    assert _namespaces(tag)
    code, _, err = lab.run("lab", "down")
    assert code == 0, err
    assert not [p for p in pids if pid_alive(p)]
    assert _namespaces(tag) == []
    assert _procs_mentioning(str(lab.root)) == []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                           check=True).stdout
    assert tag not in links


def _all_pids(st: dict[str, Any]) -> list[int]:
    procs = [st["pg"], st["cti"], st["console"], *st["services"].values(), *st["phones"].values(),
             *st["sites"].values(), *st["uplinks"].values(), *st["watchers"].values()]
    return [int(p["pid"]) for p in procs if p.get("pid")]


def test_an_unknown_prefecture_is_refused_before_anything_starts(tmp_path: Path) -> None:
    environ = {**os.environ, "PBXCTL_LAB_DIR": str(tmp_path / "lab")}
    err = io.StringIO()
    code = main(["lab", "up", "--inventory", str(SMALL), "--prefectures", "HZ,QQ"],
                environ=environ, stdout=io.StringIO(), stderr=err)
    assert code != 0
    lines = [line for line in err.getvalue().splitlines() if line.startswith("pbxctl: error:")]
    assert len(lines) == 1 and "QQ" in lines[0] and "HZ" in lines[0] and "NB" in lines[0], lines
    assert _procs_mentioning(str(tmp_path / "lab")) == []
