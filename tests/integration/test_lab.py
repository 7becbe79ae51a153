"""`pbxctl lab up` / `lab down` in-process: a real call happens, nothing is left running."""

from __future__ import annotations

import io
import json
import os
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


def test_lab_up_places_a_real_call_and_lab_down_stops_everything(short_tmp: Path) -> None:
    environ = {**os.environ, "PBXCTL_LAB_DIR": str(short_tmp / "lab")}
    out, err = io.StringIO(), io.StringIO()
    code = main(["lab", "up", "--json"], environ=environ, stdout=out, stderr=err)
    state = json.loads(out.getvalue()) if code == 0 else {}
    try:
        assert code == 0, err.getvalue()
        call = state["calls"][0]
        assert call["sipp_successful"] == 1 and call["sipp_failed"] == 0
        assert call["branch"] == "central" and call["playback"] == "SUCCESS"
        assert call["agi_rows_in_db"] == 1
        pids = [state["pg"]["pid"], state["agi"]["pid"], *(a["pid"] for a in state["asterisk"])]
        assert all(pid_alive(p) for p in pids)
        again = main(["lab", "up"], environ=environ, stdout=io.StringIO(), stderr=err)
        assert again == 10 and "already up" in err.getvalue()
    finally:
        down = main(["lab", "down"], environ=environ, stdout=io.StringIO(), stderr=io.StringIO())
    assert down == 0
    assert not any(pid_alive(p) for p in pids)
    assert _procs_mentioning(str(short_tmp)) == []


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
    state = json.loads((lab / "lab.json").read_text())  # kept for inspection
    assert state["pg"]["pid"] and not pid_alive(state["pg"]["pid"])
    assert not pid_alive(state["agi"]["pid"])
    assert _procs_mentioning(str(lab)) == []
    assert _run(["lab", "down"], environ)[0] == 0
