"""The AGI call log, written off the call path by one thread through a bounded queue.

It is an operational log, not a record that must survive: when the database is down the
entries wait in the queue (bounded), and past that they are counted as dropped. Recordings,
CDRs and work orders have their own spooling (never dropped).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

from pbxctl.core.errors import StoreUnavailable
from pbxctl.data.rejects import quarantine
from pbxctl.data.store import Store

log = logging.getLogger("pbxctl.agi")


@dataclass(frozen=True)
class Entry:
    uniqueid: str
    route: str
    dnid: str
    caller: str
    outcome: str


class CallLog:
    def __init__(self, *, store: Store, maxsize: int = 10000) -> None:
        self._store = store
        self._q: queue.Queue[Entry | None] = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0
        self.rejected = 0
        self._alerted = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="call-log", daemon=True)
        self._thread.start()

    def record(self, entry: Entry) -> None:
        try:
            self._q.put_nowait(entry)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        pending: Entry | None = None
        while True:
            if pending is None:
                pending = self._q.get()
                if pending is None:
                    return
            entry = pending
            try:
                self._store.record_agi_call(uniqueid=entry.uniqueid, route=entry.route,
                                            dnid=entry.dnid, caller=entry.caller,
                                            outcome=entry.outcome)
                self.written += 1
                pending = None
            except StoreUnavailable:
                # Keep the entry and wait; the store's own back-off bounds the retry rate.
                threading.Event().wait(1.0)
            except Exception as exc:  # noqa: BLE001 -- one bad entry must not end the writer
                self._reject(entry, exc)
                pending = None

    def _reject(self, entry: Entry, exc: Exception) -> None:
        self.rejected += 1
        reason = f"{type(exc).__name__}: {exc}"
        if not self._alerted:  # alert once; every reject is in rejected_records
            log.error("call log: an entry was refused and quarantined (%s); later ones are "
                      "counted in rejected_records only", reason)
            self._alerted = True
        try:
            quarantine(self._store, source="call-log", reason=reason, record=entry)
        except Exception as again:  # noqa: BLE001 -- the quarantine is best effort; go on
            log.warning("call log: quarantine failed too (%s)", type(again).__name__)

    def close(self, *, timeout: float = 5.0) -> None:
        """Flush what the database takes within ``timeout``, then stop."""
        if self._thread is None:
            return
        try:
            self._q.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout=timeout)
