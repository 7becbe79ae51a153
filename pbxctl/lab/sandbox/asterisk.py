"""A private Asterisk instance: own asterisk.conf, every writable dir under one root."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pbxctl.core.errors import (
    CommandFailed,
    MissingDependencyError,
    ServiceStartError,
    UsageError,
    WaitTimeout,
)
from pbxctl.core.files import atomic_write
from pbxctl.core.net import free_port, require_free, require_loopback
from pbxctl.core.procs import spawn, stop_pid, tail, wait_pid_gone
from pbxctl.lab.sandbox.netns import ns_exec
from pbxctl.pbx.ami import AmiEndpoint
from pbxctl.pbx.asterisk_modules import (
    QUIET_STUBS,
    modules_for,
    traits,
)
from pbxctl.pbx.engine import default_major

ASTERISK_HINT = "run `make setup` (as root) to install Asterisk"

_INDICATIONS = """[general]
country = us

[us]
description = United States
ringcadence = 2000,4000
dial = 350+440
busy = 480+620/500,0/500
ring = 440+480/2000,0/4000
congestion = 480+620/250,0/250
callwaiting = 440/300,0/10000
dialrecall = !350+440/100,!0/100,!350+440/100,!0/100,!350+440/100,!0/100,350+440
record = 1400/500,0/15000
info = !950/330,!1400/330,!1800/330,0
"""


@dataclass(frozen=True)
class AsteriskBinary:
    path: str
    moddir: str
    datadir: str
    major: int


def find_asterisk(major: int | None = None, *, path: str | None = None) -> AsteriskBinary:
    """Locate the Asterisk build for ``major`` (default: ``default_major()``): Debian 11's 16
    in /usr, pbxctl's 22 under /opt/pbxctl; ``path`` overrides the binary."""
    major = default_major() if major is None else major
    try:
        t = traits(major)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    hint = f"run {t.fix}"
    if path is not None:
        if not os.access(path, os.X_OK):
            raise MissingDependencyError(f"Asterisk binary {path} not found or not executable",
                                         hint=hint)
    elif not os.access(t.binary, os.X_OK):
        raise MissingDependencyError(f"Asterisk {major} not found at {t.binary}", hint=hint)
    else:
        path = t.binary
    if not Path(t.moddir, "chan_pjsip.so").exists():
        raise ServiceStartError(f"Asterisk {major} modules missing in {t.moddir}", hint=hint)
    return AsteriskBinary(path=path, moddir=t.moddir, datadir=t.datadir, major=major)


