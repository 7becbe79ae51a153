"""`pbxctl survive`: the survivability watcher of one prefecture gateway (runs beside it)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cli import Env


def cmd_survive(args: argparse.Namespace, env: Env) -> int:
    from .ami import AmiClient
    from .survivability import ModeMachine, watch

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    client = AmiClient(host=args.ami_host, port=args.ami_port, username=args.ami_user,
                       secret=env.environ.get("PBXCTL_AMI_SECRET", ""), source=args.ami_source)
    client.connect()
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        watch(client, ModeMachine(hold_down=args.hold_down), stop=stop,
              on_switch=lambda sw: env.out.print(f"mode {sw.to}: {sw.reason}"))
    finally:
        client.close()
    return 0


def register(nouns: Any) -> None:
    sv = nouns.add_parser("survive", help="switch a gateway to its LSS when the province is "
                                          "gone, back after a hold-down (AMI watcher)")
    sv.add_argument("--ami-host", required=True, help="the gateway's manager address")
    sv.add_argument("--ami-port", type=int, default=5038)
    sv.add_argument("--ami-user", default="pbxctl")
    sv.add_argument("--ami-source", help="local address to connect from")
    sv.add_argument("--hold-down", type=float, default=30.0,
                    help="seconds the province must stay reachable before failback "
                         "(inventory: options.failback_hold_down)")
    sv.set_defaults(func=cmd_survive)
