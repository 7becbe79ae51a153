"""The province's services in the namespace lab: data, prompts, CTI, collectors, dispatcher,
phones — started the way an operator starts them (`pbxctl` commands reading one config file),
so the lab proves the production path.

* PostgreSQL runs on the province node (its path-A and path-B addresses); services reach it
  through its socket directory (namespaces share the file system), the DSN in the lab's
  config file — never on a command line.
* `pbxctl db migrate --sample-data`, `prompts init`, `prompts publish` (every gateway and LSS
  gets the catalogue on its own disk: central control, local playback), `prompts status`.
* `pbxctl agi serve` on the CTI's two addresses with the catalogue and routing from the
  database; one `pbxctl calls collect --follow` per PBX; `pbxctl orders dispatcher` beside
  the province PBX.
* The phone bank (phones.py): a node per prefecture for its agents and county seats, one
  on the province's networks for the supervisors.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import yaml

from pbxctl.core.errors import ServiceStartError, UsageError
from pbxctl.core.files import atomic_write
from pbxctl.data.store import Store
from pbxctl.lab.daemons import Daemon
from pbxctl.lab.phones import PhoneSpec, spec_file_data
from pbxctl.lab.sandbox.netns import ns_exec
from pbxctl.lab.sandbox.postgres import PostgresCluster
from pbxctl.ops.publish import prompt_dir
from provisioning.model import Inventory, Prefecture, Seat
from provisioning.render_replication import role_name
from provisioning.secrets import Secrets

Progress = Callable[[str], None]
PHONE_HOST_BASE = 100  # phones take .100, .101, … of their node's path-A network
SUPERVISOR_NODE = "supph"


def phone_node(code: str) -> str:
    return f"{code.lower()}ph"


def _addresses(net: IPv4Network, count: int, where: str) -> list[IPv4Address]:
    hosts = list(net.hosts())
    if PHONE_HOST_BASE + count > len(hosts):
        raise UsageError(f"{where}: {count} phones do not fit in {net} from host "
                         f".{PHONE_HOST_BASE} on", hint="use a larger network in the inventory")
    return hosts[PHONE_HOST_BASE - 1:PHONE_HOST_BASE - 1 + count]


def phone_plan(inv: Inventory, chosen: list[Prefecture]
               ) -> dict[str, tuple[dict[str, list[IPv4Address]], list[PhoneSpec]]]:
    """Phone node → (its links, its phones): agents and county seats of each chosen
    prefecture on that prefecture's networks; the supervisors on the province's."""
    prov = inv.province
    pbx = str(prov.pbx.a)
    out: dict[str, tuple[dict[str, list[IPv4Address]], list[PhoneSpec]]] = {}
    pref_of = {s.id: p.code for p in chosen for s in p.agents}
    pref_of.update({s.id: c.prefecture for c in inv.counties for s in c.seats})

    def node(name: str, net_a: IPv4Network, net_b: IPv4Network, seats: list[tuple[Seat, str]],
             registrars: Callable[[Seat], tuple[tuple[str, str], ...]],
             queues: Callable[[Seat], tuple[tuple[str, str], ...]]) -> None:
        addrs = _addresses(net_a, len(seats), name)
        specs = [PhoneSpec(seat=s.id, kind=kind, prefecture=pref_of.get(s.id, ""),
                           address=str(a), registrars=registrars(s), queues=queues(s))
                 for (s, kind), a in zip(seats, addrs, strict=True)]
        # The node's first address on B keeps its path-B link alive (uplink keeper).
        out[name] = ({"a": addrs or _addresses(net_a, 1, name),
                      "b": _addresses(net_b, 1, name)}, specs)

    sups = [(s, "supervisor") for s in prov.supervisors]
    node(SUPERVISOR_NODE, prov.network_a, prov.network_b, sups,
         lambda s: ((prov.pbx.name, pbx),), lambda s: ((prov.pbx.name, prov.supervisor_queue),))
    for p in chosen:
        seats = [(s, "agent") for s in p.agents]
        seats += [(s, "county") for c in inv.counties_of(p.code) for s in c.seats]

        def reg(s: Seat, p: Prefecture = p) -> tuple[tuple[str, str], ...]:
            if s.kind == "agent":  # as in production: the province, and its own LSS
                return ((prov.pbx.name, pbx), (p.lss.name, str(p.lss.a)))
            return ((prov.pbx.name, pbx),)

        def queues(s: Seat, p: Prefecture = p) -> tuple[tuple[str, str], ...]:
            if s.kind == "agent":
                return ((prov.pbx.name, p.queue), (p.lss.name, p.lss_queue))
            return ()

        node(phone_node(p.code), p.network_a, p.network_b, seats, reg, queues)
    return out


def write_config(root: Path, *, inventory: Path, inv: Inventory, sec: Secrets,
                 socket_dir: Path, pg_port: int) -> Path:
    """The lab's /etc/pbxctl: pbxctl.yaml + secrets.yaml (0600), as an operator writes it."""
    etc = root / "etc"
    prov = inv.province
    cfg = {
        "secrets_file": "secrets.yaml",
        "database": {"dsn": f"host={socket_dir} port={pg_port} dbname=pbxctl user=postgres "
                            "connect_timeout=3"},
        # allow: the CTI host's own health probe (`pbxctl agi health` there) besides the PBXs.
        "agi": {"host": [str(prov.cti.a), str(prov.cti.b)], "port": prov.cti_port,
                "inventory": str(inventory), "grace": 5,
                "allow": [str(prov.cti.a), str(prov.cti.b)]},
        "dispatcher": {"inventory": str(inventory), "ami_host": str(prov.pbx.a),
                       "ami_source": str(prov.pbx.a),
                       "prompt_dir": str(prompt_dir(root, prov.pbx.name)),
                       "tts_cache": str(tts_cache()), "interval": 1},
        # The web console runs on the province node; its listener is made on the host's
        # loopback by `lab up` (plain HTTP there: no Secure cookies), recordings below the lab.
        "console": {"inventory": str(inventory), "cookie_secure": False,
                    "recordings_root": str(root), "ami_host": str(prov.pbx.a),
                    "ami_source": str(prov.cti.a)},
    }
    secrets = {"dispatcher": {"ami_secret": sec.ami_notify[prov.pbx.name]},
               "console": {"ami_secret": sec.ami_console[prov.pbx.name]}}
    atomic_write(etc / "secrets.yaml", yaml.safe_dump(secrets), mode=0o600)
    atomic_write(etc / "pbxctl.yaml", "# written by `pbxctl lab up`\n"
                 + yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), mode=0o600)
    return etc / "pbxctl.yaml"


