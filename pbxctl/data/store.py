"""The PostgreSQL store (psycopg 3 + psycopg_pool). Keyword-only, typed; every wait bounded."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from pbxctl.core.errors import StoreRefused, StoreUnavailable
from pbxctl.core.redact import MASK, redact_text

log = logging.getLogger("pbxctl.data.store")


@dataclass(frozen=True)
class StoreConfig:
    conninfo: str
    min_size: int = 1
    max_size: int = 8
    connect_timeout: float = 3.0
    statement_timeout_ms: int = 2000
    # After a failure, fail at once for this long instead of making every caller wait out the
    # pool timeout; then one request tries again (a circuit breaker).
    retry_after: float = 2.0


def _migrations() -> list[tuple[int, str, str]]:
    out = []
    for entry in resources.files("pbxctl.data.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def without_secrets(text: str, conninfo: str) -> str:
    """``text`` with the conninfo's password (if any) masked."""
    try:
        password = conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        return text
    return text.replace(str(password), MASK) if password else text


class Store:
    """``open()`` creates the pool (no I/O in the constructor); ``close()`` ends it."""

    def __init__(self, *, config: StoreConfig) -> None:
        self.config = config
        self._pool: ConnectionPool | None = None
        self._down_until = 0.0
        self._down_reason = ""

    def open(self, *, wait: bool = True) -> None:
        opts = f"-c statement_timeout={self.config.statement_timeout_ms}"
        self._pool = ConnectionPool(
            self.config.conninfo,
            min_size=self.config.min_size,
            max_size=self.config.max_size,
            kwargs={"options": opts, "autocommit": True,
                    "connect_timeout": max(1, int(self.config.connect_timeout))},
            timeout=self.config.connect_timeout,
            # Keep trying to reconnect in the background for as long as the server is down.
            reconnect_timeout=24 * 3600,
            check=ConnectionPool.check_connection,
            open=False,
            name="pbxctl",
        )
        self._pool.open(wait=False)
        if wait:
            try:
                self._pool.wait(timeout=self.config.connect_timeout)
            except PoolTimeout as exc:
                self.close()
                raise StoreUnavailable(
                    f"PostgreSQL not reachable within {self.config.connect_timeout:g}s "
                    f"({redact_text(self.config.conninfo)})",
                    hint="is the database running? `pbxctl lab up`",
                ) from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close(timeout=5.0)
            self._pool = None

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> ConnectionPool:
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        return self._pool

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run one parameterised statement (values never formatted into SQL)."""
        with self._connection(transaction=False) as conn:
            cur = conn.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One connection in one transaction (for SELECT … FOR UPDATE and the writes that
        follow); errors map to StoreUnavailable like ``execute``."""
        with self._connection(transaction=True) as conn:
            yield conn

    def execute_batch(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """Run parameterised statements in one transaction: all of them or none."""
        with self._connection(transaction=True) as conn:
            for sql, params in statements:
                conn.execute(sql, params)

    @contextmanager
    def _connection(self, *, transaction: bool) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection with the one error mapping: the circuit breaker first, then
        pool timeouts and connection errors become StoreUnavailable (and open the breaker)."""
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"database marked down: {self._down_reason}",
                                   hint="check PostgreSQL")
        try:
            with self._conn().connection(timeout=self.config.connect_timeout) as conn:
                if transaction:
                    with conn.transaction():
                        yield conn
                else:
                    yield conn
        except PoolTimeout as exc:
            self._mark_down("no database connection available in time")
            raise StoreUnavailable("no database connection available in time",
                                   hint="check PostgreSQL") from exc
        except psycopg.OperationalError as exc:
            reason = without_secrets(f"database error: {exc}".splitlines()[0],
                                      self.config.conninfo)
            self._mark_down(reason)
            raise StoreUnavailable(reason, hint="check PostgreSQL") from exc
        except psycopg.DataError as exc:  # the record, not the database: never retry it
            raise StoreRefused(f"the database refused a value: {exc}".splitlines()[0]) from exc
        self._down_until = 0.0

    def _mark_down(self, reason: str) -> None:
        self._down_reason = reason
        self._down_until = time.monotonic() + self.config.retry_after

    @property
    def marked_down(self) -> bool:
        return time.monotonic() < self._down_until

    # -- schema ---------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations, each in its own transaction; returns those applied."""
        applied: list[str] = []
        with self._conn().connection(timeout=self.config.connect_timeout) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         "version int PRIMARY KEY, name text NOT NULL, "
                         "applied_at timestamptz NOT NULL DEFAULT now())")
            # One migrator at a time, whoever else runs `pbxctl db migrate`.
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(7233001)")
                done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
                for version, name, sql in _migrations():
                    if version in done:
                        continue
                    with conn.transaction():
                        conn.execute(sql.encode())
                        conn.execute("INSERT INTO schema_migrations (version, name) "
                                     "VALUES (%s, %s)", (version, name))
                    applied.append(name)
        return applied

    def schema_version(self) -> int:
        rows = self.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
        value = rows[0][0]
        assert isinstance(value, int)
        return value

    # -- call log -------------------------------------------------------------
    def record_agi_call(self, *, uniqueid: str, route: str, dnid: str, caller: str,
                        outcome: str) -> None:
        self.execute("INSERT INTO agi_calls (uniqueid, route, dnid, caller, outcome) "
                     "VALUES (%s, %s, %s, %s, %s)", (uniqueid, route, dnid, caller, outcome))

    def agi_calls(self, *, limit: int = 100) -> list[dict[str, object]]:
        rows = self.execute("SELECT uniqueid, route, dnid, caller, outcome FROM agi_calls "
                            "ORDER BY id DESC LIMIT %s", (limit,))
        keys = ("uniqueid", "route", "dnid", "caller", "outcome")
        return [dict(zip(keys, r, strict=True)) for r in rows]
