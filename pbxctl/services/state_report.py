"""Tells the province what a gateway's survivability watcher knows: its prefecture's mode
(central / survivable, since when) and whether the province answers on path A and B.

The watcher's own duty (switching calls to the LSS) must never wait on this: the watcher
only hands over its latest state (``offer``, no I/O); a thread of its own writes it to the
province's database on every change and at least every ``every`` seconds. While the WAN is cut
the writes fail (bounded by the store's timeouts) and are retried; the wallboard, seeing the
report age, shows the prefecture as not heard from.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from pbxctl.core.errors import StoreUnavailable
from pbxctl.data.site_states import report
from pbxctl.data.store import Store

log = logging.getLogger("pbxctl.services.state_report")


@dataclass(frozen=True)
class WatchedState:
    mode: str
    since: datetime
    path_a: bool
    path_b: bool


def state_of(mode: str, reachable: dict[str, bool], switched_at: float | None, *,
             started_wall: float, now_mono: float, now_wall: float) -> WatchedState:
    """The watcher's machine as a report: ``switched_at`` is the monotonic time of its last
    switch (None: none since it started at ``started_wall``)."""
    since = started_wall if switched_at is None else now_wall - (now_mono - switched_at)
    return WatchedState(mode, datetime.fromtimestamp(round(since, 3), tz=UTC),
                        reachable.get("province-a", False), reachable.get("province-b", False))


class StateReporter:
    def __init__(self, store: Store, *, site: str, prefecture: str, every: float = 5.0) -> None:
        self.store, self.site, self.prefecture, self.every = store, site, prefecture, every
        self._latest: WatchedState | None = None
        self._written: WatchedState | None = None
        self._changed = threading.Event()
        self.failures = 0

    def offer(self, state: WatchedState) -> None:
        """The watcher's latest state (cheap; called on every loop of the watcher)."""
        if state != self._latest:
            self._latest = state
            self._changed.set()

    def wake(self) -> None:
        """End the current wait (after setting ``stop``: the thread ends at once)."""
        self._changed.set()

    def run(self, stop: threading.Event) -> None:
        """Write until ``stop``: on a change at once, otherwise every ``every`` s."""
        while not stop.is_set():
            self._changed.wait(self.every)
            self._changed.clear()
            if stop.is_set():
                return
            state = self._latest
            if state is None:
                continue
            try:
                report(self.store, site=self.site, prefecture=self.prefecture,
                       mode=state.mode, since=state.since, path_a=state.path_a,
                       path_b=state.path_b)
                if self.failures:
                    log.info("reporting to the province again (%d failed writes)",
                             self.failures)
                self.failures = 0
                self._written = state
            except StoreUnavailable as exc:
                if not self.failures:
                    log.warning("cannot report the mode to the province: %s", exc.message)
                self.failures += 1  # tried again after ``every`` s (or the next change)

    @property
    def written(self) -> WatchedState | None:
        return self._written
