"""`pbxctl status`: queues, agents and active calls of every PBX, live from AMI."""

from __future__ import annotations

import argparse
import json
import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from pbxctl.cli.env import Env, Verbs, new_table, run_in_namespace, verbs
from pbxctl.core.errors import ServiceStartError, UsageError
from pbxctl.pbx.monitor import AmiTarget, ResilientAmi, SiteStatus

if TYPE_CHECKING:
    from rich.table import Table


def _bindable(address: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


def inventory_targets(path: Path, *, source: str | None) -> list[AmiTarget]:
    """Every PBX of a deployment; AMI from the CTI address when this host has it."""
    from provisioning.inventory import load_inventory
    from provisioning.render_asterisk import AMI_PORT
    from provisioning.secrets import ensure_secrets, secrets_path

    inv = load_inventory(path)
    secrets = ensure_secrets(inv, secrets_path(path), create=False)
    cti = str(inv.province.cti.a)
    src = source if source is not None else (cti if _bindable(cti) else None)
    return [AmiTarget(site.name, str(site.host.a), AMI_PORT, "pbxctl", secrets.ami[site.name],
                      src or None) for site in inv.sites()]


def lab_reentry(argv: list[str], env: Env) -> int | None:
    """Without --inventory, the running lab: its PBXs sit in namespaces, so the command runs
    again on the province node (as an operator's console on the CTI host would), with the
    lab's inventory. None when already there."""

    from pbxctl.lab.lifecycle import LabState, lab_dir
    from pbxctl.lab.netlab import NetState

    state = LabState.load(lab_dir(dict(env.environ)))
    if state is None or not state.netns:
        raise UsageError("no lab is running and no --inventory given",
                         hint="`pbxctl lab up`, or pass --inventory FILE")
    net = NetState(**state.netns)
    if env.environ.get("PBXCTL_CALL_NODE") == net.tag:
        return None
    return run_in_namespace(env, net.ns("pbx"), [*argv, "--inventory", net.inventory],
                            marker=("PBXCTL_CALL_NODE", net.tag))


def _tables(statuses: list[SiteStatus]) -> list[Table]:
    q = new_table("queues")
    for col in ("site", "queue", "waiting", "longest s", "available", "busy", "paused",
                "unavailable", "completed", "abandoned"):
        q.add_column(col, justify="right" if col not in ("site", "queue") else "left")
    a = new_table("agents")
    for col in ("site", "queue", "agent", "name", "state", "calls"):
        a.add_column(col)
    c = new_table("active calls")
    for col in ("site", "channel", "state", "caller", "where", "secs", "bridged"):
        c.add_column(col)
    for st in statuses:
        if not st.reachable:
            q.add_row(st.site, f"[red]unreachable: {st.error}[/]", *[""] * 8)
            continue
        for qv in st.queues:
            q.add_row(st.site, qv.name, str(qv.waiting), str(qv.longest_wait_s),
                      str(qv.available), str(qv.busy), str(qv.paused), str(qv.unavailable),
                      str(qv.completed), str(qv.abandoned))
        for m in st.members:
            a.add_row(st.site, m.queue, m.interface, m.name, m.state, str(m.calls_taken))
        for ch in st.channels:
            c.add_row(st.site, ch.channel, ch.state, ch.caller, ch.where, str(ch.duration_s),
                      "yes" if ch.bridged else "")
    return [q, a, c]


def freeswitch_status(args: argparse.Namespace, env: Env) -> int:
    """Active channels of a FreeSWITCH site over its inbound event socket."""
    from pbxctl.pbx.esl_inbound import InboundEsl

    if ":" not in args.freeswitch and args.inventory:
        # A site of the inventory: its event socket as rendered (the site's address, port
        # 8021) and its operations secret from the inventory's secrets file (0600).
        from provisioning.inventory import load_inventory
        from provisioning.render_freeswitch import ESL_INBOUND_PORT
        from provisioning.secrets import ensure_secrets, secrets_path

        inv = load_inventory(Path(args.inventory))
        try:
            site = inv.site(args.freeswitch)
        except KeyError:
            raise UsageError(f"--freeswitch {args.freeswitch!r}: no such site in "
                             f"{args.inventory}") from None
        secrets = ensure_secrets(inv, secrets_path(Path(args.inventory)), create=False)
        host, port, password = str(site.host.a), str(ESL_INBOUND_PORT), secrets.ami.get(
            site.name, "")
    else:
        host, _, port = args.freeswitch.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"--freeswitch {args.freeswitch!r}: give HOST:PORT (e.g. "
                             "10.0.0.5:8021), or a site name with --inventory")
        password = env.environ.get("PBXCTL_ESL_PASSWORD", "")
    if not password:  # never a well-known default: that is how event sockets get owned
        raise UsageError("no event-socket password",
                         hint="name the site with --inventory (its secret from the secrets "
                              "file), or set PBXCTL_ESL_PASSWORD")
    with InboundEsl(host=host, port=int(port), password=password, timeout=args.timeout,
                    source=args.source or None) as esl:
        rows = esl.channels()
    if args.json:
        env.stdout.write(json.dumps({"site": args.freeswitch, "channels": rows},
                                    ensure_ascii=False) + "\n")
        return 0
    table = new_table(f"active calls on {args.freeswitch} (FreeSWITCH)")
    for col in ("uuid", "direction", "caller", "destination", "application", "state"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.get("uuid", "")), str(r.get("direction", "")),
                      str(r.get("cid_num", "")), str(r.get("dest", "")),
                      str(r.get("application", "")), str(r.get("callstate", "")))
    env.out.print(table)
    return 0


