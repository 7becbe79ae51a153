"""Survivability state per prefecture, as each gateway's watcher last reported it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pbxctl.data.store import Store


@dataclass(frozen=True)
class SiteState:
    site: str
    prefecture: str
    mode: str  # central | survivable
    since: datetime
    path_a: bool
    path_b: bool
    age_s: float  # seconds since the report reached the database


def report(store: Store, *, site: str, prefecture: str, mode: str, since: datetime,
           path_a: bool, path_b: bool) -> None:
    store.execute(
        "INSERT INTO prefecture_states (site, prefecture, mode, since, path_a, path_b) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (site) DO UPDATE SET "
        "prefecture = EXCLUDED.prefecture, mode = EXCLUDED.mode, since = EXCLUDED.since, "
        "path_a = EXCLUDED.path_a, path_b = EXCLUDED.path_b, reported_at = now()",
        (site, prefecture, mode, since, path_a, path_b))


def latest(store: Store) -> dict[str, SiteState]:
    """The newest report per prefecture."""
    rows = store.execute(
        "SELECT DISTINCT ON (prefecture) site, prefecture, mode, since, path_a, path_b, "
        "extract(epoch FROM now() - reported_at) FROM prefecture_states "
        "ORDER BY prefecture, reported_at DESC")
    return {str(r[1]): SiteState(str(r[0]), str(r[1]), str(r[2]), r[3], bool(r[4]),  # type: ignore[arg-type]
                                 bool(r[5]), float(str(r[6]))) for r in rows}
