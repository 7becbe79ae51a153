"""`pbxctl lab up` failing cleanly: one line, and nothing left half-started. (The lab that
comes up — the whole province, its tour and `lab call` — is test_province_lab.py.)"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from pbxctl.cli import main
from pbxctl.core.procs import pid_alive

pytestmark = [pytest.mark.lab, pytest.mark.asterisk, pytest.mark.pg, pytest.mark.sipp]


def _procs_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            found.append(f"{entry.name}: {cmd}")
    return found


def _run(argv: list[str], environ: dict[str, str]) -> tuple[int, str]:
    err = io.StringIO()
    code = main(argv, environ=environ, stdout=io.StringIO(), stderr=err)
    return code, err.getvalue()


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("pbxctl: error:")]


def test_missing_asterisk_is_one_line_with_the_fix(short_tmp: Path) -> None:
    environ = {"PBXCTL_LAB_DIR": str(short_tmp / "lab"),
               "PBXCTL_ASTERISK_BIN": str(short_tmp / "no-asterisk")}
    code, err = _run(["lab", "up"], environ)
    assert code == 4
    assert _error_lines(err) == [f"pbxctl: error: Asterisk binary {short_tmp}/no-asterisk not "
                                 "found or not executable"]
    assert "make setup" in err and "Traceback" not in err


def test_asterisk_that_dies_at_boot_fails_lab_up_and_stops_the_rest(short_tmp: Path) -> None:
    # An installed-but-broken Asterisk: the binary runs and exits at once.
    broken = short_tmp / "asterisk"
    broken.write_text("#!/bin/sh\necho 'broken install' >&2\nexit 1\n")
    broken.chmod(0o755)
    lab = short_tmp / "lab"
    environ = {"PBXCTL_LAB_DIR": str(lab), "PBXCTL_ASTERISK_BIN": str(broken)}
    code, err = _run(["lab", "up"], environ)
    assert code == 6, err
    assert len(_error_lines(err)) == 1 and "exited during boot" in err
    assert "broken install" in err  # the tail of its output, as detail lines
    state = json.loads((lab / "lab.json").read_text())["netns"]  # kept for inspection
    # It got as far as the first PBX: the database and the uplink keepers had started.
    assert state["pg"]["pid"] and not pid_alive(state["pg"]["pid"])
    assert state["uplinks"] and not any(pid_alive(u["pid"]) for u in state["uplinks"].values())
    assert _procs_mentioning(str(lab)) == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True).stdout
    assert f"pbx{state['tag']}-" not in netns
    assert _run(["lab", "down"], environ)[0] == 0
