"""Fixtures that start real parts: PostgreSQL, Asterisk, our FastAGI server, SIPp.

Markers, not skips: `pytest -m "not asterisk and not pg and not sipp and not lab"` runs the pure
tests alone; a missing binary fails the real-part tests loudly (run `make setup`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.handlers import default_registry
from ivr_scripts.registry import HandlerContext, Registry
from pbxctl.ami import AmiClient
from pbxctl.netutil import free_port
from pbxctl.sandbox.asterisk import AsteriskInstance
from pbxctl.sandbox.postgres import PgEndpoint, PostgresCluster
from pbxctl.store import Store, StoreConfig
from provisioning.lab_site import GatewayParams, gateway_configs


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short path under /tmp: Asterisk's control socket path must stay under 108 bytes."""
    root = Path(tempfile.mkdtemp(prefix="pbxt-", dir="/tmp"))
    root.chmod(0o755)  # PostgreSQL runs as 'postgres' and must reach its data below
    yield root
    if not os.environ.get("PBXCTL_KEEP_TMP"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    root = Path(tempfile.mkdtemp(prefix="pbxpg-", dir="/tmp"))
    cluster = PostgresCluster(root=root)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(pg_cluster: PostgresCluster) -> PgEndpoint:
    assert pg_cluster.endpoint is not None
    return pg_cluster.endpoint


@pytest.fixture
def store(pg: PgEndpoint) -> Iterator[Store]:
    s = Store(config=StoreConfig(conninfo=pg.conninfo()))
    s.open()
    s.migrate()
    try:
        yield s
    finally:
        s.close()


AgiFactory = Callable[..., FastAgiServer]


@pytest.fixture
def agi_server_factory() -> Iterator[AgiFactory]:
    servers: list[FastAgiServer] = []

    def make(*, registry: Registry | None = None, context: HandlerContext | None = None,
             read_timeout: float = 30.0) -> FastAgiServer:
        server = FastAgiServer(
            registry=registry or default_registry(),
            context=context or HandlerContext(),
            config=AgiServerConfig(host="127.0.0.1", port=free_port(), read_timeout=read_timeout),
        )
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.shutdown(grace=5)


GatewayFactory = Callable[..., tuple[AsteriskInstance, int]]


@pytest.fixture
def gateway_factory(short_tmp: Path) -> Iterator[GatewayFactory]:
    """A sandboxed Asterisk with the lab gateway dialplan pointing at an AGI endpoint."""
    started: list[AsteriskInstance] = []

    def make(*, agi_port: int, name: str = "gw") -> tuple[AsteriskInstance, int]:
        sip_port = free_port("127.0.0.1", kind="udp")
        configs = gateway_configs(GatewayParams(address="127.0.0.1", sip_port=sip_port,
                                                agi_host="127.0.0.1", agi_port=agi_port,
                                                pstn_address="127.0.0.1"))
        ast = AsteriskInstance(name=name, root=short_tmp / name, configs=configs, verbose_log=True)
        started.append(ast)
        ast.start()
        return ast, sip_port

    yield make
    for ast in started:
        ast.stop()


AmiOf = Callable[[AsteriskInstance], AmiClient]


@pytest.fixture
def ami_of() -> Iterator[AmiOf]:
    clients: list[AmiClient] = []

    def connect(ast: AsteriskInstance) -> AmiClient:
        assert ast.ami is not None
        client = AmiClient(**asdict(ast.ami))
        client.connect()
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
