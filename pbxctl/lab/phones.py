"""The lab's phone bank: every seat of the chosen prefectures is a registered SIP phone.

Each phone is a SIPp UAS on its own address in a phone node of the namespace lab (agents and
county seats in their prefecture's node, supervisors in the province's). SIPp, because it is
the SIP stack the tests already trust for RTP and RFC 2833 DTMF, one small process per phone
(≈ 4 MB), and it answers any number of calls in a row; what SIPp cannot do — register again
before the registration expires, switch a phone between answering and refusing, restart one
that died — is done by one keeper process per phone node (``python -m pbxctl.lab.phones``).

A phone registers (digest auth, credentials only inside a 0600 scenario file, never on a
command line) at every registrar it has in production: agents at the province and at their
prefecture's LSS, supervisors and county seats at the province. The Contact always names
port 5060, where the UAS listens; the REGISTER itself is sent from port 5070.

Modes (``pbxctl lab phones set SEAT MODE``): ``free`` answers after a ring; ``busy``
refuses with 486 and the seat is paused in its queues (an agent on another task); ``away``
the seat is paused and the phone still answers direct calls. County seats answer and press
1 (accept the work order).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pbxctl.core.errors import UsageError
from pbxctl.core.files import atomic_write
from pbxctl.lab.sandbox.sipp import SippProcess, pcap, scenario_path
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario

MODES = ("free", "busy", "away")
SIP_PORT = 5060
REGISTER_FROM_PORT = 5070
EXPIRES = 300  # seconds; the keeper registers again every third of it
CONTROL_BASE = 20000
RING_MS = 1000  # a phone rings this long before it answers
_SAFE_SECRET = re.compile(r"^[A-Za-z0-9_.~+/=-]{8,128}$")


@dataclass(frozen=True)
class PhoneSpec:
    seat: str
    kind: str  # agent | supervisor | county
    prefecture: str  # "" for supervisors
    address: str
    registrars: tuple[tuple[str, str], ...]  # (site, SIP address) it registers at
    queues: tuple[tuple[str, str], ...] = ()  # (site, queue) it is a member of


@dataclass
class PhoneStatus:
    seat: str
    mode: str = "free"
    registered: dict[str, float] = field(default_factory=dict)  # site → time of last 200 OK
    errors: dict[str, str] = field(default_factory=dict)  # site → last failure
    uas_pid: int = 0


def busy_scenario() -> str:
    """A phone that refuses every call with 486 Busy Here (and takes the ACK)."""
    return """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="pbxctl phone busy">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


def answer_scenario(stream: Path, *, ring_ms: int = RING_MS) -> str:
    """The agent phone of the tests (uas_agent.xml), ringing ``ring_ms`` before it answers,
    and sending RTP for the whole call like a real phone (``stream``: raw A-law, looped) —
    a phone that falls silent is hung up by the PBX's rtp_timeout."""
    text = scenario_path("uas_agent.xml").read_text(encoding="iso-8859-1")
    text = text.replace('<pause milliseconds="300"/>', f'<pause milliseconds="{ring_ms}"/>')
    return text.replace('<exec play_pcap_audio="[audio]"/>',
                        f'<exec rtp_stream="{stream},-1,8"/>')


def voice_file(folder: Path) -> Path:
    """One second of a quiet 440 Hz tone, raw A-law (sox), or A-law silence without sox."""
    out = folder / "voice.alaw"
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        made = subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw",
                               str(out), "synth", "1", "sine", "440", "vol", "0.3"],
                              capture_output=True, timeout=30, check=False)
        if made.returncode != 0:
            out.write_bytes(bytes([0xD5]) * 8000)
    return out