class AsteriskInstance:
    """One sandboxed Asterisk. Construct, then ``start()``; always ``stop()`` (or use ``with``).

    ``configs`` maps file name → text for the site (pjsip.conf, extensions.conf, ...). The
    instance always owns asterisk.conf (its directories live under ``root``); it writes
    modules.conf, logger.conf and manager.conf only when ``configs`` has none (a rendered site
    brings its own, and then ``ami`` must say where its manager listens). Empty stubs fill in
    the small files the core would otherwise complain about.
    """

    def __init__(
        self,
        *,
        name: str,
        root: Path,
        configs: Mapping[str, str],
        address: str = "127.0.0.1",
        ami_port: int | None = None,
        ami: AmiEndpoint | None = None,
        binary: AsteriskBinary | None = None,
        extra_modules: Sequence[str] = (),
        verbose_log: bool = False,
        netns: str | None = None,
    ) -> None:
        self.name = name
        self.root = root
        # In a network namespace the lab created, the site's own addresses are fine; in the
        # host's namespace only loopback ones are.
        self.netns = netns
        self.address = address if netns else require_loopback(address)
        self._configs = dict(configs)
        self._requested_ami_port = ami_port
        if "manager.conf" in configs and ami is None:
            raise ValueError("configs bring their own manager.conf: pass ami= to reach it")
        self._given_ami = ami
        self._binary = binary
        self._extra_modules = tuple(extra_modules)
        self._verbose_log = verbose_log
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.ami: AmiEndpoint | None = None

    # -- paths ----------------------------------------------------------------
    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def conf_path(self) -> Path:
        return self.etc / "asterisk.conf"

    @property
    def messages_log(self) -> Path:
        return self.root / "log" / "messages"

    @property
    def stdout_log(self) -> Path:
        return self.root / "asterisk.out"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    # -- lifecycle ------------------------------------------------------------
    def start(self, *, timeout: float = 30.0) -> None:
        binary = self._binary or find_asterisk()
        self._binary = binary
        if self._given_ami is not None:
            self.ami = self._given_ami
        else:
            ami_port = self._requested_ami_port or free_port(self.address)
            self.ami = AmiEndpoint(self.address, ami_port, "pbxctl", secrets.token_hex(16))
        if self.netns is None:
            require_free(self.ami.host, self.ami.port, what=f"Asterisk {self.name} AMI")
        self._write_configs(binary)
        argv = [binary.path, "-C", str(self.conf_path), "-f", "-n", "-g"]
        if self.netns is not None:  # `ip netns exec` execs: the PID stays Asterisk's
            argv = [*ns_exec(self.netns), *argv]
        self._proc = spawn(argv, log_path=self.stdout_log)
        self.pid = self._proc.pid
        try:
            self._wait_booted(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_booted(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ServiceStartError(
                    f"Asterisk {self.name} exited during boot (code {self._proc.returncode})",
                    hint="fix what its log names; logs under " + str(self.root / "log"),
                    detail=self._log_tail(),
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(
                    f"Asterisk {self.name} not fully booted after {timeout:g}s",
                    hint="see its log under " + str(self.root / "log"), detail=self._log_tail(),
                )
            try:
                self.cli("core waitfullybooted", timeout=min(left, 5.0))
            except (CommandFailed, WaitTimeout):
                time.sleep(0.05)
                continue
            # A failed `require` logs "ASTERISK EXITING" yet the console may still have answered
            # while the process winds down: insist on a live process that reports its version.
            if self._answers_version() and "ASTERISK EXITING" not in self._messages():
                return
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)

    def _answers_version(self) -> bool:
        try:
            return self.cli("core show version", timeout=5.0).startswith("Asterisk")
        except (CommandFailed, WaitTimeout):
            return False

    def _messages(self) -> str:
        try:
            return self.messages_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _log_tail(self) -> str:
        return tail(self.messages_log) + "\n" + tail(self.stdout_log, 5)

    def stop(self, *, timeout: float = 10.0) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(CommandFailed, WaitTimeout):
                self._cli_raw("core stop now", timeout=5.0)
            if not wait_pid_gone(pid, timeout=timeout):
                stop_pid(pid)
        elif self._proc is None:
            stop_pid(pid)
        if self._proc is not None:
            self._proc.wait(timeout=5.0)

    def __enter__(self) -> AsteriskInstance:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control --------------------------------------------------------------
    def cli(self, command: str, *, timeout: float = 10.0) -> str:
        """Run one CLI command over the remote console; returns its output."""
        if "\n" in command or "\r" in command:
            raise ValueError("a CLI command is one line")
        return self._cli_raw(command, timeout=timeout)

    def _cli_raw(self, command: str, *, timeout: float) -> str:
        assert self._binary is not None
        try:
            res = subprocess.run(
                [self._binary.path, "-C", str(self.conf_path), "-rx", command],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise WaitTimeout(f"asterisk -rx {command!r} did not answer in {timeout:g}s") from exc
        out = res.stdout.decode(errors="replace")
        if res.returncode != 0 or out.startswith("Unable to connect to remote asterisk"):
            raise CommandFailed(f"asterisk -rx {command!r} failed: {out.strip() or res.returncode}")
        return out

    def error_lines(self) -> list[str]:
        """ERROR lines Asterisk logged so far (a clean boot has none). A missing log is not
        "no errors": FileNotFoundError, so a logger that never wrote cannot pass for clean."""
        text = self.messages_log.read_text(errors="replace")
        if not re.search(r"\] Asterisk \S+ built by", text):  # the logger's opening banner
            raise CommandFailed(f"{self.messages_log} has no Asterisk banner: "
                                "the logger did not open its file")
        return [line for line in text.splitlines() if "ERROR[" in line]

    def version(self) -> str:
        """The version the running process reports (`core show version`), e.g. '22.10.1'."""
        out = self.cli("core show version", timeout=5.0)
        match = re.match(r"Asterisk (\S+)", out)
        if not match:
            raise CommandFailed(f"core show version answered {out.strip()[:80]!r}")
        return match.group(1)

    # -- config files ---------------------------------------------------------
    def _write_configs(self, binary: AsteriskBinary) -> None:
        for sub in ("etc", "lib", "db", "keys", "agi", "spool", "run", "log", "cache"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        files: dict[str, str] = {stub: "" for stub in QUIET_STUBS}
        files["indications.conf"] = _INDICATIONS
        files["modules.conf"] = self._modules_conf(binary.major)
        files["logger.conf"] = self._logger_conf()
        if self._given_ami is None:
            files["manager.conf"] = self._manager_conf()
        files.update(self._configs)
        files["asterisk.conf"] = self._asterisk_conf(binary)
        for name, text in sorted(files.items()):
            atomic_write(self.etc / name, text)

    def _asterisk_conf(self, binary: AsteriskBinary) -> str:
        r = self.root
        return (
            "[directories]\n"
            f"astetcdir => {r}/etc\n"
            f"astmoddir => {binary.moddir}\n"
            f"astvarlibdir => {r}/lib\n"
            f"astdbdir => {r}/db\n"
            f"astkeydir => {r}/keys\n"
            f"astdatadir => {binary.datadir}\n"
            f"astagidir => {r}/agi\n"
            f"astspooldir => {r}/spool\n"
            f"astrundir => {r}/run\n"
            f"astlogdir => {r}/log\n"
            f"astcachedir => {r}/cache\n"
            "\n[options]\n"
            "verbose = 0\n"
            "debug = 0\n"
            f"systemname = {self.name}\n"
            "documentation_language = en_US\n"
        )

    def _modules_conf(self, major: int) -> str:
        mods = modules_for(major) + self._extra_modules
        if "modules.conf" in self._configs and self._extra_modules:
            raise ValueError("extra_modules cannot be combined with a given modules.conf")
        # require = : a module that fails to load stops the boot instead of failing silently.
        lines = ["[modules]", "autoload = no"]
        lines += [f"require = {m}.so" for m in mods]
        return "\n".join(lines) + "\n"

    def _logger_conf(self) -> str:
        levels = "notice,warning,error" + (",verbose(3)" if self._verbose_log else "")
        return f"[general]\ndateformat = %F %T.%3q\n\n[logfiles]\nmessages => {levels}\n"

    def _manager_conf(self) -> str:
        assert self.ami is not None
        return (
            "[general]\n"
            "enabled = yes\n"
            f"bindaddr = {self.ami.host}\n"
            f"port = {self.ami.port}\n"
            "displayconnects = no\n"
            "timestampevents = yes\n"
            f"\n[{self.ami.username}]\n"
            f"secret = {self.ami.secret}\n"
            "deny = 0.0.0.0/0.0.0.0\n"
            "permit = 127.0.0.0/255.0.0.0\n"
            "read = all\n"
            "write = all\n"
            "writetimeout = 5000\n"
        )


def stop_by_pid(conf: str, pid: int, *, binary: str | None = None) -> None:
    """Stop an Asterisk this process no longer holds an instance for (a lab started by an
    earlier `pbxctl` run): ask it over its control socket, then signal it."""
    import shutil

    asterisk = binary or shutil.which("asterisk") or "/usr/sbin/asterisk"
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run([asterisk, "-C", conf, "-rx", "core stop now"], capture_output=True,
                       timeout=5, check=False)
    if not wait_pid_gone(pid, timeout=10):
        stop_pid(pid)
