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
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from . import __version__, cli_calls, cli_orders, cli_status, cli_survive
from .asterisk_modules import SUPPORTED
from .errors import MissingDependencyError, PbxctlError, UsageError

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
    state = lab_up(root, progress=progress, asterisk_bin=env.environ.get("PBXCTL_ASTERISK_BIN"),
                   major=_major(args, env),
                   inventory=Path(args.inventory) if args.inventory else None,
                   prefectures=args.prefectures.split(",") if args.prefectures else None,
                   hold_down=args.hold_down, always_open=args.always_open)
    if state.netns:
        return _print_netlab(state.netns, env, as_json=args.json)
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


def _print_netlab(data: dict[str, object], env: Env, *, as_json: bool) -> int:
    from .netlab import NetState

    net = NetState(**data)  # type: ignore[arg-type]
    if as_json:
        env.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    table = Table(title=f"pbxctl lab up --inventory — namespaces pbx{net.tag}-*")
    for col in ("node", "switch A", "switch B", "runs"):
        table.add_column(col)
    runs: dict[str, list[str]] = {}
    for site, info in net.sites.items():
        runs.setdefault(info["node"], []).append(f"Asterisk {site} (pid {info['pid']})")
    for node, addr in net.nodes.items():
        table.add_row(node, addr["a"], addr["b"], ", ".join(runs.get(node, ["SIPp (drills)"])))
    env.out.print(table)
    env.out.print(f"every node: `pbxctl uplink` (active-backup); every gateway: `pbxctl "
                  f"survive` (hold-down {net.hold_down:g} s)")
    env.out.print("try: pbxctl drill wan-cut --prefecture " + net.prefectures[0])
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
    catalog = call_log = None
    if store is not None:
        from ivr_scripts.calllog import CallLog
        from ivr_scripts.catalog import PromptCatalog

        from .prompts_db import published_versions, rules

        catalog = PromptCatalog(load=lambda: (rules(store), published_versions(store)))
        catalog.prime()
        call_log = CallLog(store=store)
        call_log.start()
    settings: dict[str, Any] = (
        {"welcome_prompts": {"default": args.fixed_welcome}} if args.fixed_welcome else {})
    if args.inventory:  # the route handler needs the province's DIDs, areas and hours
        from ivr_scripts.routing import RoutingTable
        from provisioning.inventory import load_inventory

        inv = load_inventory(Path(args.inventory))
        settings["routing"] = RoutingTable.from_inventory(inv)
        settings["inventory"] = inv  # work orders: counties, seats, dispatch rules
    server = FastAgiServer(registry=default_registry(),
                           context=HandlerContext(store=store, catalog=catalog,
                                                  call_log=call_log, settings=settings),
                           config=AgiServerConfig(host=args.host, port=args.port,
                                                  backlog=args.backlog))
    server.start()

    def _stop(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    logging.getLogger("pbxctl.agi").info("listening on %s:%d", *server.address)
    from ivr_scripts.health import check
    from ivr_scripts.sdnotify import notify, start_watchdog

    def self_check() -> bool:
        try:
            check(*server.address, timeout=2.0)
            return True
        except PbxctlError:
            return False

    watchdog = start_watchdog(self_check, environ=env.environ)
    notify("READY=1", environ=env.environ)
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()
    notify("STOPPING=1", environ=env.environ)
    if watchdog is not None:
        watchdog.set()
    left = server.shutdown(grace=args.grace)
    if call_log is not None:
        call_log.close()
    if store is not None:
        store.close()
    return 0 if left == 0 else 1


# -- provision ---------------------------------------------------------------------------------
def _major(args: argparse.Namespace, env: Env) -> int:
    from .sandbox.asterisk import default_major

    return int(args.asterisk) if getattr(args, "asterisk", None) else default_major(env.environ)


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from provisioning.inventory import load_inventory
    from provisioning.secrets import ensure_secrets, secrets_path

    inv = load_inventory(Path(args.inventory))
    if args.site:
        try:
            inv.site(args.site)
        except KeyError:
            raise UsageError(f"no site {args.site!r} in {args.inventory}",
                             hint="sites: " + ", ".join(s.name for s in inv.sites())) from None
    secrets = ensure_secrets(inv, Path(args.secrets) if args.secrets
                             else secrets_path(Path(args.inventory)))
    return inv, secrets


def cmd_provision_validate(args: argparse.Namespace, env: Env) -> int:
    from provisioning.inventory import load_inventory

    inv = load_inventory(Path(args.inventory))
    sites = [s.name for s in inv.sites()]
    summary = {"province": inv.province.code, "prefectures": len(inv.prefectures),
               "counties": len(inv.counties), "seats": len(inv.all_seats()), "sites": sites}
    if args.json:
        env.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    else:
        env.out.print(f"{args.inventory}: valid — {len(inv.prefectures)} prefectures, "
                      f"{len(inv.counties)} counties, {len(inv.all_seats())} seats, "
                      f"{len(sites)} sites")
    return 0


def cmd_provision_render(args: argparse.Namespace, env: Env) -> int:
    from provisioning import render_freeswitch
    from provisioning.render_asterisk import render_all

    from .fsutil import atomic_write

    inv, secrets = _load(args)
    out = Path(args.out)
    rendered: dict[str, Any]
    if args.engine == "freeswitch":
        rendered = render_freeswitch.render_all(inv, secrets, site=args.site)
    else:
        rendered = render_all(inv, secrets, site=args.site, major=_major(args, env))
    count = 0
    for site, files in rendered.items():
        for name, f in files.items():
            atomic_write(out / site / name, f.text)
            count += 1
    env.out.print(f"rendered {count} files for {len(rendered)} site(s) into {out}")
    return 0


def cmd_provision_diff(args: argparse.Namespace, env: Env) -> int:
    from provisioning.deploy import plan, unified_diff
    from provisioning.render_asterisk import render_all

    inv, secrets = _load(args)
    changed = 0
    for site, files in render_all(inv, secrets, site=args.site, major=_major(args, env)).items():
        changes = plan(Path(args.target) / site / "etc", files)
        changed += len(changes)
        env.stdout.write(unified_diff(site, changes))
    if not changed:
        env.err.print("no differences")
    return 1 if (changed and args.exit_code) else 0


def cmd_provision_apply(args: argparse.Namespace, env: Env) -> int:
    from provisioning.deploy import apply_site
    from provisioning.expect import expected
    from provisioning.render_asterisk import render_all
    from provisioning.sandbox_site import site_ami

    from .ami import AmiClient

    inv, secrets = _load(args)
    rendered = render_all(inv, secrets, site=args.site, major=_major(args, env))
    for site_name, files in rendered.items():
        site = inv.site(site_name)
        ami = site_ami(site, secrets)
        with AmiClient(host=ami.host, port=ami.port, username=ami.username, secret=ami.secret,
                       source=args.ami_source) as client:

            def run(cmd: str, client: AmiClient = client) -> str:
                return "\n".join(client.command(cmd))

            result = apply_site(site=site_name, root=Path(args.target) / site_name, files=files,
                                run=run, want=expected(inv, site))
        if result.changed:
            env.out.print(f"{site_name}: applied {', '.join(result.changed)}; reloaded with "
                          f"{'; '.join(result.reloads) or 'nothing'}")
            if result.restart_needed:
                env.out.print(f"{site_name}: restart needed for "
                              f"{', '.join(result.restart_needed)}")
        else:
            env.out.print(f"{site_name}: up to date")
    return 0


# -- tts / prompts -------------------------------------------------------------------------
def cmd_tts(args: argparse.Namespace, env: Env) -> int:
    from .tts import DEFAULT_VOICE, synthesize_to

    used = synthesize_to(args.text, Path(args.output), engine_name=args.engine,
                         voice=args.voice or DEFAULT_VOICE["zh"], fallback=not args.no_fallback)
    if used != args.engine:
        env.err.print(f"[yellow]{args.engine} unavailable; used {used}[/]")
    env.out.print(f"wrote {args.output} ({used})")
    return 0


def _dsn(args: argparse.Namespace, env: Env) -> str:
    dsn = args.dsn or env.environ.get("PBXCTL_DSN", "")
    if not dsn:
        raise UsageError("no database given", hint="pass --dsn CONNINFO or set PBXCTL_DSN")
    return str(dsn)


def _store(args: argparse.Namespace, env: Env) -> Any:
    from .store import Store, StoreConfig

    return Store(config=StoreConfig(conninfo=_dsn(args, env)))


def cmd_prompts_init(args: argparse.Namespace, env: Env) -> int:
    from ivr_scripts.phrases import init_system_prompts

    with _store(args, env) as store:
        added = init_system_prompts(store)
    env.out.print(f"catalogue: {len(added)} system prompt(s) added")
    return 0


def cmd_prompts_add(args: argparse.Namespace, env: Env) -> int:
    from .prompts_db import add_prompt

    with _store(args, env) as store:
        p = add_prompt(store, prompt_id=args.prompt_id, text=args.text, kind=args.kind,
                       language=args.language)
    env.out.print(f"{p.prompt_id} v{p.version} added (publish it to reach the sites)")
    return 0


def cmd_prompts_rule(args: argparse.Namespace, env: Env) -> int:
    from datetime import datetime

    from .prompts_db import add_rule

    def when(text: str | None) -> datetime | None:
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(f"not an ISO time: {text!r}",
                             hint="e.g. 2026-12-31T18:00+08:00") from None
        if value.tzinfo is None:
            raise UsageError(f"{text!r} has no UTC offset", hint="add one, e.g. +08:00")
        return value

    with _store(args, env) as store:
        rid = add_rule(store, prompt_id=args.prompt_id, kind=args.kind,
                       prefecture=args.prefecture, area_code=args.area,
                       valid_from=when(args.valid_from), valid_until=when(args.valid_until),
                       priority=args.priority)
    env.out.print(f"rule {rid}: {args.kind} → {args.prompt_id}")
    return 0


def cmd_prompts_list(args: argparse.Namespace, env: Env) -> int:
    from .prompts_db import latest_prompts, rules

    with _store(args, env) as store:
        prompts, rule_list = latest_prompts(store), rules(store)
    if args.json:
        env.stdout.write(json.dumps({
            "prompts": [{"id": p.prompt_id, "version": p.version, "kind": p.kind,
                         "published": p.published, "text": p.text} for p in prompts],
            "rules": [{"id": r.id, "prompt": r.prompt_id, "kind": r.kind,
                       "prefecture": r.prefecture, "area": r.area_code,
                       "from": r.valid_from and r.valid_from.isoformat(),
                       "until": r.valid_until and r.valid_until.isoformat(),
                       "priority": r.priority} for r in rule_list]},
            ensure_ascii=False, indent=1) + "\n")
        return 0
    table = Table(title="prompt catalogue (latest versions)")
    for col in ("id", "version", "kind", "published", "text"):
        table.add_column(col)
    for p in prompts:
        table.add_row(p.prompt_id, str(p.version), p.kind, "yes" if p.published else "[red]no[/]",
                      p.text[:40])
    env.out.print(table)
    return 0


def _tts_cache(args: argparse.Namespace, env: Env) -> Any:
    from .tts import TtsCache

    root = args.cache or str(Path(env.environ.get("XDG_CACHE_HOME",
                                                  Path.home() / ".cache")) / "pbxctl" / "tts")
    return TtsCache(root=Path(root))


def cmd_prompts_publish(args: argparse.Namespace, env: Env) -> int:
    from provisioning.inventory import load_inventory
    from provisioning.publish import publish

    inv = load_inventory(Path(args.inventory))
    sites = [inv.site(args.site)] if args.site else None
    with _store(args, env) as store, env.err.status("synthesising and installing prompts…"):
        result = publish(store, inv, Path(args.target), cache=_tts_cache(args, env),
                         engine=args.engine, sites=sites)
    env.out.print(f"published {len(result.prompts)} prompt(s) to {len(result.sites)} site(s); "
                  f"{result.files_written} file(s) written")
    return 0


def cmd_prompts_status(args: argparse.Namespace, env: Env) -> int:
    from provisioning.inventory import load_inventory
    from provisioning.publish import status

    from .prompts_db import drift_reports

    inv = load_inventory(Path(args.inventory))
    sites = [inv.site(args.site)] if args.site else None
    with _store(args, env) as store:
        drift = status(store, inv, Path(args.target), sites=sites)
        reports = drift_reports(store, limit=20)
    if args.json:
        env.stdout.write(json.dumps({"drift": [d.__dict__ for d in drift],
                                     "reported_at_call_time": reports},
                                    ensure_ascii=False, indent=1) + "\n")
    else:
        for d in drift:
            env.out.print(f"[red]drift[/] {d.site}: {d.prompt}: {d.problem}")
        for r in reports:
            env.out.print(f"[yellow]reported[/] {r['seen_at']} {r['site']}: {r['prompt']} "
                          f"({r['problem']}, call {r['uniqueid']})")
        if not drift and not reports:
            env.out.print("every site holds every published prompt")
    return 1 if drift else 0


def cmd_agi_health(args: argparse.Namespace, env: Env) -> int:
    from ivr_scripts.health import check

    ms = check(args.host, args.port, timeout=args.timeout)
    env.out.print(f"agi://{args.host}:{args.port}/ping answered in {ms:.1f} ms")
    return 0


# -- db ----------------------------------------------------------------------------------------
def cmd_db_migrate(args: argparse.Namespace, env: Env) -> int:
    from .store import Store, StoreConfig

    with Store(config=StoreConfig(conninfo=_dsn(args, env))) as store:
        applied = store.migrate()
        version = store.schema_version()
        env.out.print(f"schema at version {version}; applied: {', '.join(applied) or 'nothing'}")
        if args.sample_data:
            from provisioning.inventory import load_inventory
            from provisioning.sample import seed_input

            from .selfservice_db import seed_sample_data

            if not args.inventory:
                raise UsageError("--sample-data needs --inventory (whose prefectures to fill)")
            n = seed_sample_data(store, seed_input(load_inventory(Path(args.inventory))))
            env.out.print(f"sample data: {n[0]} accounts, {n[1]} bills, {n[2]} outages")
    return 0


def cmd_doctor(args: argparse.Namespace, env: Env) -> int:
    from .doctor import TOOLS, all_engines, tool_report
    from .sandbox.asterisk import default_major

    engines, tools = all_engines(), tool_report()
    default = default_major(env.environ)
    if args.json:
        env.stdout.write(json.dumps({"default": default,
                                     "engines": [e.__dict__ for e in engines],
                                     "tools": tools}) + "\n")
    else:
        for e in engines:
            mark = " (default)" if e.major == default else ""
            if not e.present:
                env.out.print(f"Asterisk {e.major}{mark}: [red]not installed[/] at {e.binary}"
                              f" — fix: {e.fix}")
                continue
            state = "[green]ok[/]" if e.usable else "[red]incomplete[/]"
            env.out.print(f"Asterisk {e.major}{mark}: {e.version} at {e.binary}: {state}")
            for feature, mods in e.features_broken.items():
                env.out.print(f"  {feature}: missing {', '.join(mods)} — fix: {e.fix}")
            others = sorted(set(e.modules_missing) - {m for ms in e.features_broken.values()
                                                      for m in ms})
            if others:
                env.out.print(f"  also missing: {', '.join(others)} — fix: {e.fix}")
        for name, path in tools.items():
            need, fix = TOOLS[name]
            env.out.print(f"{name}: {path}" if path else
                          f"{name}: [red]missing[/] ({need}) — fix: {fix}")
    chosen = next(e for e in engines if e.major == default)
    if not chosen.usable or not all(tools.values()):
        raise MissingDependencyError(
            f"this host cannot run everything pbxctl does with Asterisk {default}",
            hint="the lines above name each missing piece and its fix")
    return 0


def cmd_version(args: argparse.Namespace, env: Env) -> int:
    env.stdout.write(f"pbxctl {__version__}\n")
    return 0


# -- table and parser --------------------------------------------------------------------------
def dsn_arg(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--dsn", help="PostgreSQL conninfo (or PBXCTL_DSN)")
    return sp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pbxctl", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")
    nouns = p.add_subparsers(dest="noun", metavar="NOUN")

    lab = nouns.add_parser("lab", help="bring the local lab up or down").add_subparsers(
        dest="verb", metavar="VERB")
    up = lab.add_parser("up", help="start PostgreSQL, Asterisk, the FastAGI server; place a call")
    up.add_argument("--json", action="store_true", help="print the lab state as JSON")
    up.add_argument("--asterisk", type=int, choices=SUPPORTED,
                    help="Asterisk major to run (default: PBXCTL_ASTERISK, else 22)")
    up.add_argument("--inventory", help="bring this province up in network namespaces (each "
                                        "site on its own node, two switches, real links)")
    up.add_argument("--prefectures", help="with --inventory: only these (comma-separated "
                                          "codes); default all")
    up.add_argument("--hold-down", type=float,
                    help="failback hold-down in seconds (default: the inventory's)")
    up.add_argument("--always-open", action="store_true",
                    help="with --inventory: drop business hours from the lab's copy, so "
                         "drills reach agents at any hour")
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
    serve.add_argument("--fixed-welcome", default="",
                       help="play this stock prompt as welcome instead of the catalogue's "
                            "(the one-site lab demo)")
    serve.add_argument("--inventory", help="the province inventory: enables the route handler "
                                           "(DIDs, area codes, business hours)")
    serve.add_argument("--grace", type=float, default=10.0,
                       help="seconds to let running calls finish on shutdown")
    serve.set_defaults(func=cmd_agi_serve)
    health = agi.add_parser("health", help="run the ping route like Asterisk would")
    health.add_argument("--host", default="127.0.0.1")
    health.add_argument("--port", type=int, default=4573)
    health.add_argument("--timeout", type=float, default=3.0)
    health.set_defaults(func=cmd_agi_health)

    db = nouns.add_parser("db", help="the PostgreSQL store").add_subparsers(
        dest="verb", metavar="VERB")
    mig = db.add_parser("migrate", help="apply pending schema migrations")
    mig.add_argument("--dsn", help="PostgreSQL conninfo (or PBXCTL_DSN)")
    mig.add_argument("--sample-data", action="store_true",
                     help="also insert sample accounts, bills and outages (idempotent)")
    mig.add_argument("--inventory", help="inventory whose prefectures get the sample data")
    mig.set_defaults(func=cmd_db_migrate)

    tts = nouns.add_parser("tts", help="synthesise TEXT into an audio file Asterisk plays")
    tts.add_argument("text")
    tts.add_argument("-o", "--output", required=True,
                     help="FILE.wav|.sln|.ulaw|.alaw|.gsm (8 kHz mono)")
    tts.add_argument("--engine", default="espeak-ng", choices=["espeak-ng", "gtts"])
    tts.add_argument("--voice", help="engine voice (default: cmn-latn-pinyin, Mandarin)")
    tts.add_argument("--no-fallback", action="store_true",
                     help="fail instead of falling back to espeak-ng")
    tts.set_defaults(func=cmd_tts)

    pr = nouns.add_parser("prompts", help="the central prompt catalogue").add_subparsers(
        dest="verb", metavar="VERB")

    dsn_arg(pr.add_parser("init", help="add the IVR's own prompts and a default welcome rule")
            ).set_defaults(func=cmd_prompts_init)
    pa = dsn_arg(pr.add_parser("add", help="add a prompt (or a new version of one)"))
    pa.add_argument("prompt_id")
    pa.add_argument("--text", required=True)
    pa.add_argument("--kind", default="announcement")
    pa.add_argument("--language", default="zh")
    pa.set_defaults(func=cmd_prompts_add)
    prule = dsn_arg(pr.add_parser("rule", help="when a prompt is the welcome"))
    prule.add_argument("prompt_id")
    prule.add_argument("--kind", required=True, choices=["default", "holiday", "outage"])
    prule.add_argument("--prefecture")
    prule.add_argument("--area", help="caller area code prefix, e.g. 0571")
    prule.add_argument("--from", dest="valid_from", help="ISO time with offset")
    prule.add_argument("--until", dest="valid_until", help="ISO time with offset")
    prule.add_argument("--priority", type=int, default=0)
    prule.set_defaults(func=cmd_prompts_rule)
    pl = dsn_arg(pr.add_parser("list", help="the catalogue"))
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_prompts_list)
    for verb, func, helptext in (
            ("publish", cmd_prompts_publish, "synthesise and install on every site"),
            ("status", cmd_prompts_status, "sites missing a version or holding a bad file")):
        sp = dsn_arg(pr.add_parser(verb, help=helptext))
        sp.add_argument("--inventory", required=True)
        sp.add_argument("--target", required=True, help="deployment root: TARGET/<site>/sounds")
        sp.add_argument("--site")
        if verb == "publish":
            sp.add_argument("--engine", default="espeak-ng", choices=["espeak-ng", "gtts"])
            sp.add_argument("--cache", help="TTS cache folder (default ~/.cache/pbxctl/tts)")
        else:
            sp.add_argument("--json", action="store_true")
        sp.set_defaults(func=func)

    prov = nouns.add_parser("provision", help="inventory → validated model → PBX configs")
    pv = prov.add_subparsers(dest="verb", metavar="VERB")

    def inv_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("inventory", help="the province inventory YAML")
        sp.add_argument("--site", help="only this site (e.g. hz-gw)")
        sp.add_argument("--secrets", help="secrets file (default: INVENTORY.secrets.yaml)")
        sp.add_argument("--asterisk", type=int, choices=SUPPORTED,
                        help="Asterisk major the configs are for (default: PBXCTL_ASTERISK, "
                             "else 22)")

    v = pv.add_parser("validate", help="check the inventory; every problem with file:line")
    v.add_argument("inventory")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_provision_validate)
    r = pv.add_parser("render", help="write one config directory per site")
    inv_args(r)
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--engine", choices=("asterisk", "freeswitch"), default="asterisk",
                   help="which PBX the configs are for (FreeSWITCH: XML; see docs/freeswitch.md)")
    r.set_defaults(func=cmd_provision_render)
    d = pv.add_parser("diff", help="unified diff against what is deployed")
    inv_args(d)
    d.add_argument("--target", required=True, help="deployment root: TARGET/<site>/etc")
    d.add_argument("--exit-code", action="store_true", help="exit 1 when there are differences")
    d.set_defaults(func=cmd_provision_diff)
    a = pv.add_parser("apply", help="write atomically, reload, verify; roll back on failure")
    inv_args(a)
    a.add_argument("--target", required=True, help="deployment root: TARGET/<site>/etc")
    a.add_argument("--ami-source", help="local address to reach AMI from (must be permitted)")
    a.set_defaults(func=cmd_provision_apply)

    cli_calls.register(nouns, dsn_arg)
    cli_status.register(nouns)
    cli_orders.register(nouns, dsn_arg)
    cli_survive.register(nouns)

    doc = nouns.add_parser("doctor", help="Asterisk versions, modules and tools on this host")
    doc.add_argument("--json", action="store_true")
    doc.set_defaults(func=cmd_doctor)

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