def cmd_status(args: argparse.Namespace, env: Env) -> int:
    if args.freeswitch:
        return freeswitch_status(args, env)
    if not args.inventory:
        code = lab_reentry(_argv_of(args), env)
        if code is not None:
            return code
    targets = inventory_targets(Path(args.inventory), source=args.source)
    deadlines = _deadlines(Path(args.inventory))
    if args.site:
        targets = [t for t in targets if t.site in args.site]
    links = [ResilientAmi(t, timeout=args.timeout) for t in targets]
    frames = 0
    try:
        while True:
            statuses = [link.status() for link in links]
            frames += 1
            if args.json:
                env.stdout.write(json.dumps([asdict(s) for s in statuses],
                                            ensure_ascii=False) + "\n")
            else:
                if args.watch and env.out.is_terminal:
                    env.out.clear()
                env.out.print(time.strftime("pbxctl status %F %T"))
                env.out.print(deadlines, markup=False, highlight=False)
                for table in _tables(statuses):
                    env.out.print(table)
            if not args.watch or (args.count and frames >= args.count):
                break
            time.sleep(args.watch)
    finally:
        for link in links:
            link.close()
    down = [s.site for s in statuses if not s.reachable]
    if down:
        raise ServiceStartError(f"{len(down)} PBX(s) unreachable over AMI: {', '.join(down)}",
                                hint="is Asterisk running there, and does manager.conf "
                                     "permit this host?")
    return 0


def _deadlines(inventory: Path) -> str:
    """What a caller can wait on the CTI at most (the gateways' call-time relays)."""
    from provisioning.inventory import load_inventory

    o = load_inventory(inventory).province.options
    return (f"CTI waits bounded by each gateway's relay (:{o.relay_port}): connect "
            f"{o.cti_connect_timeout_ms} ms per path, next command {o.cti_command_timeout_ms} "
            f"ms, session {o.cti_session_budget_s} s")


def _argv_of(args: argparse.Namespace) -> list[str]:
    argv = ["status", "watch" if getattr(args, "watch", None) else "show"]
    for flag, value in (("--site", args.site), ("--count", getattr(args, "count", None)),
                        ("--timeout", args.timeout), ("--every", getattr(args, "watch", None))):
        for v in (value if isinstance(value, list) else [value]):
            if v is not None:
                argv += [flag, str(v)]
    return [*argv, "--json"] if args.json else argv


def cmd_status_watch(args: argparse.Namespace, env: Env) -> int:
    args.watch = args.every
    return cmd_status(args, env)


def _status_args(st: argparse.ArgumentParser) -> None:
    st.add_argument("--inventory", help="a deployment's inventory (default: the running lab)")
    st.add_argument("--freeswitch", metavar="SITE|HOST:PORT",
                    help="a FreeSWITCH site's event socket instead: a site of --inventory "
                         "(its secret from the secrets file), or HOST:PORT with "
                         "PBXCTL_ESL_PASSWORD")
    st.add_argument("--site", action="append", help="only this site (repeatable)")
    st.add_argument("--source", help="local address to connect to AMI from "
                                     "(default: the CTI address if this host has it)")
    st.add_argument("--count", type=int, help="with --watch: stop after this many refreshes")
    st.add_argument("--timeout", type=float, default=5.0, help="per AMI wait")
    st.add_argument("--json", action="store_true", help="one JSON line per refresh")


def register(nouns: Verbs) -> None:
    status = verbs(nouns, "status", "live queues, agents and calls of every PBX (AMI)")
    show = status.add_parser("show", help="one snapshot of every PBX")
    _status_args(show)
    show.add_argument("--watch", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    show.set_defaults(func=cmd_status)
    watch = status.add_parser("watch", help="refresh the snapshot every few seconds")
    _status_args(watch)
    watch.add_argument("--every", type=float, default=2.0, metavar="SECONDS",
                       help="seconds between refreshes (default 2)")
    watch.set_defaults(func=cmd_status_watch)
