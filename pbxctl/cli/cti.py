"""`pbxctl agi serve|health` and `pbxctl esl serve`: the CTI, for Asterisk and FreeSWITCH sites.

Both read the ``agi`` / ``esl`` section of the config file (command line > PBXCTL_AGI_* /
PBXCTL_ESL_* > config file > defaults); the database password only from the config's secrets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pbxctl.cli.env import Env, Verbs, config_arg, config_of, conninfo, daemon_logging, verbs
from pbxctl.core.config import Option, resolve

AGI_OPTIONS = (Option("host", list, ["127.0.0.1"]), Option("port", int, 4573),
               Option("allow", list, []), Option("max_sessions", int, 4000),
               Option("inventory", str, ""), Option("fixed_welcome", str, ""),
               Option("backlog", int, 1024), Option("grace", float, 10.0))
ESL_OPTIONS = (Option("host", list, ["127.0.0.1"]), Option("port", int, 8084),
               Option("allow", list, []),
               Option("inventory", str, ""), Option("timeout", float, 10.0),
               Option("max_connections", int, 500), Option("grace", float, 10.0))


def _serve(args: argparse.Namespace, env: Env, transport: str) -> int:
    from pbxctl.services.cti import CtiSettings, serve

    options = AGI_OPTIONS if transport == "agi" else ESL_OPTIONS
    cfg = config_of(args, env)
    got = resolve(transport, options, cli=vars(args), environ=env.environ, config=cfg)
    daemon_logging()
    fixed = got.get("fixed_welcome") or ""
    settings = CtiSettings(
        transport="agi" if transport == "agi" else "esl", hosts=tuple(got["host"]),
        port=got["port"], conninfo=conninfo(args, env, required=False),
        inventory=Path(got["inventory"]) if got["inventory"] else None,
        fixed_welcome={"default": fixed} if fixed else {},
        backlog=got.get("backlog", 1024), grace=got["grace"], allow=tuple(got["allow"]),
        max_sessions=got.get("max_sessions", 4000),
        timeout=got.get("timeout", 10.0), max_connections=got.get("max_connections", 500))
    return serve(settings, environ=env.environ)


def cmd_agi_serve(args: argparse.Namespace, env: Env) -> int:
    return _serve(args, env, "agi")


def cmd_esl_serve(args: argparse.Namespace, env: Env) -> int:
    return _serve(args, env, "esl")


def cmd_agi_health(args: argparse.Namespace, env: Env) -> int:
    from ivr_scripts.health import report

    ms, counters = report(args.host, args.port, timeout=args.timeout)
    if args.json:
        env.stdout.write(json.dumps({"ms": round(ms, 1), **counters}) + "\n")
        return 0
    env.out.print(f"agi://{args.host}:{args.port}/ping answered in {ms:.1f} ms")
    if counters:
        env.out.print("  " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                       for k, v in sorted(counters.items())))
    return 0


def _serve_args(sp: argparse.ArgumentParser, *, default_port: int) -> None:
    sp.add_argument("--host", action="append", metavar="ADDRESS",
                    help="listen on this address; repeat for path A and path B "
                         "(default 127.0.0.1)")
    sp.add_argument("--port", type=int, help=f"default {default_port}")
    sp.add_argument("--dsn", help="PostgreSQL conninfo without a password (database.dsn)")
    sp.add_argument("--inventory", help="the province inventory: enables the route handler "
                                        "(DIDs, area codes, business hours) and work orders")
    sp.add_argument("--allow", action="append", metavar="ADDRESS[/BITS]",
                    help="also accept this peer (an ops host, a probe); the inventory's PBXs "
                         "are always allowed, anything else is refused")
    sp.add_argument("--grace", type=float,
                    help="seconds to let running calls finish on shutdown (default 10)")
    config_arg(sp)


def register(nouns: Verbs) -> None:
    agi = verbs(nouns, "agi", "the FastAGI server (the CTI for Asterisk sites)")
    serve = agi.add_parser("serve", help="run the FastAGI server in the foreground")
    _serve_args(serve, default_port=4573)
    serve.add_argument("--backlog", type=int)
    serve.add_argument("--max-sessions", type=int,
                       help="concurrent sessions; past it new connections are refused at once "
                            "(default 4000)")
    serve.add_argument("--fixed-welcome",
                       help="play this stock prompt as welcome instead of the catalogue's "
                            "(the one-site lab demo)")
    serve.set_defaults(func=cmd_agi_serve)
    health = agi.add_parser("health", help="run the ping route like Asterisk would")
    health.add_argument("--host", default="127.0.0.1")
    health.add_argument("--port", type=int, default=4573)
    health.add_argument("--timeout", type=float, default=3.0)
    health.add_argument("--json", action="store_true")
    health.set_defaults(func=cmd_agi_health)

    esl = verbs(nouns, "esl", "the outbound ESL server (the CTI for FreeSWITCH sites)")
    es = esl.add_parser("serve", help="run the outbound ESL server in the foreground")
    _serve_args(es, default_port=8084)
    es.add_argument("--timeout", type=float, help="bound on each FreeSWITCH command (s)")
    es.add_argument("--max-connections", type=int)
    es.set_defaults(func=cmd_esl_serve)
