"""`pbxctl drill run KIND`: a fault in the namespace lab while SIPp places calls, measured."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pbxctl.cli.env import Env, Verbs, inventory, run_in_namespace, verbs
from pbxctl.core.errors import UsageError


def _drill_argv(args: argparse.Namespace) -> list[str]:
    argv = ["drill", "run", args.fault, "--prefecture", args.prefecture, "--switch", args.switch,
            "--rate", f"{args.rate:g}", "--hold", f"{args.hold:g}", "--before",
            f"{args.before:g}", "--outage", f"{args.outage:g}", "--after", f"{args.after:g}",
            "--flaps", str(args.flaps), "--period", f"{args.period:g}"]
    return [*argv, "--json"] if args.json else argv


def cmd_drill(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.lab.lifecycle import LabState, lab_dir
    from pbxctl.lab.netlab import NetState, node_names

    root = lab_dir(dict(env.environ))
    lab = LabState.load(root)
    if lab is None or not lab.netns:
        raise UsageError(f"no namespace lab in {root}",
                         hint="start one: pbxctl lab up --inventory <province.yaml>")
    state = NetState(**lab.netns)
    if args.prefecture not in state.prefectures:
        raise UsageError(f"prefecture {args.prefecture!r} is not in the lab "
                         f"({', '.join(state.prefectures)})")
    if env.environ.get("PBXCTL_DRILL_NODE") != state.tag:
        # The calls come from the prefecture's PSTN gateway: run the drill on that node.
        ns = state.ns(node_names(args.prefecture)["pstn"])
        return run_in_namespace(env, ns, _drill_argv(args),
                                marker=("PBXCTL_DRILL_NODE", state.tag))
    return _drill_here(args, env, root, state)


def _drill_here(args: argparse.Namespace, env: Env, root: Any, state: Any) -> int:
    from pbxctl.lab.drill import DrillPlan, run_drill, targets

    inv = inventory(state.inventory)
    pref = inv.prefecture(args.prefecture)
    plan = DrillPlan(fault=args.fault, prefecture=args.prefecture, switch=args.switch,
                     rate=args.rate, hold=args.hold, before=args.before, outage=args.outage,
                     after=args.after, flaps=args.flaps, period=args.period)
    report = run_drill(state, plan, workdir=root / "drills" / f"{args.fault}-{int(time.time())}",
                       gateway=pref.gateway.name, did=pref.dids[0],
                       progress=lambda m: env.err.print(f"  [cyan]…[/] {m}"))
    checks = targets(report, hold_down=state.hold_down,
                     rtp_timeout=inv.province.options.rtp_timeout)
    if args.json:
        env.stdout.write(json.dumps({**report.as_dict(), "targets": checks}, indent=2) + "\n")
    else:
        _print_report(env, report, checks)
    return 0 if all(ok for _, _, ok in checks) else 1


def _print_report(env: Env, report: Any, checks: list[tuple[str, str, bool]]) -> None:
    def s(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f} s"

    env.out.print(f"drill {report.fault} on {report.prefecture}: {report.calls} calls "
                  f"(served by {report.served_by})")
    rows = [("time to detect", s(report.detect_s)),
            ("time until new calls served normally", s(report.recover_s)),
            ("failed new calls", str(report.failed_new_calls)),
            ("dropped established calls", str(report.dropped_established)),
            ("dead-audio calls torn down after", s(report.dead_audio_teardown_s)),
            ("call setup before the fault (median)", s(report.baseline_setup_s)),
            ("worst call setup during the fault", s(report.max_setup_in_window_s)),
            ("slow calls after detection", str(report.slow_after_detection)),
            ("failback after restore", s(report.failback_s)),
            ("mode switches", str(report.mode_switches))]
    for name, value in rows:
        env.out.print(f"  {name:<38} {value}", markup=False, highlight=False)
    for name, want, ok in checks:
        mark = "[green]met[/]" if ok else "[red]MISSED[/]"
        env.out.print(f"  target {name}: {want} — {mark}")
    if report.relay:
        env.out.print("  relay: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                             for k, v in sorted(report.relay.items())),
                      markup=False, highlight=False)
    for note in report.notes:
        env.out.print(f"  note: {note}", markup=False, highlight=False)


def register(nouns: Verbs) -> None:
    drill = verbs(nouns, "drill", "faults in the namespace lab, measured")
    dr = drill.add_parser("run", help="run a fault in the namespace lab while SIPp places "
                                      "calls; report what it cost")
    dr.add_argument("fault", choices=("link-down", "wan-cut", "flap", "cti-hang"))
    dr.add_argument("--prefecture", required=True)
    dr.add_argument("--switch", default="a", type=str.lower, choices=("a", "b"),
                    help="link-down: which switch dies (default A)")
    dr.add_argument("--rate", type=float, default=1.0, help="new calls per second")
    dr.add_argument("--hold", type=float, default=20.0, help="seconds each caller stays")
    dr.add_argument("--before", type=float, default=8.0, help="calls before the fault (s)")
    dr.add_argument("--outage", type=float, default=20.0, help="how long the fault lasts (s)")
    dr.add_argument("--after", type=float, default=0.0,
                    help="calls after the restore (s; default hold-down + 10)")
    dr.add_argument("--flaps", type=int, default=3, help="flap: how many down/up cycles")
    dr.add_argument("--period", type=float, default=4.0, help="flap: seconds per cycle")
    dr.add_argument("--json", action="store_true")
    dr.set_defaults(func=cmd_drill)
