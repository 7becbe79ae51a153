"""`pbxctl survive run`: the survivability watcher of one prefecture gateway (runs beside it).

Settings from the ``survive`` section of the config file (command line > PBXCTL_SURVIVE_* >
config file > defaults); the AMI secret only from the config's secrets (``survive.ami_secret``)
or the environment (PBXCTL_SURVIVE_AMI_SECRET, formerly PBXCTL_AMI_SECRET) — never argv.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING

from pbxctl.cli.env import Env, Verbs, config_arg, config_of, daemon_logging, verbs
from pbxctl.core.config import Option, resolve
from pbxctl.core.errors import CommandFailed, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pbxctl.pbx.ami import AmiClient
    from pbxctl.services.survivability import HealthTracker, ModeMachine
    from provisioning.failback import Gate

OPTIONS = (
    Option("ami_host", str, ""), Option("ami_port", int, 5038),
    Option("ami_user", str, "pbxctl-watch"),
    Option("ami_source", str, ""), Option("ami_secret", str, "", secret=True),
    Option("hold_down", float, 30.0), Option("failback_rule", str, "hold-down"),
    Option("failback_window", str, ""), Option("timezone", str, "Asia/Shanghai"),
    Option("cti", list, []), Option("probe_interval", float, 1.0),
    Option("probe_timeout", float, 1.0), Option("probe_failures", int, 2),
    # Report the mode and paths to the province's database (the supervisor wallboard); needs
    # the shared database section. Empty: no report.
    Option("report_site", str, ""), Option("report_prefecture", str, ""))


def settings(args: argparse.Namespace, env: Env) -> SimpleNamespace:
    """Every setting checked before anything connects or starts."""
    cli = {k: v for k, v in vars(args).items() if k != "ami_secret"}
    got = SimpleNamespace(**resolve("survive", OPTIONS, cli=cli, environ=env.environ,
                                    config=config_of(args, env)))
    if not got.ami_host:
        raise UsageError("no gateway AMI address",
                         hint="pass --ami-host or set survive.ami_host in the config file")
    if got.failback_rule not in ("hold-down", "lss-idle"):
        raise UsageError(f"failback rule {got.failback_rule!r}: hold-down or lss-idle")
    got.targets = [_host_port(str(t)) for t in got.cti]
    return got


def cmd_survive(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.pbx.ami import AmiClient
    from pbxctl.services.survivability import HealthTracker, ModeMachine, watch

    s = settings(args, env)
    daemon_logging()
    client = AmiClient(host=s.ami_host, port=s.ami_port, username=s.ami_user,
                       secret=s.ami_secret, source=s.ami_source or None)
    machine = ModeMachine(hold_down=s.hold_down, gate=_failback_gate(s, client))
    tracker = HealthTracker(failures=s.probe_failures, successes=s.probe_failures)
    client.connect()
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    probe_error: list[BaseException] = []
    probe = _start_probe(s, client, tracker, stop, probe_error) if s.targets else None
    on_state, reporter, wake = _reporter(s, args, env, stop)
    try:
        watch(client, machine, stop=stop, on_state=on_state,
              on_switch=lambda sw: env.out.print(f"mode {sw.to}: {sw.reason}"))
    finally:
        stop.set()
        if reporter is not None:
            wake()
            reporter.join(timeout=10)
        if probe is not None:
            probe.join(timeout=s.probe_timeout + 5)
        client.close()
    if probe_error:
        raise CommandFailed(f"CTI probe stopped: {probe_error[0]!r}",
                            hint="the supervisor (systemd) restarts the watcher")
    return 0


def _reporter(s: SimpleNamespace, args: argparse.Namespace, env: Env, stop: threading.Event
              ) -> tuple[Callable[[ModeMachine], None] | None, threading.Thread | None,
                         Callable[[], None]]:
    """The province state report (pbxctl/services/state_report.py), when configured."""
    if not s.report_site or not s.report_prefecture:
        return None, None, lambda: None
    import time

    from pbxctl.cli.env import conninfo
    from pbxctl.data.store import Store, StoreConfig
    from pbxctl.services.state_report import StateReporter, state_of

    store = Store(config=StoreConfig(conninfo=conninfo(args, env), min_size=0, max_size=1,
                                     connect_timeout=2.0, statement_timeout_ms=2000))
    store.open(wait=False)  # the province may be unreachable right now: no wait at start
    rep = StateReporter(store, site=s.report_site, prefecture=s.report_prefecture)
    started = time.time()

    def on_state(m: ModeMachine) -> None:
        rep.offer(state_of(m.mode, m.reachable, m.switches[-1].at if m.switches else None,
                           started_wall=started, now_mono=time.monotonic(),
                           now_wall=time.time()))

    def run() -> None:
        try:
            rep.run(stop)
        finally:
            store.close()

    thread = threading.Thread(target=run, name="state-report", daemon=True)
    thread.start()
    return on_state, thread, rep.wake


def _start_probe(s: SimpleNamespace, client: AmiClient, tracker: HealthTracker,
                 stop: threading.Event, errors: list[BaseException]) -> threading.Thread:
    from ivr_scripts.health import check
    from pbxctl.services.survivability import probe_cti

    def run_probe() -> None:
        try:
            probe_cti(client, s.targets, check=check, stop=stop, tracker=tracker,
                      interval=s.probe_interval, timeout=s.probe_timeout)
        except BaseException as exc:  # the watcher must not go on half-blind
            errors.append(exc)
            stop.set()
            raise

    probe = threading.Thread(target=run_probe, daemon=True)
    probe.start()
    return probe


def _failback_gate(s: SimpleNamespace, client: AmiClient) -> Gate | None:
    from pbxctl.services.survivability import count_lss_calls
    from provisioning.failback import Window, make_gate

    window = Window.parse(s.failback_window, where="failback window") \
        if s.failback_window else None
    return make_gate(rule=s.failback_rule, window=window, timezone=s.timezone,
                     lss_calls=lambda: count_lss_calls(client))


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--cti {text!r}: expected HOST:PORT")
    return host, int(port)


def register(nouns: Verbs) -> None:
    survive = verbs(nouns, "survive", "survivable mode of a prefecture gateway")
    sv = survive.add_parser("run", help="switch a gateway to its LSS when the province is "
                                        "gone, back after a hold-down (AMI watcher)")
    config_arg(sv)
    sv.add_argument("--ami-host", help="the gateway's manager address")
    sv.add_argument("--ami-port", type=int, help="default 5038")
    sv.add_argument("--ami-user", help="default pbxctl-watch (the gateway's watcher user)")
    sv.add_argument("--ami-source", help="local address to connect from")
    sv.add_argument("--hold-down", type=float,
                    help="seconds the province must stay reachable before failback "
                         "(default 30; inventory: options.failback_hold_down)")
    sv.add_argument("--failback-rule", choices=("hold-down", "lss-idle"),
                    help="lss-idle: also wait until the LSS carries no call "
                         "(inventory: options.failback_rule)")
    sv.add_argument("--failback-window", metavar="HH:MM-HH:MM",
                    help="fail back only within this local-time window "
                         "(inventory: options.failback_window)")
    sv.add_argument("--timezone", help="the province's time zone, for the window")
    sv.add_argument("--report-site", help="report mode and paths to the province's database "
                                          "as this gateway (needs the database section)")
    sv.add_argument("--report-prefecture", help="… of this prefecture (the wallboard's row)")
    sv.add_argument("--cti", action="append", metavar="HOST:PORT",
                    help="the province CTI's FastAGI, once per path: probe it (AGI ping) and "
                         "bypass it while it does not answer")
    sv.add_argument("--probe-interval", type=float, help="default 1 s")
    sv.add_argument("--probe-timeout", type=float,
                    help="seconds a ping may take before it counts as failed (default 1)")
    sv.add_argument("--probe-failures", type=int,
                    help="failed (and then good) probes in a row before switching (default 2)")
    sv.set_defaults(func=cmd_survive)
