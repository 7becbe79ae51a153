"""Starting a batch of lab daemons (real processes): all spawned before any is waited on, a
failure stops the whole batch and names the daemon; and which prefectures `lab up` picks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pbxctl.core.errors import ServiceStartError, WaitTimeout
from pbxctl.core.procs import pid_alive, stop_pid
from pbxctl.lab import lifecycle
from pbxctl.lab.daemons import Daemon, start_daemons


def _daemon(tmp: Path, key: str, script: str, *, timeout: float = 20.0) -> Daemon:
    return Daemon(key, [sys.executable, "-c", script], tmp / f"{key}.log", "ready",
                  f"test daemon {key}", timeout=timeout)


# Each daemon is ready only once every daemon of the batch has been spawned (it waits for
# the others' "spawned" files): started one after the other, the first would never be ready.
WAITS_FOR_ALL = """
import pathlib, sys, time
me, everyone = pathlib.Path(sys.argv[1]), sys.argv[2:]
me.touch()
while not all(pathlib.Path(p).exists() for p in everyone):
    time.sleep(0.02)
print("ready", flush=True)
time.sleep(600)
"""


def test_every_daemon_of_a_batch_is_spawned_before_any_is_waited_on(tmp_path: Path) -> None:
    flags = [str(tmp_path / f"spawned-{i}") for i in range(4)]
    batch = [Daemon(f"d{i}", [sys.executable, "-c", WAITS_FOR_ALL, flags[i], *flags],
                    tmp_path / f"d{i}.log", "ready", f"daemon {i}", timeout=30)
             for i in range(4)]
    started = start_daemons(batch)
    try:
        assert sorted(started) == ["d0", "d1", "d2", "d3"]
        assert all(pid_alive(info["pid"]) for info in started.values())
        assert started["d2"]["log"] == str(tmp_path / "d2.log")
    finally:
        for info in started.values():
            stop_pid(info["pid"])


def test_one_daemon_exiting_stops_the_batch_and_is_named(tmp_path: Path) -> None:
    token = f"batch-{tmp_path.name}"  # finds the good daemon in /proc afterwards
    alive = _daemon(tmp_path, "good", f"import time; '{token}'; print('ready', flush=True); "
                                      "time.sleep(600)")
    dies = _daemon(tmp_path, "bad", "import sys; print('no config here'); sys.exit(3)")
    with pytest.raises(ServiceStartError) as err:
        start_daemons([alive, dies])
    assert err.value.message == "test daemon bad: exited"
    assert "no config here" in (err.value.detail or "")
    assert (tmp_path / "good.log").exists()  # it was spawned …
    assert not _running_with(token)  # … and stopped with its batch


def test_a_daemon_that_never_gets_ready_times_out_by_name(tmp_path: Path) -> None:
    mute = _daemon(tmp_path, "mute", "import os, time; print(os.getpid(), flush=True); "
                                     "time.sleep(600)", timeout=1.0)
    with pytest.raises(WaitTimeout, match="waiting for test daemon mute"):
        start_daemons([mute])
    [pid] = _pids_logged(tmp_path)
    assert not pid_alive(int(pid))


def _running_with(token: str) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if token.encode() in (proc / "cmdline").read_bytes() and pid_alive(int(proc.name)):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _pids_logged(tmp: Path) -> list[str]:
    return [w for log in tmp.glob("*.log") for w in log.read_text().split() if w.isdigit()]


@pytest.mark.parametrize(("inventory", "asked", "expected"), [
    (None, None, ["HZ", "NB"]),  # the shipped example: two prefectures by default
    (None, "all", None),  # … every one when asked (None: all of the inventory)
    (None, "WZ", ["WZ"]),
    ("given", None, None),  # an operator's inventory: all of it by default
    ("given", "all", None),
])
def test_which_prefectures_lab_up_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         inventory: str | None, asked: str | None,
                                         expected: list[str] | None) -> None:
    """Only the argument plumbing: netlab_up (the namespaces, PBXs, …) is replaced here; the
    lab itself runs in integration/test_province_lab.py."""
    from pbxctl.lab import netlab

    seen: dict[str, Any] = {}

    def fake_up(root: Path, inv: Path, **kw: Any) -> None:
        seen.update(kw, inventory=inv)

    monkeypatch.setattr(netlab, "netlab_up", fake_up)
    inv = tmp_path / "province.yaml" if inventory else None
    lifecycle.lab_up(tmp_path / "lab", progress=lambda _m: None, inventory=inv,
                     prefectures=asked.split(",") if asked else None)
    assert seen["prefectures"] == expected
    assert seen["inventory"] == (inv or lifecycle.example_inventory())
