"""A private PostgreSQL cluster from Debian's server binaries: initdb into a folder, no service."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pbxctl.core.errors import MissingDependencyError, ServiceStartError, WaitTimeout
from pbxctl.core.net import free_port, require_free, require_loopback
from pbxctl.core.procs import stop_pid, tail, wait_pid_gone
from pbxctl.lab.sandbox.netns import ns_exec

PG_HINT = "run `make setup` (as root) to install postgresql"


def find_pg_bindir() -> Path:
    base = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in base.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise MissingDependencyError("PostgreSQL server binaries (initdb) not found", hint=PG_HINT)
    return versions[-1]


@dataclass(frozen=True)
class PgEndpoint:
    host: str
    port: int
    socket_dir: str
    user: str
    dbname: str

    def conninfo(self, *, connect_timeout: int = 5) -> str:
        # Through the unix socket: no password, no TCP handshake.
        return (
            f"host={self.socket_dir} port={self.port} user={self.user} "
            f"dbname={self.dbname} connect_timeout={connect_timeout}"
        )


class PostgresCluster:
    """initdb + pg_ctl in ``root``. PostgreSQL refuses to run as root, so as root the cluster
    runs as the ``postgres`` system user with ``root`` owned by it."""

    def __init__(self, *, root: Path, address: str = "127.0.0.1", port: int | None = None,
                 dbname: str = "pbxctl", netns: str | None = None,
                 logical: bool = False, hba: tuple[str, ...] = (), small: bool = False
                 ) -> None:
        self.root = root
        # In a lab namespace the addresses are the namespace's own (nothing routes off the
        # machine); outside one, loopback only.
        self.netns = netns
        self.address = address if netns else require_loopback(address)
        self._requested_port = port
        self.dbname = dbname
        self.logical = logical  # wal_level=logical: it can publish (the province's database)
        self.hba = hba  # pg_hba.conf lines put before initdb's (who may connect over TCP)
        # A replica serving one IVR: few connections, small buffers (a whole-province lab
        # runs eleven of them beside the province's).
        self.small = small
        self.endpoint: PgEndpoint | None = None
        self.pid: int | None = None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def _as_owner(self) -> list[str]:
        inside = ns_exec(self.netns) if self.netns else []
        if os.geteuid() != 0:
            return inside
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise MissingDependencyError("system user 'postgres' missing", hint=PG_HINT) from None
        return [*inside, shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"]

    def _check_reachable_by_postgres(self) -> None:
        """initdb runs as 'postgres': every parent folder must let others through."""
        for parent in self.root.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                raise ServiceStartError(
                    f"PostgreSQL data under {self.root} is unreachable for the postgres user: "
                    f"{parent} is mode {oct(mode & 0o777)}",
                    hint=f"chmod o+x {parent}, or put the cluster elsewhere",
                )

    def _run(self, argv: list[str], *, what: str, timeout: float) -> None:
        try:
            res = subprocess.run(self._as_owner() + argv, capture_output=True, timeout=timeout,
                                 check=False)
        except subprocess.TimeoutExpired as exc:
            raise WaitTimeout(f"PostgreSQL {what} did not finish in {timeout:g}s",
                              hint=f"see {self.log_path}") from exc
        if res.returncode != 0:
            out = (res.stdout + res.stderr).decode(errors="replace").strip().splitlines()[-8:]
            raise ServiceStartError(
                f"PostgreSQL {what} failed: " + " | ".join(line for line in out if line),
                hint=f"see {self.log_path}", detail=tail(self.log_path, 8),
            )

    def start(self, *, timeout: float = 60.0) -> PgEndpoint:
        bindir = find_pg_bindir()
        if self.netns:  # a fresh namespace: nothing else listens there
            port = self._requested_port or 5432
        else:
            port = self._requested_port or free_port(self.address)
            require_free(self.address, port, what="PostgreSQL")
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            self._check_reachable_by_postgres()
            pw = pwd.getpwnam("postgres")
            for p in (self.root, self.socket_dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            os.chmod(self.root, 0o755)
        if not (self.datadir / "PG_VERSION").exists():
            self._run([str(bindir / "initdb"), "-D", str(self.datadir), "-A", "trust",
                       "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions"],
                      what="initdb", timeout=timeout)
            if self.hba:
                conf = self.datadir / "pg_hba.conf"
                conf.write_text("\n".join(self.hba) + "\n" + conf.read_text())
        opts = (f"-p {port} -k {self.socket_dir} -c listen_addresses={self.address} "
                "-c fsync=off -c full_page_writes=off "
                + ("-c max_connections=40 -c shared_buffers=16MB -c max_wal_senders=0 "
                   "-c autovacuum_max_workers=1" if self.small else "-c max_connections=200"))
        if self.logical:  # a slot per prefecture, and room for their initial table syncs
            opts += (" -c wal_level=logical -c max_replication_slots=64 -c max_wal_senders=64"
                     " -c max_logical_replication_workers=16")
        self._run([str(bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log_path),
                   "-w", "-t", str(int(timeout)), "-o", opts, "start"],
                  what="start", timeout=timeout + 5)
        self.pid = self._read_pid()
        self.endpoint = PgEndpoint(self.address, port, str(self.socket_dir), "postgres",
                                   self.dbname)
        self._ensure_database(bindir, timeout)
        return self.endpoint

    def _read_pid(self) -> int:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError) as exc:
            raise ServiceStartError("PostgreSQL started but wrote no postmaster.pid",
                                    hint=f"see {self.log_path}") from exc

    def _ensure_database(self, bindir: Path, timeout: float) -> None:
        assert self.endpoint is not None
        psql = [str(bindir / "psql"), "-h", str(self.socket_dir), "-p", str(self.endpoint.port),
                "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c"]
        # psql is in the server package's bindir too; CREATE DATABASE has no IF NOT EXISTS.
        exists_q = f"SELECT 1 FROM pg_database WHERE datname = '{self.dbname}'"
        res = subprocess.run([*self._as_owner(), *psql, exists_q], capture_output=True,
                             timeout=timeout, check=False)
        if res.stdout.strip() != b"1":
            self._run([*psql, f'CREATE DATABASE "{self.dbname}"'], what="create database",
                      timeout=timeout)

    def stop(self, *, timeout: float = 20.0) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        with contextlib.suppress(ServiceStartError, WaitTimeout):
            self._run([str(find_pg_bindir() / "pg_ctl"), "-D", str(self.datadir), "-m", "fast",
                       "-w", "-t", str(int(timeout)), "stop"], what="stop", timeout=timeout + 5)
        if not wait_pid_gone(pid, timeout=2.0):
            stop_pid(pid)

    def kill(self) -> None:
        """Stop abruptly (immediate mode): for DB-outage tests."""
        if self.pid is not None:
            self._run([str(find_pg_bindir() / "pg_ctl"), "-D", str(self.datadir), "-m",
                       "immediate", "-w", "stop"], what="stop", timeout=20)
            wait_pid_gone(self.pid, timeout=10)
            self.pid = None

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
