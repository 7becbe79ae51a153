"""`pbxctl uplink run`: active-backup between a server's links to switch A and switch B."""

from __future__ import annotations

import argparse
import signal
import threading

from pbxctl.cli.env import Env, Verbs, config_arg, config_of, daemon_logging, verbs
from pbxctl.core.config import Option, resolve
from pbxctl.core.errors import UsageError

OPTIONS = (Option("ports", list, ["etha", "ethb"]),)


def cmd_uplink(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.services import uplink

    got = resolve("uplink", OPTIONS, cli={"ports": args.ports}, environ=env.environ,
                  config=config_of(args, env))
    ports = [str(p) for p in got["ports"] if p]
    if len(ports) < 2:
        raise UsageError("uplink ports: the primary and at least one backup, e.g. etha,ethb")
    daemon_logging()
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


def register(nouns: Verbs) -> None:
    uplink = verbs(nouns, "uplink", "a server's two links to switch A and switch B")
    up = uplink.add_parser("run", help="keep one link active, the other as backup (runs on the "
                                       "server)")
    config_arg(up)
    up.add_argument("--ports",
                    help="bridge ports, primary first (default: etha,ethb)")
    up.set_defaults(func=cmd_uplink)