# Every console login of a lab has this one password: the lab is a demonstration on the
# host's loopback and the tour tells people what to type. Never used outside `lab up`.
LAB_CONSOLE_PASSWORD = "pbxctl-lab"
LAB_CONSOLE_ADMIN = "admin"
LAB_CONSOLE_PORT = 8480


def store_of(pg: dict[str, Any]) -> Store:
    """The lab's PostgreSQL, through its socket directory (reachable from any namespace)."""
    from pbxctl.data.store import StoreConfig

    store = Store(config=StoreConfig(
        conninfo=f"host={pg['socket']} port={pg['port']} dbname=pbxctl user=postgres "
                 "connect_timeout=3"))
    store.open()
    return store


def console_logins(inv: Inventory, chosen: Sequence[Prefecture]) -> list[str]:
    """The seats of the chosen prefectures (agents, county terminals) and the supervisors."""
    codes = {p.code for p in chosen}
    seats = [s.id for s in inv.province.supervisors]
    seats += [a.id for p in chosen for a in p.agents]
    seats += [s.id for c in inv.counties if c.prefecture in codes for s in c.seats]
    return seats


def set_console_passwords(store: Store, inv: Inventory, chosen: Sequence[Prefecture]
                          ) -> list[str]:
    """The lab's known console password for every seat it runs, and an administrator.
    One argon2 hash serves all (same password; hashing each would cost ~0.13 s a seat)."""
    from pbxctl.console.passwords import hash_password
    from pbxctl.data.console_auth import set_password

    hashed = hash_password(LAB_CONSOLE_PASSWORD)
    logins = console_logins(inv, chosen)
    for login in logins:
        set_password(store, login=login, password_hash=hashed, admin=False)
    set_password(store, login=LAB_CONSOLE_ADMIN, password_hash=hashed, admin=True)
    return logins


