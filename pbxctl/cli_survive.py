"""`pbxctl survive`: the survivability watcher of one prefecture gateway (runs beside it)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cli import Env


def cmd_survive(args: argparse.Namespace, env: Env) -> int:
    from .ami import AmiClient
    from .survivability import HealthTracker, ModeMachine, watch

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    client = AmiClient(host=args.ami_host, port=args.ami_port, username=args.ami_user,
                       secret=env.environ.get("PBXCTL_AMI_SECRET", ""), source=args.ami_source)
    # Every argument checked before anything connects or starts.
    targets = [_host_port(t) for t in args.cti]
    machine = ModeMachine(hold_down=args.hold_down, gate=_failback_gate(args, client))
    tracker = HealthTracker(failures=args.probe_failures, successes=args.probe_failures)
    client.connect()
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    probe_error: list[BaseException] = []
    probe = _start_probe(args, client, targets, tracker, stop, probe_error) if targets else None
    try:
        watch(client, machine, stop=stop,
              on_switch=lambda sw: env.out.print(f"mode {sw.to}: {sw.reason}"))
    finally:
        stop.set()
        if probe is not None:
            probe.join(timeout=args.probe_timeout + 5)
        client.close()
    if probe_error:
        from .errors import CommandFailed
        raise CommandFailed(f"CTI probe stopped: {probe_error[0]!r}",
                            hint="the supervisor (systemd) restarts the watcher")
    return 0


def _start_probe(args: argparse.Namespace, client: Any, targets: list[tuple[str, int]],
                 tracker: Any, stop: threading.Event,
                 errors: list[BaseException]) -> threading.Thread:
    from ivr_scripts.health import check

    from .survivability import probe_cti

    def run_probe() -> None:
        try:
            probe_cti(client, targets, check=check, stop=stop, tracker=tracker,
                      interval=args.probe_interval, timeout=args.probe_timeout)
        except BaseException as exc:  # the watcher must not go on half-blind
            errors.append(exc)
            stop.set()
            raise

    probe = threading.Thread(target=run_probe, daemon=True)
    probe.start()
    return probe


def _failback_gate(args: argparse.Namespace, client: Any) -> Any:
    from .failback import Window, count_lss_calls, make_gate

    window = Window.parse(args.failback_window, where="--failback-window") \
        if args.failback_window else None
    return make_gate(rule=args.failback_rule, window=window, timezone=args.timezone,
                     lss_calls=lambda: count_lss_calls(
                         "\n".join(client.command("core show channels concise"))))


def _host_port(text: str) -> tuple[str, int]:
    from .errors import UsageError

    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--cti {text!r}: expected HOST:PORT")
    return host, int(port)


def cmd_uplink(args: argparse.Namespace, env: Env) -> int:
    from . import uplink

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ports = [p for p in args.ports.split(",") if p]
    if len(ports) < 2:
        from .errors import UsageError
        raise UsageError("--ports needs the primary and at least one backup, e.g. etha,ethb")
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def report(ch: uplink.Change) -> None:
        # One parseable line per change: `pbxctl drill` reads the stamp.
        env.stdout.write(f"uplink at={ch.at:.3f} active={ch.active} previous={ch.previous} "
                         f"reason={ch.reason}\n")
        env.stdout.flush()

    uplink.run(ports, stop=stop, on_change=report)
    return 0


def _drill_argv(args: argparse.Namespace) -> list[str]:
    argv = ["drill", args.fault, "--prefecture", args.prefecture, "--switch", args.switch,
            "--rate", f"{args.rate:g}", "--hold", f"{args.hold:g}", "--before",
            f"{args.before:g}", "--outage", f"{args.outage:g}", "--after", f"{args.after:g}",
            "--flaps", str(args.flaps), "--period", f"{args.period:g}"]
    return [*argv, "--json"] if args.json else argv


def cmd_drill(args: argparse.Namespace, env: Env) -> int:
    import os
    import subprocess

    from .errors import UsageError
    from .lab import LabState, lab_dir
    from .netlab import NetState, node_names

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
        with subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "pbxctl",
                               *_drill_argv(args)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **env.environ,
                                   "PBXCTL_DRILL_NODE": state.tag}) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:  # the report, passed on as it comes
                env.stdout.write(line)
                env.stdout.flush()
        return proc.returncode
    return _drill_here(args, env, root, state)


def _drill_here(args: argparse.Namespace, env: Env, root: Any, state: Any) -> int:
    import json
    from pathlib import Path

    from provisioning.inventory import load_inventory

    from .drill import DrillPlan, run_drill, targets

    inv = load_inventory(Path(state.inventory))
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
    for note in report.notes:
        env.out.print(f"  note: {note}", markup=False, highlight=False)


def register(nouns: Any) -> None:
    dr = nouns.add_parser("drill", help="run a fault in the namespace lab while SIPp places "
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

    up = nouns.add_parser("uplink", help="active-backup between a server's links to switch A "
                                         "and switch B (runs on the server)")
    up.add_argument("--ports", default="etha,ethb",
                    help="bridge ports, primary first (default: etha,ethb)")
    up.set_defaults(func=cmd_uplink)

    sv = nouns.add_parser("survive", help="switch a gateway to its LSS when the province is "
                                          "gone, back after a hold-down (AMI watcher)")
    sv.add_argument("--ami-host", required=True, help="the gateway's manager address")
    sv.add_argument("--ami-port", type=int, default=5038)
    sv.add_argument("--ami-user", default="pbxctl")
    sv.add_argument("--ami-source", help="local address to connect from")
    sv.add_argument("--hold-down", type=float, default=30.0,
                    help="seconds the province must stay reachable before failback "
                         "(inventory: options.failback_hold_down)")
    sv.add_argument("--failback-rule", default="hold-down", choices=("hold-down", "lss-idle"),
                    help="lss-idle: also wait until the LSS carries no call "
                         "(inventory: options.failback_rule)")
    sv.add_argument("--failback-window", default="", metavar="HH:MM-HH:MM",
                    help="fail back only within this local-time window "
                         "(inventory: options.failback_window)")
    sv.add_argument("--timezone", default="Asia/Shanghai",
                    help="the province's time zone, for the window")
    sv.add_argument("--cti", action="append", default=[], metavar="HOST:PORT",
                    help="the province CTI's FastAGI, once per path: probe it (AGI ping) and "
                         "bypass it while it does not answer")
    sv.add_argument("--probe-interval", type=float, default=1.0)
    sv.add_argument("--probe-timeout", type=float, default=1.0,
                    help="seconds a ping may take before it counts as failed")
    sv.add_argument("--probe-failures", type=int, default=2,
                    help="failed (and then good) probes in a row before switching")
    sv.set_defaults(func=cmd_survive)
