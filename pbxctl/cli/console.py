"""`pbxctl console serve|passwd`: the web console for the seats (docs/console.md).

Options: command line > PBXCTL_CONSOLE_* > the ``console`` section of the config file >
defaults. The database comes from the shared ``database`` section, its password from the
secrets file; a seat's console password comes on standard input, never on the command line.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import os
import signal
import socket
import sys
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbxctl.cli.env import (
    Env,
    Verbs,
    config_arg,
    config_of,
    conninfo,
    daemon_logging,
    dsn_arg,
    verbs,
)
from pbxctl.cli.env import inventory as load_inv
from pbxctl.cli.env import store as open_store
from pbxctl.core.config import Option, resolve
from pbxctl.core.errors import InputError, UsageError

if TYPE_CHECKING:
    from pbxctl.pbx.ami import AmiClient
    from pbxctl.pbx.esl_inbound import InboundEsl

OPTIONS = (
    Option("host", str, "127.0.0.1"), Option("port", int, 8480),
    Option("inventory", str, ""),
    Option("allow", list, ["127.0.0.0/8"],
           help="networks browsers (or the reverse proxy) may connect from"),
    Option("forwarded_allow_ips", str, "",
           help="the reverse proxy's address: trust its X-Forwarded-For / -Proto"),
    Option("cookie_secure", bool, True), Option("recordings_root", str, ""),
    Option("session_idle_minutes", int, 30), Option("session_max_hours", int, 12),
    # Screen pops and agents' ready/paused: the province PBX's AMI, user pbxctl-console.
    Option("ami_host", str, "", help="the province PBX's AMI address (empty: no screen pops)"),
    Option("ami_port", int, 5038), Option("ami_user", str, "pbxctl-console"),
    Option("ami_secret", str, "", secret=True),
    Option("ami_source", str, "", help="local address to connect from (manager.conf permits "
                                       "the CTI hosts)"),
    # A FreeSWITCH province instead: its inbound event socket (mod_callcenter's events).
    Option("esl_host", str, "", help="the province FreeSWITCH's event socket address"),
    Option("esl_port", int, 8021), Option("esl_secret", str, "", secret=True),
    Option("esl_source", str, "", help="local address to connect from (the site's ACL "
                                       "admits the CTI hosts)"),
)

def cmd_console_serve(args: argparse.Namespace, env: Env) -> int:
    import uvicorn

    from pbxctl.console.app import ConsoleDeps, ConsoleSettings, create_app
    from pbxctl.console.calls import CallFeed, LiveCalls
    from pbxctl.console.calls_esl import EslCallFeed
    from pbxctl.console.guard import AllowClients
    from pbxctl.console.live import OrderFeed
    from pbxctl.console.server import ConsoleServer

    got = resolve("console", OPTIONS, cli=vars(args), environ=env.environ,
                  config=config_of(args, env))
    if not got["inventory"]:
        raise UsageError("console serve needs --inventory (or console.inventory in the "
                         "config file)")
    try:
        allow = [ip_network(str(n), strict=False) for n in got["allow"]]
    except ValueError as exc:
        raise InputError(f"console.allow: {exc}") from None
    inv = load_inv(got["inventory"])
    dsn = conninfo(args, env)
    settings = ConsoleSettings(
        cookie_secure=got["cookie_secure"],
        session_idle=timedelta(minutes=got["session_idle_minutes"]),
        session_max=timedelta(hours=got["session_max_hours"]),
        recordings_root=Path(got["recordings_root"]) if got["recordings_root"] else None)
    calls: LiveCalls | None = None
    if got["esl_host"]:
        if not got["esl_secret"]:
            raise UsageError("console.esl_host is set but console.esl_secret is not",
                             hint="the province site's operations secret (INVENTORY."
                                  "secrets.yaml: ami.<pbx>) in the config's secrets file")
        calls = EslCallFeed(functools.partial(_esl, got))
    elif got["ami_host"]:
        if not got["ami_secret"]:
            raise UsageError("console.ami_host is set but console.ami_secret is not",
                             hint="put the pbxctl-console secret (INVENTORY.secrets.yaml: "
                                  "ami_console.<pbx>) in the config's secrets file")
        calls = CallFeed(functools.partial(_ami, got))
    daemon_logging()
    store = open_store(args, env)
    store.open()
    try:
        deps = ConsoleDeps(store=store, inventory=inv, feed=OrderFeed(dsn),
                           settings=settings, calls=calls)
        app = create_app(deps)
        fd = _listen_fd(args, env)
        where = {"fd": fd} if fd is not None else {"host": got["host"], "port": got["port"]}
        config = uvicorn.Config(
            AllowClients(app, allow), **where, log_config=None,
            access_log=False, proxy_headers=bool(got["forwarded_allow_ips"]),
            forwarded_allow_ips=got["forwarded_allow_ips"] or None,
            timeout_graceful_shutdown=3, server_header=False)
        # uvicorn handles SIGTERM (graceful shutdown), then raises it again once done so the
        # process dies by it; a handler of our own in its place makes the end exit 0, as
        # every other pbxctl daemon does on SIGTERM.
        signal.signal(signal.SIGTERM, lambda *_: None)
        ConsoleServer(config, deps=deps).run()
    finally:
        store.close()
    return 0

def _listen_fd(args: argparse.Namespace, env: Env) -> int | None:
    """A listening socket handed over by whoever started us: ``--listen-fd N`` (the lab makes
    the socket on the host's loopback and runs the console in the province's namespace), or
    systemd socket activation (``LISTEN_FDS=1`` for this PID: the socket is fd 3)."""
    fd: int | None = args.listen_fd
    what = f"--listen-fd {fd}"
    if fd is None and env.environ.get("LISTEN_PID") == str(os.getpid()):
        if env.environ.get("LISTEN_FDS") != "1":
            raise UsageError(f"systemd passed LISTEN_FDS={env.environ.get('LISTEN_FDS')}: "
                             "the console takes exactly one socket")
        fd, what = 3, "systemd's socket (fd 3)"
    if fd is None:
        return None
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError as exc:
        raise InputError(f"{what}: not an open socket ({exc.strerror})") from None
    with sock:
        if sock.type != socket.SOCK_STREAM or sock.getsockopt(
                socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0:
            raise InputError(f"{what}: not a listening stream socket")
    return fd


def _esl(got: dict[str, Any]) -> InboundEsl:
    from pbxctl.pbx.esl_inbound import opened

    return opened(host=got["esl_host"], port=got["esl_port"], password=got["esl_secret"],
                  source=got["esl_source"] or None)


def _ami(got: dict[str, Any]) -> AmiClient:
    from pbxctl.pbx.ami import AmiClient

    client = AmiClient(host=got["ami_host"], port=got["ami_port"], username=got["ami_user"],
                       secret=got["ami_secret"], source=got["ami_source"] or None, timeout=5.0)
    client.connect()
    return client


def cmd_console_passwd(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.console.passwords import hash_password
    from pbxctl.console.roles import principal
    from pbxctl.data.console_auth import set_password

    if not args.admin:
        if not args.inventory:
            raise UsageError("a seat's password needs --inventory (to check the seat exists)"
                             " — or --admin for an administrator login")
        if principal(load_inv(args.inventory), args.login, admin=False) is None:
            raise InputError(f"{args.login!r}: no such seat in {args.inventory}")
    stdin = env.stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass(f"new console password for {args.login}: ")
        if getpass.getpass("again: ") != first:
            raise InputError("the two passwords differ: nothing changed")
    else:
        first = stdin.readline().rstrip("\n")
    hashed = hash_password(first)
    with open_store(args, env) as store:
        set_password(store, login=args.login, password_hash=hashed, admin=args.admin)
    env.out.print(f"console password of {args.login} set; its open sessions ended")
    return 0


def register(nouns: Verbs) -> None:
    console = verbs(nouns, "console", "the web console for agents, county seats, supervisors")
    serve = console.add_parser("serve", help="run the console (HTTP; behind a reverse proxy)")
    serve.add_argument("--inventory", help="the province inventory (seats and their roles)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="default 8480")
    serve.add_argument("--listen-fd", type=int, metavar="FD",
                       help="serve on this inherited listening socket instead of --host/--port")
    serve.add_argument("--allow", action="append", metavar="NETWORK",
                       help="clients allowed (default 127.0.0.0/8: the proxy on this host)")
    dsn_arg(serve)
    serve.set_defaults(func=cmd_console_serve)
    pw = console.add_parser("passwd", help="set a seat's console password (read from stdin)")
    pw.add_argument("login", help="a seat id of the inventory, or an administrator's name")
    pw.add_argument("--inventory", help="the province inventory")
    pw.add_argument("--admin", action="store_true", help="an administrator login")
    dsn_arg(pw)
    config_arg(pw)
    pw.set_defaults(func=cmd_console_passwd)

