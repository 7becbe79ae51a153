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
    """(RSS before, RSS after, ContactStatus events the watcher saw)."""
    ami = FakeAmi(events=events)
    ami.start()
    client = AmiClient(host="127.0.0.1", port=ami.port, username="u", secret="s")
    client.connect()
    stop = threading.Event()
    machine = ModeMachine(hold_down=5.0)
    seen = {"n": 0}
    observe = machine.observe

    def counting(aor: str, up: bool, now: float) -> Switch | None:
        seen["n"] += 1
        return observe(aor, up, now)

    machine.observe = counting  # type: ignore[method-assign]  # count what it acts on
    before = rss_mb()
    runner = threading.Thread(target=watch, args=(client, machine), kwargs={"stop": stop},
                              daemon=True)
    runner.start()
    try:
        wait_until(ami.sent.is_set, timeout=600, what="the stand-in to send every event")
        wait_until(lambda: seen["n"] >= events // 10 + 2, timeout=120,
                   what="the watcher to see every ContactStatus")
        after = rss_mb()
    finally:
        stop.set()
        runner.join(timeout=10)
        client.close()
        ami.close()
    return before, after, seen["n"]


def test_a_day_of_events_leaves_the_watcher_flat() -> None:
    before, after, contact_events = soak(EVENTS)
    print(f"\nwatcher RSS {before:.1f} MB → {after:.1f} MB after {EVENTS:,} events")
    assert contact_events == EVENTS // 10 + 2  # and the two of the first `pjsip show contacts`
    assert after - before < 25, (before, after)
