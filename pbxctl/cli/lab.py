"""`pbxctl lab up|down|status`: the lab on this machine (loopback, or network namespaces)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from pbxctl.cli.env import Env, Verbs, major, verbs
from pbxctl.core.redact import redacted
from pbxctl.pbx.asterisk_modules import SUPPORTED


def cmd_lab_up(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.lab.loopback import lab_dir, lab_up

    root = lab_dir(dict(env.environ))
    progress = (lambda _m: None) if args.json else (lambda m: env.err.print(f"  [green]✓[/] {m}"))
    state = lab_up(root, progress=progress, asterisk_bin=env.environ.get("PBXCTL_ASTERISK_BIN"),
                   major=major(args, env),
                   inventory=Path(args.inventory) if args.inventory else None,
                   prefectures=args.prefectures.split(",") if args.prefectures else None,
                   hold_down=args.hold_down, always_open=args.always_open)
    if state.netns:
        return _print_netlab(state.netns, env, as_json=args.json)
    if args.json:
        env.stdout.write(json.dumps(redacted({"root": state.root, "pg": state.pg,
                                              "asterisk": state.asterisk, "agi": state.agi,
                                              "calls": state.calls}), indent=2) + "\n")
        return 0
    _print_loopback(state, env)
    return 0


def _print_loopback(state: object, env: Env) -> None:
    from pbxctl.lab.loopback import LabState

    assert isinstance(state, LabState)
    table = Table(title=f"pbxctl lab up — {state.root}")
    for col in ("component", "pid", "where"):
        table.add_column(col)
    table.add_row("PostgreSQL", str(state.pg["pid"]), f"127.0.0.1:{state.pg['port']}")
    table.add_row("FastAGI server", str(state.agi["pid"]),
                  f"agi://{state.agi['host']}:{state.agi['port']}/")
    for ast in state.asterisk:
        table.add_row(f"Asterisk {ast['name']}", str(ast["pid"]), f"sip:{ast['sip']}")
    env.out.print(table)
    for call in state.calls:
        ok = call["sipp_successful"] == 1 and call["branch"] == "central"
        env.out.print(
            f"[{'green' if ok else 'red'}]call[/] DID {call['did']} from {call['caller']}: "
            f"SIPp successful={call['sipp_successful']} failed={call['sipp_failed']} "
            f"(RTP from {call['rtp_pcap']}); dialplan branch={call['branch']} "
            f"prompt={call['prompt']} playback={call['playback']}; "
            f"AGI rows in PostgreSQL={call['agi_rows_in_db']}"
        )
    env.out.print("stop everything with: pbxctl lab down")


def _print_netlab(data: dict[str, object], env: Env, *, as_json: bool) -> int:
    from pbxctl.lab.netlab import NetState

    net = NetState(**data)  # type: ignore[arg-type]
    if as_json:
        env.stdout.write(json.dumps(redacted(data), indent=2) + "\n")
        return 0
    table = Table(title=f"pbxctl lab up --inventory — namespaces pbx{net.tag}-*")
    for col in ("node", "switch A", "switch B", "runs"):
        table.add_column(col)
    runs: dict[str, list[str]] = {}
    for site, info in net.sites.items():
        runs.setdefault(info["node"], []).append(f"Asterisk {site} (pid {info['pid']})")
    for node, addr in net.nodes.items():
        table.add_row(node, addr["a"], addr["b"], ", ".join(runs.get(node, ["SIPp (drills)"])))
    env.out.print(table)
    env.out.print(f"every node: `pbxctl uplink run` (active-backup); every gateway: `pbxctl "
                  f"survive run` (hold-down {net.hold_down:g} s)")
    env.out.print("try: pbxctl drill run wan-cut --prefecture " + net.prefectures[0])
    env.out.print("stop everything with: pbxctl lab down")
    return 0


def cmd_lab_down(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.lab.loopback import lab_dir, lab_down

    stopped = lab_down(lab_dir(dict(env.environ)), keep_files=args.keep_files,
                       progress=lambda m: env.err.print(f"  [green]✓[/] {m}"))
    env.out.print(f"lab down: stopped {len(stopped)} process(es)")
    return 0


def cmd_lab_status(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.lab.loopback import lab_dir, lab_status

    status = lab_status(lab_dir(dict(env.environ)))
    if args.json:
        env.stdout.write(json.dumps(status, indent=2) + "\n")
    elif not status["up"]:
        env.out.print(f"no lab in {status['root']}")
    else:
        for pid, alive in status["alive"].items():
            env.out.print(f"pid {pid}: {'running' if alive else 'gone'}")
    return 0 if status["up"] else 3


def register(nouns: Verbs) -> None:
    lab = verbs(nouns, "lab", "bring the local lab up or down")
    up = lab.add_parser("up", help="start PostgreSQL, Asterisk, the FastAGI server; place a call")
    up.add_argument("--json", action="store_true", help="print the lab state as JSON")
    up.add_argument("--asterisk", type=int, choices=SUPPORTED,
                    help="Asterisk major to run (default: PBXCTL_ASTERISK, else 22)")
    up.add_argument("--inventory", help="bring this province up in network namespaces (each "
                                        "site on its own node, two switches, real links)")
    up.add_argument("--prefectures", help="with --inventory: only these (comma-separated "
                                          "codes); default all")
    up.add_argument("--hold-down", type=float,
                    help="failback hold-down in seconds (default: the inventory's)")
    up.add_argument("--always-open", action="store_true",
                    help="with --inventory: drop business hours from the lab's copy, so "
                         "drills reach agents at any hour")
    up.set_defaults(func=cmd_lab_up)
    down = lab.add_parser("down", help="stop every process the lab started")
    down.add_argument("--keep-files", action="store_true", help="keep logs and data")
    down.set_defaults(func=cmd_lab_down)
    st = lab.add_parser("status", help="what the lab runs")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_lab_status)
