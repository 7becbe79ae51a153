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
            try:
                self._store.record_agi_call(uniqueid=pending.uniqueid, route=pending.route,
                                            dnid=pending.dnid, caller=pending.caller,
                                            outcome=pending.outcome)
                self.written += 1
                pending = None
            except StoreUnavailable:
                # Keep the entry and wait; the store's own back-off bounds the retry rate.
                threading.Event().wait(1.0)

    def close(self, *, timeout: float = 5.0) -> None:
        """Flush what the database takes within ``timeout``, then stop."""
        if self._thread is None:
            return
        try:
            self._q.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout=timeout)
