"""A private Asterisk boots, answers CLI and AMI, refuses bad starts loudly, stops by PID."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pbxctl.core.errors import CommandFailed, PortInUseError, ServiceStartError
from pbxctl.core.procs import pid_alive
from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.pbx.ami import AmiClient
from pbxctl.pbx.engine import default_major

pytestmark = pytest.mark.asterisk

MINIMAL = {"extensions.conf": "[default]\nexten => s,1,NoOp()\n"}


def test_a_logger_that_wrote_nothing_is_not_a_clean_boot(short_tmp: Path) -> None:
    ast = AsteriskInstance(name="t0", root=short_tmp / "a",
                           configs={**MINIMAL, "logger.conf": "[logfiles]\n"})
    ast.start()
    try:
        with pytest.raises((FileNotFoundError, CommandFailed)):
            ast.error_lines()
    finally:
        ast.stop()


def test_boots_clean_and_answers_cli_and_ami(short_tmp: Path) -> None:
    ast = AsteriskInstance(name="t1", root=short_tmp / "a", configs=MINIMAL)
    ast.start()
    try:
        assert ast.error_lines() == []
        assert ast.version().split(".")[0] == str(default_major())
        assert "s" in ast.cli("dialplan show default")
        assert ast.ami is not None
        with AmiClient(host=ast.ami.host, port=ast.ami.port, username=ast.ami.username,
                       secret=ast.ami.secret) as ami:
            lines = ami.command("core show version")
            assert any(f"Asterisk {default_major()}." in line for line in lines)
            reply = ami.action("CoreShowChannels")
            assert reply.ok and reply.events[-1]["Event"] == "CoreShowChannelsComplete"
        pid = ast.pid
        assert pid is not None
    finally:
        ast.stop()
    assert not pid_alive(pid)


def test_every_path_is_under_the_root(short_tmp: Path) -> None:
    ast = AsteriskInstance(name="t2", root=short_tmp / "b", configs=MINIMAL)
    ast.start()
    try:
        conf = ast.conf_path.read_text()
        for key in ("astetcdir", "astvarlibdir", "astdbdir", "astspooldir", "astrundir",
                    "astlogdir"):
            line = next(ln for ln in conf.splitlines() if ln.startswith(key))
            assert str(short_tmp / "b") in line
        assert (short_tmp / "b" / "run" / "asterisk.ctl").exists()
    finally:
        ast.stop()


def test_boot_failure_raises_with_log_tail_not_a_hang(short_tmp: Path) -> None:
    ast = AsteriskInstance(name="bad", root=short_tmp / "c", configs=MINIMAL,
                           extra_modules=("no_such_module_pbxctl",))
    # A long boot timeout: "exited during boot" can only come from noticing the process
    # died; a start that hung until its timeout would say "not fully booted" instead.
    with pytest.raises(ServiceStartError) as exc:
        ast.start(timeout=120)
    assert "exited during boot" in str(exc.value)
    assert "\n" not in str(exc.value)  # one line; the log tail is the detail
    assert "no_such_module_pbxctl" in exc.value.detail  # the log tail names the culprit
    assert ast.pid is None


def test_occupied_ami_port_is_refused_before_start(short_tmp: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        ast = AsteriskInstance(name="busy", root=short_tmp / "d", configs=MINIMAL, ami_port=port)
        with pytest.raises(PortInUseError, match="AMI"):
            ast.start()
        assert ast.pid is None
