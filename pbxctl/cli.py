"""The `pbxctl` command: `pbxctl <noun> <verb>`, a thin command table, errors → exit codes here.

``main()`` takes its environment (argv, environ, streams) so tests run it in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import PbxctlError, UsageError

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


@dataclass
class Env:
    environ: Mapping[str, str]
    out: Console
    err: Console
    stdout: TextIO


Command = Callable[[argparse.Namespace, Env], int]


# -- lab ---------------------------------------------------------------------------------------
def cmd_lab_up(args: argparse.Namespace, env: Env) -> int:
    from .lab import lab_dir, lab_up

    root = lab_dir(dict(env.environ))
    progress = (lambda _m: None) if args.json else (lambda m: env.err.print(f"  [green]✓[/] {m}"))
    state = lab_up(root, progress=progress, asterisk_bin=env.environ.get("PBXCTL_ASTERISK_BIN"))
    if args.json:
        env.stdout.write(json.dumps({"root": state.root, "pg": state.pg,
                                     "asterisk": state.asterisk, "agi": state.agi,
                                     "calls": state.calls}, indent=2) + "\n")
        return 0
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
    return 0


def cmd_lab_down(args: argparse.Namespace, env: Env) -> int:
    from .lab import lab_dir, lab_down

    stopped = lab_down(lab_dir(dict(env.environ)), keep_files=args.keep_files,
                       progress=lambda m: env.err.print(f"  [green]✓[/] {m}"))
    env.out.print(f"lab down: stopped {len(stopped)} process(es)")
    return 0


def cmd_lab_status(args: argparse.Namespace, env: Env) -> int:
    from .lab import lab_dir, lab_status

    status = lab_status(lab_dir(dict(env.environ)))
    if args.json:
        env.stdout.write(json.dumps(status, indent=2) + "\n")
    elif not status["up"]:
        env.out.print(f"no lab in {status['root']}")
    else:
        for pid, alive in status["alive"].items():
            env.out.print(f"pid {pid}: {'running' if alive else 'gone'}")
    return 0 if status["up"] else 3


# -- agi ---------------------------------------------------------------------------------------
def cmd_agi_serve(args: argparse.Namespace, env: Env) -> int:
    from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
    from ivr_scripts.handlers import default_registry
    from ivr_scripts.registry import HandlerContext

    from .store import Store, StoreConfig

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    store = None
    if args.dsn:
        store = Store(config=StoreConfig(conninfo=args.dsn))
        store.open(wait=False)  # the server must come up even while the DB is down
    server = FastAgiServer(registry=default_registry(), context=HandlerContext(store=store),
                           config=AgiServerConfig(host=args.host, port=args.port,
                                                  backlog=args.backlog))
    server.start()

    def _stop(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    logging.getLogger("pbxctl.agi").info("listening on %s:%d", *server.address)
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()
    left = server.shutdown(grace=args.grace)
    if store is not None:
        store.close()
    return 0 if left == 0 else 1


# -- db ----------------------------------------------------------------------------------------
def cmd_db_migrate(args: argparse.Namespace, env: Env) -> int:
    from .store import Store, StoreConfig

    with Store(config=StoreConfig(conninfo=args.dsn)) as store:
        applied = store.migrate()
        version = store.schema_version()
    env.out.print(f"schema at version {version}; applied: {', '.join(applied) or 'nothing'}")
    return 0


def cmd_version(args: argparse.Namespace, env: Env) -> int:
    env.stdout.write(f"pbxctl {__version__}\n")
    return 0


# -- table and parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pbxctl", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")
    nouns = p.add_subparsers(dest="noun", metavar="NOUN")

    lab = nouns.add_parser("lab", help="bring the local lab up or down").add_subparsers(
        dest="verb", metavar="VERB")
    up = lab.add_parser("up", help="start PostgreSQL, Asterisk, the FastAGI server; place a call")
    up.add_argument("--json", action="store_true", help="print the lab state as JSON")
    up.set_defaults(func=cmd_lab_up)
    down = lab.add_parser("down", help="stop every process the lab started")
    down.add_argument("--keep-files", action="store_true", help="keep logs and data")
    down.set_defaults(func=cmd_lab_down)
    st = lab.add_parser("status", help="what the lab runs")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_lab_status)

    agi = nouns.add_parser("agi", help="the FastAGI server").add_subparsers(
        dest="verb", metavar="VERB")
    serve = agi.add_parser("serve", help="run the FastAGI server in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4573)
    serve.add_argument("--dsn", default="", help="PostgreSQL conninfo of the store")
    serve.add_argument("--backlog", type=int, default=1024)
    serve.add_argument("--grace", type=float, default=10.0,
                       help="seconds to let running calls finish on shutdown")
    serve.set_defaults(func=cmd_agi_serve)

    db = nouns.add_parser("db", help="the PostgreSQL store").add_subparsers(
        dest="verb", metavar="VERB")
    mig = db.add_parser("migrate", help="apply pending schema migrations")
    mig.add_argument("--dsn", required=True)
    mig.set_defaults(func=cmd_db_migrate)

    ver = nouns.add_parser("version", help="print the version")
    ver.set_defaults(func=cmd_version)
    return p




def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    import os

    out_stream = stdout if stdout is not None else sys.stdout
    err_stream = stderr if stderr is not None else sys.stderr
    env = Env(environ=environ if environ is not None else os.environ,
              out=Console(file=out_stream, highlight=False, soft_wrap=True),
              err=Console(file=err_stream, highlight=False, soft_wrap=True),
              stdout=out_stream)
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code or 0)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(file=err_stream)
        return UsageError.exit_code
    try:
        return func(args, env)
    except PbxctlError as exc:
        if args.verbose:
            err_stream.write(traceback.format_exc())
        err_stream.write(f"pbxctl: error: {exc.message}\n")
        if exc.hint:
            err_stream.write(f"pbxctl: hint: {exc.hint}\n")
        if exc.detail:
            err_stream.write("".join(f"    | {line}\n" for line in exc.detail.splitlines()))
        return exc.exit_code
    except KeyboardInterrupt:
        err_stream.write("pbxctl: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 -- the one place unexpected errors become an exit code
        if args.verbose:
            err_stream.write(traceback.format_exc())
        err_stream.write(f"pbxctl: internal error: {type(exc).__name__}: {exc} "
                         "(run with -v for the traceback)\n")
        return EXIT_INTERNAL


