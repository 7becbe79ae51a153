"""The welcome decision: which catalogue prompt a call plays, from rules cached off the DB.

A DB outage never blocks a welcome: the last snapshot is used, and with none the default
welcome's ``current`` file plays.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pbxctl.core.errors import StoreUnavailable
from pbxctl.data.prompts import WELCOME_DEFAULT, Rule

log = logging.getLogger("pbxctl.agi")

KIND_RANK = {"outage": 3, "holiday": 2, "default": 1}


@dataclass(frozen=True)
class Snapshot:
    rules: tuple[Rule, ...]
    versions: dict[str, int]  # prompt id → latest published version
    loaded_at: float


def choose_welcome(snap: Snapshot | None, *, prefecture: str, caller: str, now: datetime
                   ) -> str:
    """``<prompt id>/v<version>`` of the welcome this call gets, or the default's ``current``."""
    if snap is None:
        return f"{WELCOME_DEFAULT}/current"
    best: tuple[int, int, int, int] | None = None
    chosen = ""
    for r in snap.rules:
        if r.prompt_id not in snap.versions:
            continue  # never published: no site holds it
        if (r.valid_from and now < r.valid_from) or (r.valid_until and now >= r.valid_until):
            continue
        if r.prefecture and r.prefecture != prefecture:
            continue
        if r.area_code and not caller.startswith(r.area_code):
            continue
        specificity = (r.prefecture is not None) + (r.area_code is not None)
        key = (r.priority, KIND_RANK[r.kind], specificity, r.id)
        if best is None or key > best:
            best, chosen = key, r.prompt_id
    if not chosen:
        return f"{WELCOME_DEFAULT}/current"
    return f"{chosen}/v{snap.versions[chosen]}"


class PromptCatalog:
    """Rules and published versions, refreshed from the store at most every ``ttl`` seconds
    in a background thread (one at a time): the call path never waits on the database. A
    failed refresh keeps the previous snapshot."""

    def __init__(self, *, load: Callable[[], tuple[list[Rule], dict[str, int]]],
                 ttl: float = 5.0) -> None:
        self._load = load
        self.ttl = ttl
        self._snap: Snapshot | None = None
        self._lock = threading.Lock()
        self._next_try = 0.0

    def prime(self) -> bool:
        """Load once, synchronously (at server start). False if the store is unavailable."""
        self._refresh()
        return self._snap is not None

    def snapshot(self) -> Snapshot | None:
        if time.monotonic() >= self._next_try and not self._lock.locked():
            threading.Thread(target=self._refresh, name="catalog-refresh", daemon=True).start()
        return self._snap

    @property
    def refreshing(self) -> bool:
        """A refresh is running now (health checks and tests wait on it, not on the clock)."""
        return self._lock.locked()

    def age_ms(self) -> int:
        """How old the snapshot calls get now (-1: none yet); asking starts a refresh when
        one is due, so a health ping keeps the catalogue fresh on an idle server too."""
        snap = self.snapshot()
        return -1 if snap is None else int((time.monotonic() - snap.loaded_at) * 1000)

    def _refresh(self) -> None:
        if not self._lock.acquire(blocking=False):
            return
        now = time.monotonic()
        try:
            rules, versions = self._load()
            self._snap = Snapshot(tuple(rules), versions, now)
            self._next_try = now + self.ttl
        except StoreUnavailable as exc:
            log.warning("prompt catalogue not refreshed (keeping the last one): %s", exc)
            self._next_try = now + min(self.ttl, 2.0)
        finally:
            self._lock.release()


def utcnow() -> datetime:
    return datetime.now(UTC)
