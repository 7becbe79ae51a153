"""`pbxctl calls …` and `pbxctl recordings …`: the collector and the recording index."""

from __future__ import annotations

import argparse
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbxctl.cli.env import Env, Verbs, config_of, dsn_arg, new_table, store, verbs
from pbxctl.core.ages import parse_age
from pbxctl.core.config import Option, resolve
from pbxctl.core.errors import CommandFailed, InputError, StoreUnavailable, UsageError

if TYPE_CHECKING:
    from pbxctl.services.collector import CollectorConfig

DEBIAN_LOG_DIR = "/var/log/asterisk"
DEBIAN_RECORDINGS = "/var/spool/asterisk/monitor"
DEFAULT_STATE = "/var/lib/pbxctl/collector"


_store = store

COLLECTOR_OPTIONS = (Option("log_dir", str, DEBIAN_LOG_DIR),
                     Option("recordings", str, DEBIAN_RECORDINGS),
                     Option("state", str, DEFAULT_STATE), Option("interval", float, 1.0),
                     Option("engine", str, "asterisk", help="asterisk | freeswitch"),
                     # FreeSWITCH keeps its call log open: the collector asks it to rotate.
                     Option("esl_host", str, "127.0.0.1"), Option("esl_port", int, 8021),
                     Option("esl_source", str, ""), Option("esl_secret", str, "", secret=True),
                     Option("rotate_bytes", int, 64 * 1024 * 1024))


def _collector_config(s: dict[str, Any]) -> CollectorConfig:
    from pbxctl.data.callrecords import CALL_LOG_NAME, FREESWITCH_CALL_LOG
    from pbxctl.services.collector import CollectorConfig

    common = {"recordings_dir": Path(s["recordings"]), "state_dir": Path(s["state"]),
              "rotate_bytes": s["rotate_bytes"]}
    if s["engine"] == "asterisk":
        return CollectorConfig(call_log=Path(s["log_dir"]) / CALL_LOG_NAME, **common)
    if s["engine"] != "freeswitch":
        raise InputError(f"collector.engine: {s['engine']!r} is not asterisk or freeswitch")
    if not s["esl_secret"]:
        raise UsageError("collector.engine is freeswitch but collector.esl_secret is not set",
                         hint="put the site's event-socket password in the config's secrets "
                              "file (collector.esl_secret); it rotates the call log")

    def rotate() -> None:
        from pbxctl.pbx.esl_inbound import InboundEsl

        with InboundEsl(host=s["esl_host"], port=s["esl_port"], password=s["esl_secret"],
                        timeout=5.0, source=s["esl_source"] or None) as esl:
            reply = esl.api("cdr_csv rotate")
        if not reply.startswith("+OK"):
            raise CommandFailed(f"FreeSWITCH refused to rotate its call log: {reply.strip()}")

    return CollectorConfig(call_log=Path(s["log_dir"]) / FREESWITCH_CALL_LOG, rotate=rotate,
                           **common)


