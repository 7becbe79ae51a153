"""`pbxctl lab up|down|status|phones|call|tour`: the province lab on this machine (namespaces)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from pbxctl.cli.env import Env, Verbs, major, new_table, run_in_namespace, verbs
from pbxctl.core.errors import UsageError
from pbxctl.core.redact import redacted
from pbxctl.pbx.asterisk_modules import SUPPORTED


def cmd_lab_up(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.lab.lifecycle import lab_dir, lab_up

    root = lab_dir(dict(env.environ))
    progress = (lambda _m: None) if args.json else (lambda m: env.err.print(f"  [green]✓[/] {m}"))
    state = lab_up(root, progress=progress, asterisk_bin=env.environ.get("PBXCTL_ASTERISK_BIN"),
                   major=major(args, env),
                   inventory=Path(args.inventory) if args.inventory else None,
                   prefectures=args.prefectures.split(",") if args.prefectures else None,
                   hold_down=args.hold_down, always_open=args.always_open)
    return _print_netlab(state.netns, env, as_json=args.json)


def _print_netlab(data: dict[str, object], env: Env, *, as_json: bool) -> int:
    from pbxctl.lab.netlab import NetState

    net = NetState(**data)  # type: ignore[arg-type]
    if as_json:
        env.stdout.write(json.dumps(redacted(data), indent=2) + "\n")
        return 0
    table = new_table(f"pbxctl lab up --inventory — namespaces pbx{net.tag}-*")
    for col in ("node", "switch A", "switch B", "runs"):
        table.add_column(col)
    runs: dict[str, list[str]] = {}
    for site, info in net.sites.items():
        runs.setdefault(info["node"], []).append(f"Asterisk {site} (pid {info['pid']})")
    for node, info in net.phones.items():
        runs.setdefault(node, []).append(f"{len(info['phones'])} phone(s)")
    for info in net.ivrs.values():
        runs.setdefault(info["node"], []).append("IVR + replica PostgreSQL")
    runs.setdefault("pbx", []).extend(["CTI", "PostgreSQL", "dispatcher"])
    for node, addr in net.nodes.items():
        table.add_row(node, addr["a"], addr["b"],
                      ", ".join(runs.get(node, ["PSTN media gateway (lab call, drills)"])))
    env.out.print(table)
    env.out.print(f"every node: `pbxctl uplink run` (active-backup); every gateway: `pbxctl "
                  f"survive run` (hold-down {net.hold_down:g} s)")
    if net.console:
        from pbxctl.lab.province import LAB_CONSOLE_ADMIN, LAB_CONSOLE_PASSWORD

        env.out.print(f"web console: {net.console['url']} — sign in with a seat id (e.g. "
                      f"{_first_agent(net)}, or {LAB_CONSOLE_ADMIN}) and the lab password "
                      f"{LAB_CONSOLE_PASSWORD!r}")
    env.out.print(f"try: pbxctl lab call --prefecture {net.prefectures[0]} --keys 0   "
                  f"(the tour: pbxctl lab tour; a fault: pbxctl drill run wan-cut "
                  f"--prefecture {net.prefectures[0]})")
    env.out.print("stop everything with: pbxctl lab down")
    return 0


def cmd_lab_down(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.lab.lifecycle import lab_dir, lab_down

    stopped = lab_down(lab_dir(dict(env.environ)), keep_files=args.keep_files,
                       progress=lambda m: env.err.print(f"  [green]✓[/] {m}"))
    env.out.print(f"lab down: stopped {len(stopped)} process(es)")
    return 0


def _first_agent(net: Any) -> str:
    from provisioning.inventory import load_inventory

    agents = load_inventory(Path(net.inventory)).prefecture(net.prefectures[0]).agents
    return agents[0].id if agents else "a seat id"


def cmd_lab_status(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.lab.lifecycle import lab_dir, lab_status

    status = lab_status(lab_dir(dict(env.environ)))
    if args.json:
        env.stdout.write(json.dumps(status, indent=2) + "\n")
    elif not status["up"]:
        env.out.print(f"no lab in {status['root']}")
    else:
        for pid, alive in status["alive"].items():
            env.out.print(f"pid {pid}: {'running' if alive else 'gone'}")
        console = status.get("netns", {}).get("console", {})
        if console.get("url"):
            env.out.print(f"web console: {console['url']}")
    return 0 if status["up"] else 3


def _netlab(env: Env) -> tuple[Path, dict[str, Any]]:
    from pbxctl.lab.lifecycle import LabState, lab_dir

    root = lab_dir(dict(env.environ))
    lab = LabState.load(root)
    if lab is None or not lab.netns:
        raise UsageError(f"no province lab in {root}",
                         hint="start one: pbxctl lab up --inventory <province.yaml>")
    return root, lab.netns


def cmd_lab_phones(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.lab.province import phone_rows, set_phone_mode

    _, state = _netlab(env)
    if args.action == "set":
        if not args.seat or not args.mode:
            raise UsageError("usage: pbxctl lab phones set SEAT free|busy|away")
        for line in set_phone_mode(state, args.seat, args.mode):
            env.out.print(f"  {line}")
        env.out.print(f"{args.seat}: {args.mode}")
        return 0
    rows = phone_rows(state)
    if args.json:
        env.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return 0
    table = new_table("lab phones")
    for col in ("seat", "kind", "prefecture", "address", "mode", "registrations"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["seat"], r["kind"], r["prefecture"], r["address"], r["mode"],
                      ", ".join(f"{site}: {st}" for site, st in r["registrations"].items()))
    env.out.print(table)
    return 0 if all(st == "registered" for r in rows for st in r["registrations"].values()) else 1


def cmd_lab_call(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.lab.labcall import CallPlan, parse_keys, place
    from pbxctl.lab.netlab import NetState, node_names

    root, data = _netlab(env)
    state = NetState(**data)
    if args.prefecture not in state.prefectures:
        raise UsageError(f"prefecture {args.prefecture!r} is not in the lab "
                         f"(valid: {', '.join(state.prefectures)})")
    keys = parse_keys(args.keys or "")
    if env.environ.get("PBXCTL_CALL_NODE") != state.tag:
        # The call comes from the prefecture's PSTN media gateway: run on that node.
        ns = state.ns(node_names(args.prefecture)["pstn"])
        argv = ["lab", "call", "--prefecture", args.prefecture, "--talk", f"{args.talk:g}",
                "--keys", " ".join(keys), *(["--did", args.did] if args.did else []),
                *(["--from", args.caller] if args.caller else []),
                *(["--json"] if args.json else [])]
        return run_in_namespace(env, ns, argv, marker=("PBXCTL_CALL_NODE", state.tag))
    from provisioning.inventory import load_inventory

    pref = load_inventory(Path(state.inventory)).prefecture(args.prefecture)
    plan = CallPlan(prefecture=args.prefecture, did=args.did or pref.dids[0],
                    caller=args.caller or f"{pref.area_codes[0]}88880000"[:12], keys=keys,
                    talk=args.talk)
    report = place(state, plan, workdir=root / "calls" / f"call-{int(time.time() * 1000)}",
                   progress=lambda m: env.err.print(f"  [cyan]…[/] {m}"))
    if args.json:
        env.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=1) + "\n")
    else:
        _print_call(report, env)
    return 0 if report.ok else 1


def _print_call(report: Any, env: Env) -> None:
    table = new_table(f"call {report.did} from {report.caller} "
                        f"({'ok' if report.ok else 'FAILED'})")
    for col in ("t (s)", "site", "what", "detail"):
        table.add_column(col)
    for s in report.timeline:
        table.add_row(f"{s.t:.2f}", s.site, s.what,
                      ", ".join(f"{k}={v}" for k, v in s.detail.items() if v))
    env.out.print(table)
    for svc in report.services:
        if "db" in svc:
            env.out.print(f"bill read back: {svc['Period']} {svc['Amount']} due {svc['Due']}; "
                          f"PostgreSQL: {svc['db']}")
    for r in report.records:
        env.out.print(f"call record {r['site']} {r['uniqueid']} origin={r['origin']} "
                      f"queue={r['queue']} agent={r['agent']} talk={r['talk_s']} s")
    if report.recording:
        env.out.print(f"recording {report.recording['path']} ({report.recording['bytes']} "
                      f"bytes, {report.recording['status']})")
    for p in report.problems:
        env.err.print(f"[red]problem:[/] {p}")


def cmd_lab_tour(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.lab.netlab import NetState, node_names

    root, data = _netlab(env)
    state = NetState(**data)
    if env.environ.get("PBXCTL_CALL_NODE") != state.tag:
        ns = state.ns(node_names(state.prefectures[0])["pstn"])
        argv = ["lab", "tour", *(["--json"] if args.json else []),
                *(["--only", args.only] if args.only else [])]
        return run_in_namespace(env, ns, argv, marker=("PBXCTL_CALL_NODE", state.tag))
    from pbxctl.lab.tour import Row, Tour

    started = time.monotonic()

    def emit(row: Row) -> None:
        mark = "[green]✓[/]" if row.ok else "[red]✗[/]"
        if args.json:
            env.stdout.write(json.dumps({**row.as_dict(), "at_s": round(time.monotonic()
                                                                         - started, 1)},
                                        ensure_ascii=False) + "\n")
            env.stdout.flush()
        else:
            env.out.print(f"{mark} [bold]{row.step}[/] — {row.patent}\n    {row.happened}\n"
                          f"    [dim]proof: {row.proof}[/]")

    tour = Tour(state, root=root, emit=emit,
                progress=lambda m: env.err.print(f"  [cyan]…[/] {m}"))
    tour.only = {s.strip() for s in (args.only or "").split(",") if s.strip()}
    rows = tour.run()
    if not args.json:
        table = new_table(f"the tour ({time.monotonic() - started:.0f} s)")
        for col in ("step", "what the patent asks", "what happened (measured)", "proof"):
            table.add_column(col)
        for r in rows:
            table.add_row(("" if r.ok else "✗ ") + r.step, r.patent, r.happened, r.proof)
        env.out.print(table)
        pref = state.prefectures[0]
        env.out.print(f"your own call:  pbxctl lab call --prefecture {pref} --keys \"1 "
                      "<account>#\"   (or --keys 0 for an agent)")
        env.out.print("watch it:       pbxctl status watch   (queues, agents, calls of every PBX)")
        env.out.print("stop the lab:   pbxctl lab down")
    return 0 if rows and all(r.ok for r in rows) else 1


def register(nouns: Verbs) -> None:
    lab = verbs(nouns, "lab", "bring the local lab up or down")
    up = lab.add_parser("up", help="the whole province in network namespaces: PBXs, data, "
                                   "prompts, CTI, collectors, dispatcher, phones")
    up.add_argument("--json", action="store_true", help="print the lab state as JSON")
    up.add_argument("--asterisk", type=int, choices=SUPPORTED,
                    help="Asterisk major to run (default: PBXCTL_ASTERISK, else 22)")
    up.add_argument("--inventory", help="the province to bring up (each site on its own node, "
                                        "two switches, real links); default: the shipped "
                                        "example, prefectures HZ,NB")
    up.add_argument("--prefectures", help="these prefectures (comma-separated codes, or all); "
                                          "default: all of --inventory, HZ,NB of the "
                                          "shipped example")
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
    ph = lab.add_parser("phones", help="the phone bank: every seat's phone and registration; "
                                       "`set SEAT free|busy|away`")
    ph.add_argument("action", nargs="?", choices=("list", "set"), default="list")
    ph.add_argument("seat", nargs="?")
    ph.add_argument("mode", nargs="?")
    ph.add_argument("--json", action="store_true")
    ph.set_defaults(func=cmd_lab_phones)
    call = lab.add_parser("call", help="place one real call from a prefecture's PSTN node and "
                                       "print its timeline across sites")
    call.add_argument("--prefecture", required=True)
    call.add_argument("--did", help="default: the prefecture's first DID")
    call.add_argument("--from", dest="caller", help="caller number (default: <area>88880000)")
    call.add_argument("--keys", default="", help='DTMF groups, e.g. "1 3301010001#"')
    call.add_argument("--talk", type=float, default=5.0,
                      help="seconds to talk once someone answers (default 5)")
    call.add_argument("--json", action="store_true")
    call.set_defaults(func=cmd_lab_call)
    tour = lab.add_parser("tour", help="the guided tour of the province lab (make demo)")
    tour.add_argument("--json", action="store_true", help="one JSON line per step")
    tour.add_argument("--only", help="these steps only, e.g. 1,7 (default: all)")
    tour.set_defaults(func=cmd_lab_tour)
