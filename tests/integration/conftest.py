"""Shared by the contact-center tests: a province with two gateways, SIPp phones for seats
that register (digest auth) and answer, and SIPp callers on the prefectures' DIDs."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pbxctl.core.procs import wait_until
from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.lab.sandbox.sipp import SippProcess, pcap, scenario_path
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
from pbxctl.pbx.ami import Message, Subscription
from pbxctl.pbx.asterisk_show import contacts
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.secrets import Secrets, ensure_secrets, secrets_path
from tests.conftest import SiteFactory


class Phones:
    """SIPp phones for seats: register with the seat's secret, then answer calls."""

    def __init__(self, inv: Inventory, secrets: Secrets, province: AsteriskInstance,
                 workdir: Path) -> None:
        self.inv, self.secrets, self.province, self.workdir = inv, secrets, province, workdir
        self.running: list[SippProcess] = []
        self._next = 101

    def register(self, seat_id: str) -> str:
        """Register the seat from a fresh address; returns the address its phone must use."""
        ip = f"127.201.1.{self._next}"  # phones sit on the province's switch-A network
        self._next += 1
        pbx = (str(self.inv.province.pbx.a), 5060)
        reg = SippProcess(scenario=scenario_path("register.xml"), workdir=self.workdir / seat_id,
                          local_ip=ip, local_port=5060, remote=pbx,
                          keys={"user": seat_id, "expires": "600"}, timeout=15,
                          extra_args=("-au", seat_id, "-ap", self.secrets.sip[seat_id])).run()
        assert reg.successful == 1, f"{seat_id} did not register: {reg.errors[-500:]}"
        return ip

    def login(self, seat_id: str, *, calls: int = 1, scenario: Path | None = None,
              in_queue: bool = True) -> SippProcess:
        """Register, then answer ``calls`` calls (uas_agent.xml: talk until the BYE, or the
        given scenario); ``in_queue``: wait until the seat is ready in its queue."""
        ip = self.register(seat_id)
        uas = SippProcess(scenario=scenario or scenario_path("uas_agent.xml"),
                          workdir=self.workdir / seat_id, local_ip=ip, local_port=5060,
                          calls=calls, timeout=120, extra_args=("-aa",),
                          keys={"audio": str(pcap("g711a.pcap"))})
        uas.start()
        self.running.append(uas)
        if in_queue:
            wait_until(lambda: f"PJSIP/{seat_id}" in self._ready(), timeout=10,
                       what=f"{seat_id} ready in its queue")
        return uas

    def dial(self, seat_id: str, number: str, *, hold_ms: int = 3000,
             scenario: Path | None = None) -> SippProcess:
        """The seat's phone calls ``number`` (digest auth on the INVITE), talks, hangs up
        (or runs the given scenario, e.g. one that sends DTMF and waits for the BYE)."""
        ip = f"127.201.1.{self._next}"
        self._next += 1
        return SippProcess(scenario=scenario or scenario_path("uac_auth_hold.xml"),
                           workdir=self.workdir / f"{seat_id}-dial", local_ip=ip,
                           remote=(str(self.inv.province.pbx.a), 5060), service=number,
                           pause_ms=hold_ms, timeout=30,
                           keys={"caller": seat_id, "audio": str(pcap("g711a.pcap"))},
                           extra_args=("-au", seat_id, "-ap", self.secrets.sip[seat_id]))

    def dial_refused(self, seat_id: str, number: str, *, code: int) -> SippProcess:
        """The seat calls ``number``, authenticates, and the PBX must answer exactly ``code``
        (e.g. 404: no such number in the seat's context). A second 401/403 (auth broken),
        or a call that rings or is answered, fails the SIPp call."""
        text = scenario_path("uac_auth_hold.xml").read_text(encoding="iso-8859-1")
        second_invite = text.index("CSeq: 2 INVITE")
        head = text[:text.index('<recv response="100" optional="true"/>', second_invite)]
        text = head + f"""<recv response="100" optional="true"/>
  <recv response="{code}"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 2 ACK
      Contact: sip:[caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""
        folder = self.workdir / f"{seat_id}-refused"
        folder.mkdir(parents=True, exist_ok=True)
        scenario = folder / f"uac_auth_expect_{code}.xml"
        scenario.write_text(text, encoding="iso-8859-1")
        return self.dial(seat_id, number, scenario=scenario)

    def _ready(self) -> str:
        return "\n".join(line for line in self.province.cli("queue show").splitlines()
                         if "(Not in use)" in line)

    def stop(self) -> None:
        for p in self.running:
            p.stop()


@dataclass
class Center:
    inv: Inventory
    secrets: Secrets
    province: AsteriskInstance
    gateways: dict[str, AsteriskInstance]
    phones: Phones


@pytest.fixture
def center(small_inventory_path: Path, site_factory: SiteFactory, short_tmp: Path
           ) -> Iterator[Center]:
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    province = site_factory(inv, secrets, "zj-pbx", verbose_log=True)
    def sees_province(ast: AsteriskInstance) -> bool:
        return contacts(ast.cli("pjsip show contacts")).get("province-a") == "Avail"

    gateways = {}
    for gw in ("hz-gw", "nb-gw"):
        gateways[gw] = ast = site_factory(inv, secrets, gw, verbose_log=True)
        wait_until(functools.partial(sees_province, ast), timeout=15,
                   what=f"{gw} to qualify the province")
    phones = Phones(inv, secrets, province, short_tmp / "phones")
    yield Center(inv, secrets, province, gateways, phones)
    phones.stop()


def agent_hangs_up(workdir: Path, *, talk_ms: int) -> Path:
    """uas_agent.xml, except that the agent ends the call: answers, speaks for ``talk_ms``,
    then sends BYE. With callers that wait for the PBX's BYE, a caller leaves only once a
    seat has talked to them: "every caller reached a seat" then cannot pass by luck."""
    text = scenario_path("uas_agent.xml").read_text(encoding="iso-8859-1")
    text = text.replace('<recv request="INVITE" crlf="true"/>',
                        """<recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp="[^ ].*" search_in="hdr" header="From:" assign_to="peer"/>
      <ereg regexp="[^ ][^;]*" search_in="hdr" header="To:" assign_to="me"/>
    </action>
  </recv>""")
    head, _, _ = text.partition('  <recv request="BYE"/>')
    text = head + f"""  <pause milliseconds="{talk_ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$me];tag=[pid]SIPpTag01[call_number]
      To: [$peer]
      [last_Call-ID:]
      CSeq: 2 BYE
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""
    out = workdir / f"uas_agent_bye_{talk_ms}.xml"
    workdir.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="iso-8859-1")
    return out


