"""The private PostgreSQL cluster and the store against it."""

from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pbxctl.core.errors import PortInUseError, ServiceStartError, StoreUnavailable
from pbxctl.data.store import Store, StoreConfig
from pbxctl.lab.sandbox.postgres import PostgresCluster

pytestmark = pytest.mark.pg


def test_migrate_is_idempotent_and_rows_round_trip(store: Store) -> None:
    assert store.migrate() == []  # the fixture already applied everything
    assert store.schema_version() >= 1
    store.record_agi_call(uniqueid="u-1", route="welcome", dnid="95598",
                          caller="0571'; DROP TABLE agi_calls; --", outcome="hello-world")
    rows = [r for r in store.agi_calls() if r["uniqueid"] == "u-1"]
    assert rows == [{"uniqueid": "u-1", "route": "welcome", "dnid": "95598",
                     "caller": "0571'; DROP TABLE agi_calls; --", "outcome": "hello-world"}]


def test_store_on_a_dead_port_gives_up_at_its_connect_timeout_with_a_typed_error() -> None:
    s = Store(config=StoreConfig(conninfo="host=127.0.0.1 port=1 dbname=x user=x",
                                 connect_timeout=1))
    with pytest.raises(StoreUnavailable, match=r"not reachable within 1s \(host=127.0.0.1 "):
        s.open()


def test_a_store_marked_down_answers_without_asking_the_pool_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    s = Store(config=StoreConfig(conninfo="host=127.0.0.1 port=1 dbname=x user=x",
                                 connect_timeout=1, retry_after=60))
    s.open(wait=False)
    pool = s._conn()
    asked: list[object] = []
    real = pool.connection

    def counting(**kw: Any) -> Any:
        asked.append(kw)
        return real(**kw)

    monkeypatch.setattr(pool, "connection", counting)
    try:
        with pytest.raises(StoreUnavailable) as first:
            s.execute("SELECT 1")
        assert "marked down" not in first.value.message
        assert len(asked) == 1  # the first caller waited on the pool (up to connect_timeout)
        with pytest.raises(StoreUnavailable, match="database marked down"):
            s.execute("SELECT 1")
        assert len(asked) == 1  # the second was answered at once: no second wait
        assert s.marked_down
    finally:
        s.close()


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="pbxpg-", dir="/tmp"))


def test_occupied_port_is_refused() -> None:
    root = _tmp()
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            with pytest.raises(PortInUseError):
                PostgresCluster(root=root, port=s.getsockname()[1]).start()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_broken_config_fails_start_with_log_tail() -> None:
    root = _tmp()
    cluster = PostgresCluster(root=root)
    try:
        cluster.start()
        cluster.stop()
        with open(cluster.datadir / "postgresql.conf", "a") as fh:
            fh.write("\nshared_buffers = not_a_size\n")
        with pytest.raises(ServiceStartError, match="PostgreSQL start failed"):
            PostgresCluster(root=root).start(timeout=20)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