def register_scenario(seat: str, secret: str) -> str:
    """register.xml with the credentials inside (not on SIPp's argv) and Contact → :5060."""
    if not _SAFE_SECRET.match(secret):
        raise UsageError(f"the SIP secret of {seat} has characters a SIPp scenario cannot "
                         "carry", hint="regenerate it with `pbxctl provision secrets`")
    text = scenario_path("register.xml").read_text(encoding="iso-8859-1")
    text = text.replace("[authentication]",
                        f"[authentication username={seat} password={secret}]")
    return text.replace("Contact: <sip:[user]@[local_ip]:[local_port]>",
                        f"Contact: <sip:[user]@[local_ip]:{SIP_PORT}>")


class Keeper:
    """Keeps one phone node's phones registered and answering (runs in that namespace)."""

    def __init__(self, *, specs: list[PhoneSpec], workdir: Path, secrets: dict[str, str]
                 ) -> None:
        self.specs = {s.seat: s for s in specs}
        # SIPp's control socket binds every address of the namespace: two ports per phone.
        self.control = {s.seat: CONTROL_BASE + 2 * i for i, s in enumerate(specs)}
        self.workdir = workdir
        self.secrets = secrets
        self.status = {s.seat: PhoneStatus(seat=s.seat) for s in specs}
        self.uas: dict[str, SippProcess] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def control_file(self) -> Path:
        return self.workdir / "modes.json"

    @property
    def status_file(self) -> Path:
        return self.workdir / "status.json"

    def _scenarios(self, seat: str) -> dict[str, Path]:
        folder = self.workdir / seat
        folder.mkdir(parents=True, exist_ok=True)
        spec = self.specs[seat]
        out = {"register": folder / "register.xml", "busy": folder / "busy.xml",
               "answer": folder / "answer.xml"}
        atomic_write(out["register"], register_scenario(seat, self.secrets[seat]), mode=0o600)
        atomic_write(out["busy"], busy_scenario())
        if spec.kind == "county":  # answer, listen to the order, press 1: accepted
            atomic_write(out["answer"], dtmf_scenario(
                [(1500, "1")], pcap_dir=folder / "pcaps", head="uas", bye_timeout_ms=120000))
        else:
            atomic_write(out["answer"], answer_scenario(voice_file(self.workdir)))
        return out

    def register(self, seat: str) -> None:
        spec = self.specs[seat]
        scen = self.workdir / seat / "register.xml"
        for site, host in spec.registrars:
            sipp = SippProcess(scenario=scen, workdir=self.workdir / seat / f"reg-{site}",
                               local_ip=spec.address, local_port=REGISTER_FROM_PORT,
                               remote=(host, SIP_PORT), in_namespace=True,
                               keys={"user": seat, "expires": str(EXPIRES)}, timeout=8,
                               control_port=self.control[seat] + 1)
            try:
                res = sipp.run()
                ok = res.successful == 1
                err = "" if ok else (res.errors.strip().splitlines() or ["no 200 OK"])[-1]
            except Exception as exc:  # noqa: BLE001 -- one phone's failure is reported, not fatal
                ok, err = False, str(exc)
            with self._lock:
                st = self.status[seat]
                if ok:
                    st.registered[site] = time.time()
                    st.errors.pop(site, None)
                else:
                    st.errors[site] = err[-200:]

    def _start_uas(self, seat: str, mode: str) -> None:
        spec = self.specs[seat]
        old = self.uas.pop(seat, None)
        if old is not None:
            old.stop()
        scen = self.workdir / seat / ("busy.xml" if mode == "busy" else "answer.xml")
        uas = SippProcess(scenario=scen, workdir=self.workdir / seat / mode,
                          local_ip=spec.address, local_port=SIP_PORT, calls=10 ** 6,
                          timeout=999999, extra_args=("-aa",), in_namespace=True,
                          control_port=self.control[seat],
                          keys={"audio": str(pcap("g711a.pcap"))})
        uas.start()
        self.uas[seat] = uas
        with self._lock:
            self.status[seat].mode = mode
            self.status[seat].uas_pid = uas.pid or 0

    def _modes(self) -> dict[str, str]:
        try:
            data = json.loads(self.control_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return {k: v for k, v in data.items() if k in self.specs and v in MODES}

    def _write_status(self) -> None:
        with self._lock:
            data = {seat: asdict(st) for seat, st in self.status.items()}
        atomic_write(self.status_file, json.dumps(data, indent=1, sort_keys=True))

    def run(self) -> None:
        for seat in self.specs:
            self._scenarios(seat)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self.register, self.specs))
        modes = self._modes()
        for seat in self.specs:
            self._start_uas(seat, modes.get(seat, "free"))
        self._write_status()
        print(f"phones ready: {len(self.specs)}", flush=True)
        last_reg = time.monotonic()
        while not self._stop.wait(0.5):
            modes = self._modes()
            for seat, uas in list(self.uas.items()):
                want = modes.get(seat, "free")
                if want != self.status[seat].mode or not uas.running():
                    self._start_uas(seat, want)
            if time.monotonic() - last_reg > EXPIRES / 3:
                with ThreadPoolExecutor(max_workers=8) as pool:
                    list(pool.map(self.register, self.specs))
                last_reg = time.monotonic()
            self._write_status()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        for uas in self.uas.values():
            uas.stop()


