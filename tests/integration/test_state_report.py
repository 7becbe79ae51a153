"""The survivability watcher's report to the province (the wallboard's mode and path columns):
written at once on a change, never blocking the watcher, retried while the database is away,
and read back per prefecture with its age."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from pbxctl.core.procs import wait_until
from pbxctl.data import site_states
from pbxctl.data.store import Store, StoreConfig
from pbxctl.services.state_report import StateReporter, WatchedState, state_of

pytestmark = pytest.mark.pg

T0 = datetime(2026, 12, 4, 1, 2, 3, tzinfo=UTC)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    ev = threading.Event()
    yield ev
    ev.set()


def _start(rep: StateReporter, stop: threading.Event) -> threading.Thread:
    t = threading.Thread(target=rep.run, args=(stop,), daemon=True)
    t.start()
    return t


def test_each_change_reaches_the_province_and_reads_back(fresh_db: Store,
                                                         stop: threading.Event) -> None:
    rep = StateReporter(fresh_db, site="hz-gw", prefecture="HZ", every=30.0)
    thread = _start(rep, stop)
    rep.offer(WatchedState("central", T0, True, True))
    wait_until(lambda: "HZ" in site_states.latest(fresh_db), timeout=10, what="the report")
    rep.offer(WatchedState("survivable", T0.replace(minute=9), False, False))
    wait_until(lambda: site_states.latest(fresh_db)["HZ"].mode == "survivable", timeout=10,
               what="the switch")  # at once: not after the 30 s heartbeat
    got = site_states.latest(fresh_db)["HZ"]
    assert (got.site, got.since, got.path_a, got.path_b) == ("hz-gw", T0.replace(minute=9),
                                                             False, False)
    assert 0 <= got.age_s < 10
    stop.set()
    rep.wake()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_database_that_is_away_never_blocks_the_watcher(stop: threading.Event) -> None:
    dead = Store(config=StoreConfig(conninfo="host=127.0.0.1 port=1 dbname=x connect_timeout=1",
                                    min_size=0, max_size=1, connect_timeout=1.0))
    dead.open(wait=False)
    try:
        rep = StateReporter(dead, site="hz-gw", prefecture="HZ", every=0.2)
        _start(rep, stop)
        for i in range(1000):  # the watcher's loop: offering never waits on the database
            rep.offer(WatchedState("central" if i % 2 else "survivable", T0, True, i % 3 == 0))
        wait_until(lambda: rep.failures >= 2, timeout=15, what="failed, retried writes")
        assert rep.written is None
    finally:
        stop.set()
        dead.close()


def test_the_state_names_when_the_mode_began() -> None:
    # The machine switched 90 s ago by its monotonic clock: since = wall now − 90 s.
    s = state_of("survivable", {"province-a": False, "province-b": True}, 1000.0,
                 started_wall=0.0, now_mono=1090.0, now_wall=T0.timestamp())
    assert (s.mode, s.path_a, s.path_b) == ("survivable", False, True)
    assert s.since == datetime.fromtimestamp(T0.timestamp() - 90, tz=UTC)
    never = state_of("central", {}, None, started_wall=T0.timestamp(), now_mono=5.0,
                     now_wall=T0.timestamp() + 5)
    assert never.since == T0 and (never.path_a, never.path_b) == (False, False)
