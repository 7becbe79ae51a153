"""`pbxctl prompts init|add|rule|list|publish|status`: the central prompt catalogue."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pbxctl.cli.env import Env, Verbs, dsn_arg, inventory, new_table, store, verbs
from pbxctl.core.errors import UsageError

if TYPE_CHECKING:
    from pbxctl.services.tts import TtsCache


def cmd_init(args: argparse.Namespace, env: Env) -> int:
    from ivr_scripts.phrases import init_system_prompts

    with store(args, env) as db:
        added = init_system_prompts(db)
    env.out.print(f"catalogue: {len(added)} system prompt(s) added")
    return 0


def cmd_add(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.prompts import add_prompt

    with store(args, env) as db:
        p = add_prompt(db, prompt_id=args.prompt_id, text=args.text, kind=args.kind,
                       language=args.language)
    env.out.print(f"{p.prompt_id} v{p.version} added (publish it to reach the sites)")
    return 0


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"not an ISO time: {text!r}", hint="e.g. 2026-12-31T18:00+08:00") from None
    if value.tzinfo is None:
        raise UsageError(f"{text!r} has no UTC offset", hint="add one, e.g. +08:00")
    return value


def cmd_rule(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.prompts import add_rule

    with store(args, env) as db:
        rid = add_rule(db, prompt_id=args.prompt_id, kind=args.kind,
                       prefecture=args.prefecture, area_code=args.area,
                       valid_from=_when(args.valid_from), valid_until=_when(args.valid_until),
                       priority=args.priority)
    env.out.print(f"rule {rid}: {args.kind} → {args.prompt_id}")
    return 0


def cmd_list(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.prompts import latest_prompts, rules

    with store(args, env) as db:
        prompts, rule_list = latest_prompts(db), rules(db)
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
    table = new_table("prompt catalogue (latest versions)")
    for col in ("id", "version", "kind", "published", "text"):
        table.add_column(col)
    for p in prompts:
        table.add_row(p.prompt_id, str(p.version), p.kind, "yes" if p.published else "[red]no[/]",
                      p.text[:40])
    env.out.print(table)
    return 0


def tts_cache(args: argparse.Namespace, env: Env) -> TtsCache:
    from pbxctl.services.tts import TtsCache

    root = args.cache or str(Path(env.environ.get("XDG_CACHE_HOME",
                                                  Path.home() / ".cache")) / "pbxctl" / "tts")
    return TtsCache(root=Path(root))


def cmd_publish(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.ops.publish import publish

    inv = inventory(args.inventory)
    sites = [inv.site(args.site)] if args.site else None
    with store(args, env) as db, env.err.status("synthesising and installing prompts…"):
        result = publish(db, inv, Path(args.target), cache=tts_cache(args, env),
                         engine=args.engine, sites=sites)
    env.out.print(f"published {len(result.prompts)} prompt(s) to {len(result.sites)} site(s); "
                  f"{result.files_written} file(s) written")
    return 0


def cmd_status(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.prompts import drift_reports
    from pbxctl.ops.publish import status

    inv = inventory(args.inventory)
    sites = [inv.site(args.site)] if args.site else None
    with store(args, env) as db:
        drift = status(db, inv, Path(args.target), sites=sites)
        reports = drift_reports(db, limit=20)
    if args.json:
        env.stdout.write(json.dumps({"drift": [d.__dict__ for d in drift],
                                     "reported_at_call_time": reports},
                                    ensure_ascii=False, indent=1) + "\n")
        return 1 if drift else 0
    for d in drift:
        env.out.print(f"[red]drift[/] {d.site}: {d.prompt}: {d.problem}")
    for r in reports:
        env.out.print(f"[yellow]reported[/] {r['seen_at']} {r['site']}: {r['prompt']} "
                      f"({r['problem']}, call {r['uniqueid']})")
    if not drift and not reports:
        env.out.print("every site holds every published prompt")
    return 1 if drift else 0


def register(nouns: Verbs) -> None:
    pr = verbs(nouns, "prompts", "the central prompt catalogue")
    dsn_arg(pr.add_parser("init", help="add the IVR's own prompts and a default welcome rule")
            ).set_defaults(func=cmd_init)
    pa = dsn_arg(pr.add_parser("add", help="add a prompt (or a new version of one)"))
    pa.add_argument("prompt_id")
    pa.add_argument("--text", required=True)
    pa.add_argument("--kind", default="announcement")
    pa.add_argument("--language", default="zh")
    pa.set_defaults(func=cmd_add)
    prule = dsn_arg(pr.add_parser("rule", help="when a prompt is the welcome"))
    prule.add_argument("prompt_id")
    prule.add_argument("--kind", required=True, choices=["default", "holiday", "outage"])
    prule.add_argument("--prefecture")
    prule.add_argument("--area", help="caller area code prefix, e.g. 0571")
    prule.add_argument("--from", dest="valid_from", help="ISO time with offset")
    prule.add_argument("--until", dest="valid_until", help="ISO time with offset")
    prule.add_argument("--priority", type=int, default=0)
    prule.set_defaults(func=cmd_rule)
    pl = dsn_arg(pr.add_parser("list", help="the catalogue"))
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_list)
    for verb, func, helptext in (
            ("publish", cmd_publish, "synthesise and install on every site"),
            ("status", cmd_status, "sites missing a version or holding a bad file")):
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