def cmd_calls_collect(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.services.collector import Collector

    s = resolve("collector", COLLECTOR_OPTIONS, cli=vars(args), environ=env.environ,
                config=config_of(args, env))
    config = _collector_config(s)
    store = _store(args, env)
    if args.follow:
        store.open(wait=False)
        stop = threading.Event()
        env.err.print(f"collector following {config.call_log} every {s['interval']:g} s")
        try:
            Collector(config=config, store=store).follow(stop=stop, interval=s["interval"])
        finally:
            store.close()
        return 0
    try:
        with store:
            res = Collector(config=config, store=store).run_once()
    except StoreUnavailable as exc:
        raise StoreUnavailable(
            exc.message, hint=f"nothing is lost: the records wait in {config.call_log}; "
                              "run collect again when PostgreSQL is back") from exc
    if args.json:
        env.stdout.write(json.dumps(res.__dict__) + "\n")
    else:
        env.out.print(f"collected {res.calls} call record(s), {res.recordings} recording(s); "
                      f"{res.rejected} rejected, {res.waiting} waiting"
                      + (f", {res.skipped} legs skipped" if res.skipped else ""))
        for problem in res.problems:
            env.err.print(f"[yellow]warning:[/] {problem}")
    return 0


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    age = parse_age(text)
    if age is not None:
        return datetime.now(tz=UTC) - age
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--since {text!r}: give an age (30m, 2h, 7d) or an ISO time") from None


def cmd_recordings_list(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.calls import list_recordings

    with _store(args, env) as store:
        rows = list_recordings(store, site=args.site, prefecture=args.prefecture,
                               status=args.status, agent=args.agent, since=_since(args.since),
                               limit=args.limit)
    if args.json:
        env.stdout.write(json.dumps([r.as_dict() for r in rows], ensure_ascii=False) + "\n")
        return 0
    table = new_table(f"recordings ({len(rows)})")
    for col in ("call", "started", "prefecture", "queue", "agent", "caller", "talk s",
                "audio s", "status"):
        table.add_column(col)
    for r in rows:
        status = r.status if r.status == "ok" else f"[red]{r.status}[/]"
        table.add_row(r.uniqueid, r.started_at.strftime("%F %T"), r.prefecture, r.queue,
                      r.agent, r.caller, f"{r.talk_s:.1f}", f"{r.audio_s:.1f}", status)
    env.out.print(table)
    return 0


def cmd_recordings_show(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.calls import find_recording

    with _store(args, env) as store:
        row = find_recording(store, args.call)
    data = row.as_dict()
    if args.json:
        env.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        width = max(len(k) for k in data)
        for key, value in data.items():
            env.out.print(f"{key:<{width}}  {value}")
    return 0


def cmd_recordings_get(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.core.files import atomic_write
    from pbxctl.data.calls import find_recording

    with _store(args, env) as store:
        row = find_recording(store, args.call)
    src = Path(args.root) / Path(row.path).name if args.root else Path(row.path)
    if not src.is_file():
        raise InputError(f"{src}: recording file not found (index status {row.status})",
                         hint="run on the PBX that recorded it, or pass --root with a copy")
    out = Path(args.output or Path(row.path).name)
    atomic_write(out, src.read_bytes())
    env.out.print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


def cmd_recordings_verify(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.calls import find_recording, list_recordings, verify

    with _store(args, env) as store:
        rows = ([find_recording(store, args.call)] if args.call
                else list_recordings(store, site=args.site, limit=args.limit))
    root = Path(args.root) if args.root else None
    verdicts = [verify(r, root=root) for r in rows]
    bad = [v for v in verdicts if not v.ok]
    for v in bad:
        env.err.print(f"{v.uniqueid}: " + "; ".join(v.problems))
    env.out.print(f"verified {len(verdicts)} recording(s): {len(verdicts) - len(bad)} ok, "
                  f"{len(bad)} with problems")
    if bad:
        raise CommandFailed(f"{len(bad)} recording(s) failed verification")
    return 0


def cmd_recordings_reconcile(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.calls import reconcile

    with _store(args, env) as store:
        rec = reconcile(store, site=args.site, recordings_dir=Path(args.recordings))
    if args.json:
        env.stdout.write(json.dumps({"files_without_rows": rec.files_without_rows,
                                     "rows_without_files": rec.rows_without_files}) + "\n")
    else:
        for name in rec.files_without_rows:
            env.out.print(f"file without index row: {name}")
        for name in rec.rows_without_files:
            env.out.print(f"index row without file: {name}")
        env.out.print(f"{len(rec.files_without_rows)} file(s) without rows, "
                      f"{len(rec.rows_without_files)} row(s) without files")
    if not rec.clean:
        raise CommandFailed("recording store and index disagree",
                            hint="collect pending call records first: `pbxctl calls collect`")
    return 0


def register(nouns: Verbs) -> None:
    calls = verbs(nouns, "calls", "call records")
    col = dsn_arg(calls.add_parser("collect", help="move the PBX's call log into PostgreSQL"))
    col.add_argument("--log-dir", help=f"the PBX's log directory: Asterisk's astlogdir "
                                       f"(default {DEBIAN_LOG_DIR}), FreeSWITCH's log_dir")
    col.add_argument("--engine", choices=("asterisk", "freeswitch"),
                     help="the PBX writing the call log (default asterisk)")
    col.add_argument("--esl-host", help="FreeSWITCH: its event socket (default 127.0.0.1)")
    col.add_argument("--esl-port", type=int, help="default 8021")
    col.add_argument("--esl-source", help="local address to connect from (the site's ACL)")
    col.add_argument("--rotate-bytes", type=int,
                     help="rotate the collected call log past this size (default 64 MiB)")
    col.add_argument("--recordings", help=f"the recording store (default {DEBIAN_RECORDINGS})")
    col.add_argument("--state", help=f"where the position is kept (default {DEFAULT_STATE})")
    col.add_argument("--follow", action="store_true", help="keep collecting (a daemon)")
    col.add_argument("--interval", type=float, help="default 1 s")
    col.add_argument("--json", action="store_true")
    col.set_defaults(func=cmd_calls_collect)

    rec = verbs(nouns, "recordings", "the recording index")
    ls = dsn_arg(rec.add_parser("list", help="indexed recordings, newest first"))
    for flag in ("--site", "--prefecture", "--agent"):
        ls.add_argument(flag)
    ls.add_argument("--status", help="ok | missing | empty | truncated | corrupt | failed")
    ls.add_argument("--since", help="age (30m, 2h, 7d) or ISO time")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_recordings_list)
    sh = dsn_arg(rec.add_parser("show", help="one recording with its call record"))
    sh.add_argument("call", help="uniqueid, linkedid or the gateway's call id")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_recordings_show)
    get = dsn_arg(rec.add_parser("get", help="copy a recording out of the store"))
    get.add_argument("call")
    get.add_argument("-o", "--output")
    get.add_argument("--root", help="a copy of the recording store (default: indexed path)")
    get.set_defaults(func=cmd_recordings_get)
    ver = dsn_arg(rec.add_parser("verify", help="re-hash, re-read WAV headers, check durations"))
    ver.add_argument("call", nargs="?")
    ver.add_argument("--site")
    ver.add_argument("--root")
    ver.add_argument("--limit", type=int, default=10000)
    ver.set_defaults(func=cmd_recordings_verify)
    rc = dsn_arg(rec.add_parser("reconcile", help="files without rows, rows without files"))
    rc.add_argument("--site", required=True)
    rc.add_argument("--recordings", default=DEBIAN_RECORDINGS)
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func=cmd_recordings_reconcile)
