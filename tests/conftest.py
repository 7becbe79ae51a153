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
from typing import TYPE_CHECKING

import pytest

from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.handlers import default_registry
from ivr_scripts.registry import HandlerContext, Registry
from pbxctl.core.net import free_port
from pbxctl.data.store import Store, StoreConfig
from pbxctl.lab.sandbox.asterisk import AsteriskInstance, find_asterisk
from pbxctl.lab.sandbox.postgres import PgEndpoint, PostgresCluster
from pbxctl.pbx.ami import AmiClient
from pbxctl.pbx.engine import default_major
from tests.spine.site import GatewayParams, gateway_configs

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

# -- markers say which real parts a test starts ----------------------------------------------
# Fixtures that start a part, and the marker a test using them must carry. A test module that
# starts a part by itself (PostgresCluster(...), `lab up`) is listed in STARTS_BY_ITSELF.
PART_FIXTURES = {"pg_cluster": "pg", "pg": "pg", "store": "pg", "fresh_db": "pg",
                 "gateway_factory": "asterisk", "site_factory": "asterisk",
                 "center": "asterisk", "browser": "browser"}
STARTS_BY_ITSELF = {"PostgresCluster(": "pg", "AsteriskInstance(": "asterisk",
                    "FreeSwitchInstance(": "freeswitch", '"lab", "up"': "lab"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that starts PostgreSQL (or Asterisk, or a lab) without its marker would run in
    `-m "not pg"` and fail for a missing part: refuse to collect it instead."""
    sources: dict[Path, str] = {}
    wrong = []
    for item in items:
        marks = {m.name for m in item.iter_markers()}
        needs = {PART_FIXTURES[f] for f in getattr(item, "fixturenames", ())
                 if f in PART_FIXTURES}
        path = Path(str(item.path))
        if path not in sources:
            sources[path] = path.read_text(encoding="utf-8")
        needs |= {mark for text, mark in STARTS_BY_ITSELF.items() if text in sources[path]
                  and path.name != "conftest.py"}
        if "lab" in needs:
            needs |= {"pg", "asterisk"}
        if needs - marks:
            wrong.append(f"{item.nodeid}: missing marker(s) {sorted(needs - marks)}")
    if wrong:
        raise pytest.UsageError("tests start parts their markers do not name:\n  "
                                + "\n  ".join(wrong))


def pytest_collection_finish(session: pytest.Session) -> None:
    """An update run (`make golden`) rewrites golden files and compares nothing: it may not
    run any other test, whose pass would then mean nothing either."""
    if os.environ.get("PBXCTL_UPDATE_GOLDEN"):
        others = [i.nodeid for i in session.items if i.get_closest_marker("golden") is None]
        if others:
            raise pytest.UsageError("PBXCTL_UPDATE_GOLDEN rewrites golden files and compares "
                                    f"nothing: run `make golden`, not {others[0]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    """No skip counts as a pass or hides a missing part: a skipped test is reported failed,
    with its reason, so the summary says what to install or fix."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)  # for fixtures that keep evidence on failure
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, and skips are not allowed in this suite: {reason}"


# -- no secret in any CLI output of the whole suite --------------------------------------------
def _test_secrets() -> set[str]:
    import yaml

    data = yaml.safe_load((Path(__file__).parent / "data" / "small" / "secrets.yaml").read_text())
    return {v for section in data.values() if isinstance(section, dict) for v in section.values()
            if isinstance(v, str) and len(v) >= 8}


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_cli_output() -> Iterator[None]:
    """Every in-process `pbxctl` run of the suite (stdout, stderr, --json, errors) is kept and,
    at the end, searched for every secret of the test inventory: one hit fails the session."""
    import argparse
    import io
    from typing import TextIO

    from pbxctl.cli import app
    from pbxctl.cli.env import Command, Env

    seen: list[tuple[str, str]] = []
    real_run = app.run

    def recording_run(func: Command, args: argparse.Namespace, env: Env,
                      err_stream: TextIO) -> int:
        try:
            return real_run(func, args, env, err_stream)
        finally:
            for stream in (env.stdout, err_stream):
                if isinstance(stream, io.StringIO):
                    seen.append((" ".join(getattr(args, "argv", [])) or str(func.__name__),
                                 stream.getvalue()))

    app.run = recording_run
    yield
    app.run = real_run
    secrets = _test_secrets()
    leaks = [(cmd, s) for cmd, text in seen for s in secrets if s in text]
    assert not leaks, f"secrets in CLI output: {leaks[:5]}"


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WebDriver]:
    """Debian's headless Chromium (tests/browser.py). On a failed test the page's screenshot
    and HTML stay in the test's tmp dir."""
    from tests.browser import chromium, keep_evidence

    driver = chromium(tmp_path / "chromium")
    try:
        yield driver
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            keep_evidence(driver, tmp_path)
        driver.quit()


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

    def make(*, agi_port: int, name: str = "gw",
             major: int | None = None) -> tuple[AsteriskInstance, int]:
        sip_port = free_port("127.0.0.1", kind="udp")
        configs = gateway_configs(GatewayParams(address="127.0.0.1", sip_port=sip_port,
                                                agi_host="127.0.0.1", agi_port=agi_port,
                                                pstn_address="127.0.0.1"))
        ast = AsteriskInstance(name=name, root=short_tmp / name, configs=configs,
                               verbose_log=True, binary=find_asterisk(major))
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


