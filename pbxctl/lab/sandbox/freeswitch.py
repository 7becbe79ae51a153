"""A private FreeSWITCH for tests and the lab: its own conf/log/db/run/… directories, free ports,
ready when the event socket accepts **and** the SIP profile is RUNNING; stopped with SIGTERM and
a bounded wait, then SIGKILL. Built by scripts/build-freeswitch.sh (`make setup`)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import quoteattr

from pbxctl.core.errors import MissingDependencyError, ServiceStartError, WaitTimeout
from pbxctl.core.files import atomic_write
from pbxctl.core.net import free_port, require_loopback
from pbxctl.core.procs import spawn, stop_pid, tail, wait_pid_gone
from pbxctl.pbx import freeswitch_show as show
from pbxctl.pbx.esl_inbound import InboundEsl
from pbxctl.pbx.freeswitch_modules import FS_PREFIX, MODULES

DIRS = ("conf", "log", "db", "run", "certs", "cache", "storage", "recordings", "temp", "sounds")
PROFILE = "lab"


def find_freeswitch(prefix: Path = FS_PREFIX) -> Path:
    binary = prefix / "bin" / "freeswitch"
    if not binary.is_file() or not (prefix / ".pbxctl-build").is_file():
        raise MissingDependencyError(f"no FreeSWITCH build at {prefix}",
                                     hint="run `make setup` (scripts/build-freeswitch.sh)")
    return binary


def minimal_config(*, address: str, sip_port: int, esl_port: int, esl_password: str,
                   rtp_ports: tuple[int, int], log_dir: Path) -> str:
    """freeswitch.xml of a lab instance: the modules pbxctl uses, one SIP profile, an event
    socket on loopback, and a `public` context that answers with a tone."""
    q = quoteattr
    mods = "\n".join(f"        <load module={q(m)}/>" for m in MODULES)
    return f"""<?xml version="1.0"?>
<document type="freeswitch/xml">
  <section name="configuration" description="pbxctl lab">
    <configuration name="switch.conf" description="core">
      <settings>
        <param name="rtp-start-port" value="{rtp_ports[0]}"/>
        <param name="rtp-end-port" value="{rtp_ports[1]}"/>
        <param name="max-sessions" value="1000"/>
      </settings>
    </configuration>
    <configuration name="modules.conf" description="modules">
      <modules>
{mods}
      </modules>
    </configuration>
    <configuration name="console.conf" description="console"><settings/></configuration>
    <configuration name="logfile.conf" description="log file">
      <settings><param name="rotate-on-hup" value="true"/></settings>
      <profiles><profile name="default"><settings>
        <param name="logfile" value={q(str(log_dir / "freeswitch.log"))}/>
      </settings><mappings><map name="all" value="info,notice,warning,err,crit,alert"/></mappings>
      </profile></profiles>
    </configuration>
    <configuration name="event_socket.conf" description="event socket">
      <settings>
        <param name="listen-ip" value={q(address)}/>
        <param name="listen-port" value="{esl_port}"/>
        <param name="password" value={q(esl_password)}/>
        <param name="apply-inbound-acl" value="loopback.auto"/>
      </settings>
    </configuration>
    <configuration name="callcenter.conf" description="queues"><settings/><queues/></configuration>
    <configuration name="db.conf" description="db"><settings/></configuration>
    <configuration name="hash.conf" description="hash"><remotes/></configuration>
    <configuration name="spandsp.conf" description="spandsp"/>
    <configuration name="opus.conf" description="opus"><settings/></configuration>
    <configuration name="sofia.conf" description="SIP">
      <global_settings><param name="log-level" value="0"/></global_settings>
      <profiles>
        <profile name="{PROFILE}">
          <settings>
            <param name="sip-ip" value={q(address)}/>
            <param name="rtp-ip" value={q(address)}/>
            <param name="ext-sip-ip" value={q(address)}/>
            <param name="ext-rtp-ip" value={q(address)}/>
            <param name="sip-port" value="{sip_port}"/>
            <param name="context" value="public"/>
            <param name="dialplan" value="XML"/>
            <param name="codec-prefs" value="PCMA,PCMU"/>
            <param name="auth-calls" value="false"/>
            <param name="inbound-codec-negotiation" value="generous"/>
          </settings>
        </profile>
      </profiles>
    </configuration>
  </section>
  <section name="dialplan" description="lab">
    <context name="public">
      <extension name="tone">
        <condition field="destination_number" expression="^.+$">
          <action application="answer"/>
          <action application="playback" data="tone_stream://%(500,500,440);loops=20"/>
          <action application="hangup"/>
        </condition>
      </extension>
    </context>
  </section>