def place_call(inv: Inventory, pref: str, workdir: Path, hold_ms: int | None = 6000, *,
               calls: int = 1,
               rate: float = 1.0, concurrent: int | None = None, did: str | None = None,
               caller: str | None = None,
               steps: list[tuple[int, str]] | None = None) -> SippProcess:
    """PSTN caller(s) on ``pref``'s gateway: press 0 during the welcome (or key ``steps``:
    pause ms, digits), talk, hang up."""
    p = inv.prefecture(pref)
    scenario = write_scenario(workdir, f"call-{pref}", dtmf_scenario(
        steps or [(3800, "0")], pcap_dir=workdir / f"pcaps-{pref}", hold_ms=hold_ms,
        speech_after=pcap("g711a.pcap")))  # the caller speaks once connected
    return SippProcess(scenario=scenario, workdir=workdir / pref,
                       local_ip=str(p.pstn_gateway.a), remote=(str(p.gateway.a), 5060),
                       service=did or p.dids[0], timeout=60 + 10 * calls, calls=calls,
                       rate=rate, concurrent=concurrent,
                       keys={"caller": caller or f"{p.area_codes[0]}8888"})


def connected(events: Subscription) -> Message:
    return events.wait_for(lambda m: m.get("Event") == "AgentConnect", timeout=30,
                           what="AgentConnect on the province")
