"""Run SIPp scenarios with their own ports and parse the statistics SIPp itself reports."""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pbxctl.core.errors import ServiceStartError, WaitTimeout
from pbxctl.core.net import free_port, require_loopback
from pbxctl.core.procs import require_binary, spawn, stop_pid, tail
from pbxctl.lab.sandbox.netns import ns_exec

SIPP_HINT = "run `make setup` (as root) to install sip-tester"
PCAP_DIR = Path("/usr/share/sip-tester")


def scenario_path(name: str) -> Path:
    """A scenario shipped in pbxctl/lab/sipp/."""
    path = Path(str(resources.files("pbxctl.lab") / "sipp" / name))
    if not path.exists():
        raise FileNotFoundError(f"no SIPp scenario {name!r} in {path.parent}")
    return path


def pcap(name: str) -> Path:
    """One of SIPp's bundled pcaps (g711a.pcap, dtmf_2833_1.pcap, ...)."""
    path = PCAP_DIR / name
    if not path.exists():
        raise ServiceStartError(f"SIPp pcap {path} missing", hint=SIPP_HINT)
    return path


@dataclass(frozen=True)
class SippResult:
    exit_code: int
    successful: int
    failed: int
    retransmissions: int
    created: int
    stats: dict[str, str] = field(repr=False)
    errors: str = field(repr=False, default="")

    @property
    def all_ok(self) -> bool:
        return self.exit_code == 0 and self.failed == 0 and self.successful == self.created


def _parse_stats(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    if len(rows) < 2:
        return {}
    header, last = rows[0], rows[-1]
    return {k: v for k, v in zip(header, last, strict=False) if k}


class SippProcess:
    """One running SIPp. ``start()`` it, then ``wait()`` for its result or ``stop()`` it."""

    def __init__(
        self,
        *,
        scenario: Path,
        workdir: Path,
        local_ip: str = "127.0.0.1",
        remote: tuple[str, int] | None = None,
        service: str = "s",
        calls: int = 1,
        rate: float = 1.0,
        concurrent: int | None = None,
        keys: Mapping[str, str] | None = None,
        local_port: int | None = None,
        pause_ms: int | None = None,
        timeout: float = 60.0,
        extra_args: tuple[str, ...] = (),
        netns: str | None = None,
        in_namespace: bool = False,
        control_port: int | None = None,
    ) -> None:
        self.scenario = scenario
        self.workdir = workdir
        # In a lab namespace ports cannot be probed from here: SIP on local_port (default
        # 5060), media from 100 above it, control 50 above it.
        # ``in_namespace``: this process already runs inside one (the lab's phone keeper).
        self.netns = netns
        self.in_namespace = in_namespace
        # SIPp binds its control socket on every address: in one namespace each SIPp needs
        # its own (the default is local_port + 50).
        self.control_port = control_port
        self.local_ip = local_ip if netns or in_namespace else require_loopback(local_ip)
        self.remote = remote
        self.service = service
        self.calls = calls
        self.rate = rate
        self.concurrent = concurrent
        self.keys = dict(keys or {})
        self.local_port = local_port
        self.pause_ms = pause_ms
        self.timeout = timeout
        self.extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None
        self.stat_file = workdir / f"{scenario.stem}.stats.csv"
        self.err_file = workdir / f"{scenario.stem}.errors.log"
        self.out_file = workdir / f"{scenario.stem}.out"

    def argv(self) -> list[str]:
        sipp = require_binary("sipp", hint=SIPP_HINT)
        if self.netns or self.in_namespace:
            self.local_port = self.local_port or 5060
            media = self.local_port + 100  # media uses +2 too
            control = self.control_port or self.local_port + 50
        else:
            self.local_port = self.local_port or free_port(self.local_ip, kind="udp")
            media = free_port(self.local_ip, kind="udp")
            control = free_port(self.local_ip, kind="udp")
        args = [
            sipp, "-sf", str(self.scenario), "-i", self.local_ip, "-p", str(self.local_port),
            "-mi", self.local_ip, "-mp", str(media), "-cp", str(control),
            "-m", str(self.calls), "-r", f"{self.rate:g}", "-s", self.service,
            "-nostdin", "-trace_stat", "-stf", str(self.stat_file), "-fd", "1",
            "-trace_err", "-error_file", str(self.err_file),
            "-timeout", f"{self.timeout:g}s", "-timeout_error",
        ]
        if self.concurrent:
            args += ["-l", str(self.concurrent)]
        if self.pause_ms is not None:
            args += ["-d", str(self.pause_ms)]
        for key, value in sorted(self.keys.items()):
            args += ["-key", key, value]
        args += list(self.extra_args)
        if self.remote is not None:
            args.append(f"{self.remote[0]}:{self.remote[1]}")
        return [*ns_exec(self.netns), *args] if self.netns else args

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc = spawn(self.argv(), log_path=self.out_file, cwd=self.workdir)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def wait(self, *, timeout: float | None = None) -> SippResult:
        assert self._proc is not None, "start() first"
        limit = timeout if timeout is not None else self.timeout + 15
        try:
            code = self._proc.wait(timeout=limit)
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise WaitTimeout(f"SIPp {self.scenario.name} still running after {limit:g}s",
                              hint=f"see {self.out_file}") from exc
        return self._result(code)

    def _result(self, code: int) -> SippResult:
        if code in (255, 254) or code < 0:  # -1 / -2: fatal error, socket bind error
            raise ServiceStartError(f"SIPp failed to run (exit {code})",
                                    hint="a port may be taken; see " + str(self.out_file),
                                    detail=tail(self.out_file, 5))
        stats = _parse_stats(self.stat_file)

        def num(key: str) -> int:
            try:
                return int(stats.get(key, "0") or 0)
            except ValueError:
                return 0

        errors = self.err_file.read_text(errors="replace") if self.err_file.exists() else ""
        return SippResult(
            exit_code=code,
            successful=num("SuccessfulCall(C)"),
            failed=num("FailedCall(C)"),
            retransmissions=num("Retransmissions(C)"),
            created=num("TotalCallCreated"),
            stats=stats,
            errors=errors,
        )

    def run(self) -> SippResult:
        """Start, wait for the end (bounded), return SIPp's statistics; never left running."""
        self.start()
        try:
            return self.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            stop_pid(self._proc.pid, grace=3.0)
            self._proc.wait(timeout=5)