def spec_file_data(specs: list[PhoneSpec], secrets: dict[str, str]) -> str:
    return json.dumps({"phones": [asdict(s) for s in specs], "secrets": secrets}, indent=1)


def load_spec_file(path: Path) -> tuple[list[PhoneSpec], dict[str, str]]:
    data = json.loads(path.read_text())
    specs = [PhoneSpec(**{**p, "registrars": tuple(tuple(r) for r in p["registrars"]),
                          "queues": tuple(tuple(q) for q in p["queues"])})
             for p in data["phones"]]
    return specs, dict(data["secrets"])


def read_status(workdir: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((workdir / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def write_mode(workdir: Path, seat: str, mode: str) -> None:
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    path = workdir / "modes.json"
    try:
        modes = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        modes = {}
    modes[seat] = mode
    atomic_write(path, json.dumps(modes, indent=1, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pbxctl.lab.phones")
    parser.add_argument("--spec", required=True, help="the phone node's spec file (0600)")
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args(argv)
    specs, secrets = load_spec_file(Path(args.spec))
    keeper = Keeper(specs=specs, workdir=Path(args.workdir), secrets=secrets)
    signal.signal(signal.SIGTERM, lambda *_: keeper.stop())
    signal.signal(signal.SIGINT, lambda *_: keeper.stop())
    try:
        keeper.run()
    finally:
        keeper.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())


DIAL_PORT = 5080  # a seat's phone places calls from here (its UAS keeps 5060)


def dial_process(spec: PhoneSpec, secret: str, *, number: str, registrar: str,
                 steps: list[tuple[int, str]], workdir: Path, netns: str,
                 bye_timeout_ms: int = 60000) -> SippProcess:
    """The seat's phone calls ``number`` at ``registrar`` (digest auth, credentials only in a
    0600 scenario file), presses ``steps`` and waits for the PBX to hang up."""
    if not _SAFE_SECRET.match(secret):
        raise UsageError(f"the SIP secret of {spec.seat} has characters a SIPp scenario "
                         "cannot carry")
    xml = dtmf_scenario(steps, pcap_dir=workdir / "pcaps", head="uac_auth",
                        bye_timeout_ms=bye_timeout_ms)
    xml = xml.replace("[authentication]",
                      f"[authentication username={spec.seat} password={secret}]")
    scenario = workdir / "dial.xml"
    atomic_write(scenario, xml, mode=0o600)
    return SippProcess(scenario=scenario, workdir=workdir, local_ip=spec.address,
                       local_port=DIAL_PORT, control_port=CONTROL_BASE - 1,
                       remote=(registrar, SIP_PORT), service=number, netns=netns,
                       timeout=bye_timeout_ms / 1000 + 30,
                       keys={"caller": spec.seat, "audio": str(pcap("g711a.pcap"))})
