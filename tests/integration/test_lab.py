"""`pbxctl lab up` / `lab down` in-process: a real call happens, nothing is left running."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from pbxctl.cli import main
from pbxctl.procs import pid_alive

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
