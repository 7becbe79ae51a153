"""The CTI as a daemon: the handlers' dependencies assembled once, served over FastAGI (Asterisk
sites) or outbound ESL (FreeSWITCH sites), with systemd readiness and a self-pinging watchdog.

The CLI resolves the settings (command line > environment > config file > defaults) and calls
:func:`serve`; nothing here reads argv or the environment except systemd's notify socket.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path
from typing import Literal

from ivr_scripts.calllog import CallLog
from ivr_scripts.catalog import PromptCatalog
from ivr_scripts.handlers import default_registry
from ivr_scripts.peers import LOOPBACK, PeerFilter
from ivr_scripts.registry import HandlerContext
from ivr_scripts.routing import RoutingTable
from pbxctl.core.errors import PbxctlError
from pbxctl.core.sdnotify import notify, start_watchdog
from pbxctl.data.prompts import published_versions, rules
from pbxctl.data.store import Store, StoreConfig

log = logging.getLogger("pbxctl.cti")

Transport = Literal["agi", "esl"]


@dataclass(frozen=True)
class CtiSettings:
    transport: Transport
    hosts: tuple[str, ...] = ("127.0.0.1",)
    port: int = 4573
    conninfo: str = ""  # empty: no database (welcome falls back, self-service apologises)
    inventory: Path | None = None  # enables route and the work-order handlers
    fixed_welcome: Mapping[str, str] = field(default_factory=dict)
    backlog: int = 1024
    max_sessions: int = 4000
    allow: tuple[str, ...] = ()  # peers besides the inventory's PBXs (ops host, probes)
    grace: float = 10.0
    timeout: float = 10.0  # ESL: each command's bound
    max_connections: int = 500  # ESL


@contextlib.contextmanager
def handler_context(settings: CtiSettings, *,
                    health: Callable[[], Mapping[str, int]] | None = None
                    ) -> Iterator[HandlerContext]:
    """Open what the handlers use; close it all on exit, whatever happened."""
    store = catalog = call_log = None
    routing = inventory = None
    if settings.inventory is not None:  # the route handler: DIDs, areas and hours
        from provisioning.inventory import load_inventory

        inventory = load_inventory(settings.inventory)
        routing = RoutingTable.from_inventory(inventory)
    if settings.conninfo:
        store = Store(config=StoreConfig(conninfo=settings.conninfo))
        store.open(wait=False)  # the server must come up even while the DB is down
        opened = store
        catalog = PromptCatalog(load=lambda: (rules(opened), published_versions(opened)))
        catalog.prime()
        call_log = CallLog(store=store)
        call_log.start()
    try:
        yield HandlerContext(store=store, catalog=catalog, call_log=call_log, routing=routing,
                             inventory=inventory, fixed_welcome=dict(settings.fixed_welcome),
                             health=health)
    finally:
        if call_log is not None:
            call_log.close()
        if store is not None:
            store.close()


def serve(settings: CtiSettings, *, environ: Mapping[str, str],
          stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); 0 when every running call finished in time."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    counter_sources: list[Callable[[], Mapping[str, int]]] = []

    def counters() -> dict[str, int]:
        total: dict[str, int] = {}
        for source in counter_sources:
            for key, value in source().items():
                total[key] = total.get(key, 0) + value
        return total

    with handler_context(settings, health=counters) as ctx:
        if isinstance(ctx.catalog, PromptCatalog):  # `agi health`: how fresh the catalogue is
            catalog = ctx.catalog
            counter_sources.append(lambda: {"catalog_age_ms": catalog.age_ms()})
        peers = peer_filter(settings, ctx)
        runner = (_agi(settings, ctx, peers, counter_sources) if settings.transport == "agi"
                  else _esl(settings, ctx, peers, counter_sources))
        address, healthy, shutdown = runner
        log.info("%s listening on %s", settings.transport, address)
        watchdog = start_watchdog(healthy, environ=environ)
        notify("READY=1", environ=environ)
        stop.wait()
        notify("STOPPING=1", environ=environ)
        if watchdog is not None:
            watchdog.set()
        left = shutdown()
    return 0 if left == 0 else 1


_Runner = tuple[str, Callable[[], bool], Callable[[], int]]


def peer_filter(settings: CtiSettings, ctx: HandlerContext) -> PeerFilter:
    """The inventory's PBXs (both paths) and the configured extras; with no inventory,
    loopback and the extras."""
    if ctx.inventory is not None:
        return PeerFilter.from_inventory(ctx.inventory, settings.allow)
    return PeerFilter([*LOOPBACK, *(ip_network(a, strict=False) for a in settings.allow)])


def _agi(settings: CtiSettings, ctx: HandlerContext, peers: PeerFilter,
         counter_sources: list[Callable[[], Mapping[str, int]]]) -> _Runner:
    from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
    from ivr_scripts.health import check

    servers = []
    for host in settings.hosts:  # path A and path B: no need to bind 0.0.0.0
        srv = FastAgiServer(registry=default_registry(), context=ctx,
                            config=AgiServerConfig(host=host, port=settings.port,
                                                   backlog=settings.backlog,
                                                   max_sessions=settings.max_sessions,
                                                   peers=peers))
        srv.start()
        servers.append(srv)
        counter_sources.append(srv.counters)

    def healthy() -> bool:
        try:
            for srv in servers:
                check(*srv.address, timeout=2.0)
            return True
        except PbxctlError:
            return False

    def shutdown() -> int:
        return sum(srv.shutdown(grace=settings.grace) for srv in servers)

    where = ", ".join(f"{h}:{p}" for h, p in (s.address for s in servers))
    return where, healthy, shutdown


def _esl(settings: CtiSettings, ctx: HandlerContext, peers: PeerFilter,
         counter_sources: list[Callable[[], Mapping[str, int]]]) -> _Runner:
    from ivr_scripts.esl import EslServer

    servers, threads = [], []
    for host in settings.hosts:
        srv = EslServer(registry=default_registry(), context=ctx, host=host,
                        port=settings.port, timeout=settings.timeout,
                        max_connections=settings.max_connections, peers=peers)
        counter_sources.append(srv.counters)
        thread = threading.Thread(target=srv.listen, name=f"esl-{host}", daemon=True)
        thread.start()
        servers.append(srv)
        threads.append(thread)

    def healthy() -> bool:
        return all(t.is_alive() for t in threads)

    def shutdown() -> int:
        for srv in servers:
            srv.stop()
        for t in threads:
            t.join(timeout=settings.grace)
        return sum(1 for t in threads if t.is_alive())

    return ", ".join(f"{h}:{settings.port}" for h in settings.hosts), healthy, shutdown
