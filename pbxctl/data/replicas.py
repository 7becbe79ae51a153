"""Logical replication of the self-service data: run the rendered SQL, report the state.

The SQL comes from ``provisioning.render_replication`` (the CLI joins the two: this floor does
not know the model). One connection per command, autocommit: CREATE SUBSCRIPTION must run
outside a transaction block.

What ``status`` reads, on whichever side the database is:
* publisher (the province): each ``pbxctl_selfservice_*`` publication, its slot (active or
  not: a subscriber that cannot connect shows as an inactive slot, or none at all), how far
  the slot's confirmed position is behind the current WAL (bytes), the walsender's state and
  replay lag (time);
* subscriber (a prefecture IVR): each subscription, whether its apply worker runs, when it
  last heard from the province (keepalives arrive even when nothing changes), its tables'
  sync states and error counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pbxctl.core.errors import StoreUnavailable
from pbxctl.data.store import without_secrets

PREFIX = "pbxctl_selfservice_"


@dataclass(frozen=True)
class Publication:
    name: str
    slot_active: bool | None  # None: no slot yet (no subscriber has connected)
    lag_bytes: int | None
    state: str | None  # the walsender's: streaming, catchup, startup, …
    client: str | None
    replay_lag_s: float | None


@dataclass(frozen=True)
class Subscription:
    name: str
    enabled: bool
    worker_running: bool
    last_msg_age_s: float | None  # seconds since the province last sent anything
    tables: dict[str, int] = field(default_factory=dict)  # sync state → tables
    apply_errors: int = 0
    sync_errors: int = 0

    @property
    def healthy(self) -> bool:
        return self.enabled and self.worker_running and set(self.tables) <= {"ready"}


@dataclass(frozen=True)
class ReplicaReport:
    publications: list[Publication]
    subscriptions: list[Subscription]

    @property
    def healthy(self) -> bool:
        return (all(p.slot_active for p in self.publications)
                and all(s.healthy for s in self.subscriptions))


_SYNC_STATES = {"i": "initialize", "d": "data copy", "f": "finished copy", "s": "synchronized",
                "r": "ready"}


@contextmanager
def _connect(conninfo: str, *, timeout: int) -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=timeout)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreUnavailable(f"database unreachable: {without_secrets(first, conninfo)}",
                               hint="check database.dsn in the config and PostgreSQL") from exc
    try:
        yield conn
    finally:
        conn.close()


def run_sql(conninfo: str, sql: str, *, timeout: int = 10) -> None:
    """Run a rendered SQL file (several statements, simple protocol, no parameters)."""
    with _connect(conninfo, timeout=timeout) as conn:
        try:
            conn.execute(sql.encode())
        except psycopg.Error as exc:
            raise StoreUnavailable(f"SQL failed: {without_secrets(str(exc).strip(), conninfo)}",
                                   hint="the database said why above") from exc


def subscription_exists(conninfo: str, name: str, *, timeout: int = 10) -> bool:
    with _connect(conninfo, timeout=timeout) as conn:
        return conn.execute("SELECT 1 FROM pg_subscription WHERE subname = %s",
                            (name,)).fetchone() is not None


def status(conninfo: str, *, timeout: int = 10) -> ReplicaReport:
    with _connect(conninfo, timeout=timeout) as conn:
        pubs = [Publication(*row) for row in conn.execute(
            """SELECT p.pubname, s.active,
                      pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,
                      r.state, host(r.client_addr),
                      extract(epoch FROM r.replay_lag)::float8
                 FROM pg_publication p
                 LEFT JOIN pg_replication_slots s ON s.slot_name = p.pubname
                 LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
                WHERE p.pubname LIKE %s ORDER BY p.pubname""", (PREFIX + "%",)).fetchall()]
        subs = []
        for name, enabled, running, age, apply_err, sync_err in conn.execute(
                """SELECT s.subname, s.subenabled, st.pid IS NOT NULL,
                          extract(epoch FROM now() - st.last_msg_receipt_time)::float8,
                          coalesce(ss.apply_error_count, 0), coalesce(ss.sync_error_count, 0)
                     FROM pg_subscription s
                     JOIN pg_database d ON d.oid = s.subdbid AND d.datname = current_database()
                     LEFT JOIN pg_stat_subscription st
                            ON st.subid = s.oid AND st.relid IS NULL
                     LEFT JOIN pg_stat_subscription_stats ss ON ss.subid = s.oid
                    WHERE s.subname LIKE %s ORDER BY s.subname""", (PREFIX + "%",)).fetchall():
            tables: dict[str, int] = {}
            for state, count in conn.execute(
                    """SELECT r.srsubstate, count(*) FROM pg_subscription_rel r
                         JOIN pg_subscription s ON s.oid = r.srsubid
                        WHERE s.subname = %s GROUP BY 1""", (name,)).fetchall():
                tables[_SYNC_STATES.get(state, state)] = int(count)
            subs.append(Subscription(name, bool(enabled), bool(running), age, tables,
                                     int(apply_err), int(sync_err)))
        return ReplicaReport(pubs, subs)