def console_listener(port: int = LAB_CONSOLE_PORT) -> socket.socket:
    """The console's listening socket on the host's loopback (the console itself runs in the
    province's namespace and inherits it): the default port, or any free one when a second
    lab or something else already has it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def tts_cache() -> Path:
    """Synthesised prompts survive labs: espeak-ng renders each text once per machine."""
    return Path(os.environ.get("PBXCTL_TTS_CACHE", str(Path.home() / ".cache/pbxctl/tts")))


def pbxctl(config: Path, *args: str, ns: str | None = None, timeout: float = 300) -> str:
    """Run one `pbxctl` command as the operator would (config from PBXCTL_CONFIG)."""
    argv = [sys.executable, "-m", "pbxctl", *args]
    if ns:
        argv = [*ns_exec(ns), *argv]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                         env={**os.environ, "PBXCTL_CONFIG": str(config)})
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ServiceStartError(f"`pbxctl {' '.join(args[:2])}` failed: {last}",
                                detail=res.stderr[-2000:])
    return res.stdout


def start_database(root: Path, inv: Inventory, ns: str, *, replicas: Sequence[Prefecture] = ()
                   ) -> tuple[PostgresCluster, dict[str, Any]]:
    """The province's PostgreSQL (wal_level=logical: it publishes each prefecture's slice).
    Each replication role may connect from its own IVR's two addresses only, with a password
    (scram): as in production, not the lab's local trust."""
    prov = inv.province
    hba = tuple(f"host pbxctl {role_name(p.code)} {addr}/32 scram-sha-256"
                for p in replicas for addr in (p.ivr_host.a, p.ivr_host.b))
    cluster = PostgresCluster(root=root / "pg", address=f"{prov.pbx.a},{prov.pbx.b}",
                              netns=ns, logical=True, hba=hba)
    endpoint = cluster.start()
    return cluster, {"pid": cluster.pid, "root": str(cluster.root), "port": endpoint.port,
                     "socket": str(cluster.socket_dir), "netns": ns}


def start_replica(root: Path, p: Prefecture, ns: str) -> dict[str, Any]:
    """A prefecture IVR's own PostgreSQL (its replica of the self-service data)."""
    cluster = PostgresCluster(root=root / "ivr" / p.code.lower() / "pg",
                              address=f"{p.ivr_host.a},{p.ivr_host.b}", netns=ns, small=True)
    endpoint = cluster.start()
    return {"pid": cluster.pid, "root": str(cluster.root), "port": endpoint.port,
            "socket": str(cluster.socket_dir), "netns": ns}


def write_ivr_config(root: Path, *, inventory: Path, inv: Inventory, p: Prefecture,
                     replica: dict[str, Any]) -> Path:
    """The IVR host's /etc/pbxctl: its local replica, `agi serve` on its two addresses for
    its gateway (and itself, for `agi health`)."""
    etc = root / "ivr" / p.code.lower() / "etc"
    cfg = {
        "database": {"dsn": f"host={replica['socket']} port={replica['port']} dbname=pbxctl "
                            "user=postgres connect_timeout=3"},
        "agi": {"host": [str(p.ivr_host.a), str(p.ivr_host.b)], "port": inv.province.cti_port,
                "inventory": str(inventory), "grace": 5,
                "allow": [str(p.gateway.a), str(p.gateway.b), str(p.ivr_host.a),
                          str(p.ivr_host.b)]},
    }
    atomic_write(etc / "pbxctl.yaml", "# written by `pbxctl lab up` (the IVR of "
                 f"{p.code})\n" + yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False),
                 mode=0o600)
    return etc / "pbxctl.yaml"


