"""Live work-order changes for open screens: one LISTEN connection per console process,
fanned out to each open event stream.

PostgreSQL sends a notice per created order and per status change (the trigger of migration
8) at commit, whoever made the change: a screen, `*9` on a phone, the CLI, the dispatcher. A
notice is only a pointer (id, prefecture, county, status, version); the screen fetches the row
through a scope-checked request.

Nothing is missed silently: when the LISTEN connection is lost (or a slow screen's queue
overflows), notices in between are gone, so every stream is told ``resync`` once the
connection is back, and the screen reloads its list.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

log = logging.getLogger("pbxctl.console.live")
CHANNEL = "pbxctl_work_orders"
RESYNC: dict[str, Any] = {"kind": "resync"}


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=256))
    overflowed: bool = False

    async def get(self) -> dict[str, Any]:
        if self.overflowed:
            self.overflowed = False
            while not self.queue.empty():
                self.queue.get_nowait()
            return RESYNC
        return await self.queue.get()


class OrderFeed:
    """``run()`` is the console's background task; ``subscribe()`` is per event stream."""

    def __init__(self, conninfo: str, *, reconnect_s: float = 1.0) -> None:
        self.conninfo = conninfo
        self.reconnect_s = reconnect_s
        self.connected = asyncio.Event()
        self._subs: set[Subscription] = set()

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        sub = Subscription()
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    def publish(self, event: dict[str, Any]) -> None:
        for sub in self._subs:
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.overflowed = True

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def run(self) -> None:
        """Listen until cancelled; reconnect after a lost connection (every stream is told to
        resync once it is back)."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.conninfo, autocommit=True, connect_timeout=3) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self.publish(RESYNC)  # anything between a page's load and now
                    log.info("listening for work-order changes")
                    async for notice in conn.notifies():
                        try:
                            self.publish({"kind": "order", **json.loads(notice.payload)})
                        except ValueError:
                            log.warning("ignored a malformed notice on %s", CHANNEL)
            except (psycopg.Error, OSError) as exc:
                if self.connected.is_set():
                    log.warning("work-order notices lost (%s); reconnecting",
                                type(exc).__name__)
                self.connected.clear()
            # A back-off between reconnects, not a wait for an outcome.
            await asyncio.sleep(self.reconnect_s)