</document>
"""


class FreeSwitchInstance:
    """``start()`` boots it (bounded); ``stop()`` ends it. No I/O in the constructor."""

    def __init__(self, *, name: str, root: Path, address: str = "127.0.0.1",
                 binary: Path | None = None, config: str | None = None,
                 site_files: Mapping[str, str] | None = None, esl_port: int = 0,
                 esl_password: str = "", profiles: tuple[str, ...] = (PROFILE,)) -> None:
        """``site_files``: a rendered site (freeswitch.xml and the files it takes in), run as
        rendered — its addresses, ports and event-socket password (give the same
        ``esl_port``/``esl_password``); else the minimal one-profile lab config."""
        self.name, self.root, self.address = name, root, address
        self.binary = binary
        self.config = config
        self.site_files = dict(site_files) if site_files is not None else None
        self.sip_port, self.esl_port = 0, esl_port
        self.esl_password = esl_password or secrets.token_hex(12)
        self.profiles = profiles
        self.pid: int | None = None

    def esl(self, *, timeout: float = 5.0) -> InboundEsl:
        # From its own address: a rendered site's event socket admits the CTI and itself.
        return InboundEsl(host=self.address, port=self.esl_port, password=self.esl_password,
                          timeout=timeout, source=self.address)

    def start(self, *, timeout: float = 30.0) -> None:
        require_loopback(self.address)
        binary = self.binary or find_freeswitch()
        for d in DIRS:
            (self.root / d).mkdir(parents=True, exist_ok=True)
        if self.site_files is not None:
            for fname, text in self.site_files.items():
                atomic_write(self.root / "conf" / fname, text, mode=0o600)
        else:
            self.sip_port = free_port(self.address, kind="udp")
            self.esl_port = free_port(self.address)
            rtp = free_port(self.address, kind="udp")
            conf = self.config or minimal_config(
                address=self.address, sip_port=self.sip_port, esl_port=self.esl_port,
                esl_password=self.esl_password, rtp_ports=(rtp, rtp + 100),
                log_dir=self.root / "log")
            atomic_write(self.root / "conf" / "freeswitch.xml", conf, mode=0o600)
        # -nc alone forks away (the PID would be lost): -nf -nc keeps it in the foreground
        # without a console; every directory flag, or it writes under the build's prefix.
        argv = [str(binary), "-nf", "-nc", "-nonat", *(x for d in DIRS if d != "sounds"
                                                       for x in (f"-{d}", str(self.root / d))),
                "-sounds", str(self.root / "sounds")]
        proc = spawn(argv, log_path=self.root / "log" / "stdout.log")
        self.pid = proc.pid
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.pid is not None and wait_pid_gone(self.pid, timeout=0):
                raise ServiceStartError(f"FreeSWITCH {self.name} exited at start",
                                        detail=tail(self.root / "log" / "freeswitch.log"))
            try:
                with self.esl(timeout=2.0) as esl:
                    last = esl.api("sofia status")
                    if set(self.profiles) <= set(show.profiles(last)):
                        return
            except (ServiceStartError, WaitTimeout) as exc:
                last = exc.message
            except Exception as exc:  # noqa: BLE001 -- not up yet: socket half-open, refused
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        raise WaitTimeout(f"FreeSWITCH {self.name} not ready within {timeout:g}s ({last[:120]})",
                          detail=tail(self.root / "log" / "freeswitch.log"))

    def stop(self, *, grace: float = 10.0) -> None:
        if self.pid is not None:
            stop_pid(self.pid, grace=grace)
            self.pid = None

    def gateway_up(self, name: str) -> bool:
        """Whether sofia's ping says the trunk ``name`` is UP (``sofia status gateway``)."""
        with self.esl() as esl:
            return any(line.split() == ["Status", "UP"]
                       for line in esl.api(f"sofia status gateway {name}").splitlines())

    def log_lines(self, level: str = "ERR") -> list[str]:
        """Lines of the instance's log at ``level`` (FreeSWITCH writes ``[ERR]``, ``[CRIT]``)."""
        try:
            text = (self.root / "log" / "freeswitch.log").read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if f"[{level}]" in line]
