"""`pbxctl relay serve|status`: the call-time relay beside a gateway or LSS (no caller waits on
the WAN: pbxctl/services/relay.py).

Options: command line > PBXCTL_RELAY_* > the ``relay`` section of the config file > defaults;
the CTI paths and deadlines come from the inventory (``options.cti_*``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from pbxctl.cli.env import Env, Verbs, config_arg, config_of, daemon_logging, verbs
from pbxctl.core.config import Option, resolve
from pbxctl.core.errors import ServiceStartError, UsageError

OPTIONS = (Option("host", str, "127.0.0.1"), Option("port", int, 0),
           Option("inventory", str, ""), Option("site", str, ""), Option("allow", list, []))


def cmd_relay_serve(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.services.relay import serve, settings_for_site
    from provisioning.inventory import load_inventory

    got = resolve("relay", OPTIONS, cli=vars(args), environ=env.environ,
                  config=config_of(args, env))
    if not got["inventory"] or not got["site"]:
        raise UsageError("relay serve needs --inventory and --site (or relay.inventory and "
                         "relay.site in the config file)")
    inv = load_inventory(Path(got["inventory"]))
    settings = settings_for_site(inv, got["site"], host=got["host"],
                                 port=got["port"] or None, allow=got["allow"])
    daemon_logging()
    return serve(settings, environ=dict(env.environ))


def cmd_relay_status(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.services.relay import relay_status

    try:
        data = asyncio.run(relay_status(args.host, args.port, timeout=args.timeout))
    except (OSError, TimeoutError, ValueError) as exc:
        raise ServiceStartError(f"relay {args.host}:{args.port} did not answer: {exc}",
                                hint="is `pbxctl relay serve` running there?") from exc
    if args.json:
        env.stdout.write(json.dumps(data) + "\n")
        return 0
    env.out.print(f"relay {args.host}:{args.port}: {data['sessions']} sessions now; paths "
                  + ", ".join(f"{k} {v}" for k, v in dict(data["paths"]).items()))  # type: ignore[call-overload]
    counters = dict(data["counters"])  # type: ignore[call-overload]
    if counters:
        env.out.print("  " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                       for k, v in sorted(counters.items())))
    return 0


def register(nouns: Verbs) -> None:
    relay = verbs(nouns, "relay", "the call-time relay beside a gateway (bounded CTI waits)")
    serve = relay.add_parser("serve", help="run the relay in the foreground")
    serve.add_argument("--inventory", help="the province inventory (CTI paths, deadlines)")
    serve.add_argument("--site", help="the gateway or LSS this relay serves, e.g. hz-gw")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="default: options.relay_port (4574)")
    serve.add_argument("--allow", action="append", metavar="ADDRESS[/BITS]",
                       help="also accept this peer (loopback and the site's own addresses "
                            "always are)")
    config_arg(serve)
    serve.set_defaults(func=cmd_relay_serve)
    status = relay.add_parser("status", help="a running relay's paths and deadline hits")
    status.add_argument("--host", default="127.0.0.1")
    status.add_argument("--port", type=int, default=4574)
    status.add_argument("--timeout", type=float, default=3.0)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_relay_status)
