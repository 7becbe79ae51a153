"""The survivability watcher keeps only the events it waits for, in a bounded buffer: a day of
a busy gateway's AMI events (fast-forwarded through the AMI stand-in, see tests/fakes) leaves
its memory flat. 200,000 events here; bench/ami_soak.py runs the full 10^6 and reports RSS."""

from __future__ import annotations

import threading
from pathlib import Path

from pbxctl.core.procs import wait_until
from pbxctl.pbx.ami import AmiClient
from pbxctl.services.survivability import ModeMachine, Switch, watch
from tests.fakes.fake_ami import FakeAmi

EVENTS = 200_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def soak(events: int) -> tuple[float, float, int]:
    """(RSS before, RSS after, ContactStatus events the watcher took in)."""
    ami = FakeAmi(events=events)
    ami.start()
    client = AmiClient(host="127.0.0.1", port=ami.port, username="u", secret="s")
    client.connect()
    stop = threading.Event()
    machine = ModeMachine(hold_down=5.0)
    seen = {"n": 0}
    b_down = threading.Event()
    observe = machine.observe

    def counting(aor: str, up: bool, now: float) -> Switch | None:
        seen["n"] += 1
        if aor == "province-b" and not up:
            b_down.set()
        return observe(aor, up, now)

    machine.observe = counting  # type: ignore[method-assign]  # count what it acts on
    before = rss_mb()
    runner = threading.Thread(target=watch, args=(client, machine), kwargs={"stop": stop},
                              daemon=True)
    runner.start()
    try:
        wait_until(ami.sent.is_set, timeout=600, what="the stand-in to send every event")
        wait_until(b_down.is_set, timeout=120,
                   what="the watcher to take in the last event (path B down)")
        after = rss_mb()
    finally:
        stop.set()
        runner.join(timeout=10)
        client.close()
        ami.close()
    return before, after, seen["n"]


def test_a_day_of_events_leaves_the_watcher_flat() -> None:
    before, after, contact_events = soak(EVENTS)
    print(f"\nwatcher RSS {before:.1f} MB → {after:.1f} MB after {EVENTS:,} events "
          f"({contact_events:,} ContactStatus taken in; the rest overflowed and were resynced)")
    assert contact_events >= 3  # the first look at both paths, and the last event at least
    assert after - before < 25, (before, after)