# -- provisioning fixtures -------------------------------------------------------------------
DATA = Path(__file__).parent / "data"


@pytest.fixture
def small_inventory_path(tmp_path: Path) -> Path:
    """The small inventory with its fixed test secrets copied beside it at mode 0600."""
    dst = tmp_path / "small"
    shutil.copytree(DATA / "small", dst)
    secrets = dst / "province.secrets.yaml"
    (dst / "secrets.yaml").rename(secrets)
    secrets.chmod(0o600)
    return dst / "province.yaml"


SiteFactory = Callable[..., AsteriskInstance]


@pytest.fixture
def site_factory(short_tmp: Path) -> Iterator[SiteFactory]:
    """Boot rendered sites of an inventory in sandboxes (each on its inventory addresses)."""
    from pbxctl.lab.site import sandbox_for
    from provisioning.model import Inventory
    from provisioning.render_asterisk import RenderedFile, render_site
    from provisioning.secrets import Secrets

    started: list[AsteriskInstance] = []

    def make(inv: Inventory, secrets: Secrets, name: str,
             files: dict[str, RenderedFile] | None = None,
             verbose_log: bool = False, major: int | None = None) -> AsteriskInstance:
        """``major``: the Asterisk to boot (default: PBXCTL_ASTERISK, else 22)."""
        major = default_major() if major is None else major
        site = inv.site(name)
        prompts = str(short_tmp / name / "sounds" / "pbxctl")
        ast = sandbox_for(site, files or render_site(inv, site, secrets, prompt_dir=prompts,
                                                     major=major),
                          secrets, short_tmp / name, verbose_log=verbose_log,
                          binary=find_asterisk(major))
        started.append(ast)
        ast.start()
        return ast

    yield make
    for ast in started:
        ast.stop()


def management_ami(ast: AsteriskInstance, source: str) -> AmiClient:
    """AMI of a rendered site, connecting from an address its manager.conf permits."""
    assert ast.ami is not None
    client = AmiClient(**asdict(ast.ami), source=source)
    client.connect()
    return client


@pytest.fixture(scope="session")
def tts_cache_dir() -> Iterator[Path]:
    """One TTS cache for the session: each prompt text is synthesised once."""
    root = Path(tempfile.mkdtemp(prefix="pbxtts-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def new_database(cluster: PostgresCluster) -> Store:
    """A migrated, empty database of its own in ``cluster``, opened (the caller closes it)."""
    import uuid

    assert cluster.endpoint is not None
    name = f"t{uuid.uuid4().hex[:12]}"
    admin = Store(config=StoreConfig(conninfo=cluster.endpoint.conninfo().replace(
        "dbname=pbxctl", "dbname=postgres")))
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    s = Store(config=StoreConfig(conninfo=cluster.endpoint.conninfo().replace(
        "dbname=pbxctl", f"dbname={name}")))
    s.open()
    s.migrate()
    return s


@pytest.fixture
def fresh_db(pg_cluster: PostgresCluster) -> Iterator[Store]:
    """A migrated, empty database of its own for one test."""
    s = new_database(pg_cluster)
    try:
        yield s
    finally:
        s.close()