def replication_passfile(root: Path, p: Prefecture, password: str) -> Path:
    """The IVR host's passfile for its replication role: 0600, owned by postgres (the
    subscription's worker reads it), the password nowhere else on that host."""
    path = root / "ivr" / p.code.lower() / "replication.pgpass"
    atomic_write(path, f"*:*:pbxctl:{role_name(p.code)}:{password}\n", mode=0o600)
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def stop_database(info: dict[str, Any]) -> None:
    if not info.get("pid"):
        return
    cluster = PostgresCluster(root=Path(info["root"]), address="(stopping)",
                              netns=info["netns"])
    cluster.pid = int(info["pid"])
    cluster.stop()


def phone_keeper(root: Path, node: str, ns: str, specs: list[PhoneSpec], sec: Secrets
                 ) -> Daemon:
    """The keeper of one phone node, to start (its spec file, 0600, holds the passwords)."""
    workdir = root / "phones" / node
    workdir.mkdir(parents=True, exist_ok=True)
    spec_file = workdir / "spec.json"
    atomic_write(spec_file, spec_file_data(specs, {s.seat: sec.sip[s.seat] for s in specs}),
                 mode=0o600)
    argv = [*ns_exec(ns), sys.executable, "-m", "pbxctl.lab.phones",
            "--spec", str(spec_file), "--workdir", str(workdir)]
    return Daemon(node, argv, workdir / "keeper.log", "phones ready", f"phones of {node}",
                  timeout=120)


def phones_of(net_state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Seat → its spec and the keeper's workdir (from lab state)."""
    out: dict[str, dict[str, Any]] = {}
    for node, info in net_state.get("phones", {}).items():
        for spec in info.get("phones", []):
            out[spec["seat"]] = {**spec, "node": node, "workdir": info["workdir"]}
    return out


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _cli(state: dict[str, Any], site: str, command: str) -> str:
    conf = state["sites"][site]["conf"]
    res = subprocess.run([state["asterisk"], "-C", conf, "-rx", command], capture_output=True,
                         text=True, timeout=10, check=False)
    return res.stdout


def phone_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every phone of the lab: where it is, its mode, and its registration as each registrar
    PBX sees it (`pjsip show contacts`), beside what its keeper last got back."""
    from pbxctl.lab.phones import read_status

    contacts: dict[str, str] = {}
    for site in {r[0] for p in phones_of(state).values() for r in p["registrars"]}:
        if site in state["sites"]:
            contacts[site] = _cli(state, site, "pjsip show contacts")
    rows = []
    for seat, p in sorted(phones_of(state).items()):
        status = read_status(Path(p["workdir"])).get(seat, {})
        regs = {}
        for site, _host in p["registrars"]:
            seen = any(f" {seat}/sip:{seat}@{p['address']}:" in line
                       for line in contacts.get(site, "").splitlines())
            regs[site] = "registered" if seen else (status.get("errors", {}).get(site)
                                                     or "not registered")
        rows.append({"seat": seat, "kind": p["kind"], "prefecture": p["prefecture"],
                     "address": p["address"], "node": p["node"],
                     "mode": status.get("mode", "?"), "registrations": regs})
    return rows


def set_phone_mode(state: dict[str, Any], seat: str, mode: str) -> list[str]:
    """``busy``/``away``: paused in every queue it belongs to (``busy``: its phone also
    refuses calls with 486); ``free``: unpaused and answering. Returns what was done."""
    from pbxctl.lab.phones import MODES, write_mode

    phones = phones_of(state)
    if seat not in phones:
        raise UsageError(f"no phone {seat!r} in this lab",
                         hint="seats: " + ", ".join(sorted(phones)))
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    p = phones[seat]
    done = []
    for site, queue in p["queues"]:
        if site not in state["sites"]:
            continue
        if mode == "free":
            out = _cli(state, site, f"queue unpause member PJSIP/{seat} queue {queue}")
        else:
            out = _cli(state, site, f"queue pause member PJSIP/{seat} queue {queue} "
                                    f"reason {mode}")
        done.append(f"{site} {queue}: {out.strip() or 'ok'}")
    write_mode(Path(p["workdir"]), seat, mode)
    done.append(f"phone {p['address']}: {'refuses (486)' if mode == 'busy' else 'answers'}")
    return done
