"""`pbxctl orders …`: work orders from the command line, and the dispatcher daemon."""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from .ages import parse_age
from .errors import InputError, StoreUnavailable

if TYPE_CHECKING:
    from .cli import Env


def _inv(args: argparse.Namespace) -> Any:
    from provisioning.inventory import load_inventory

    return load_inventory(Path(args.inventory))


def _store(args: argparse.Namespace, env: Env) -> Any:
    from .cli import _store as make

    return make(args, env)


def _age(text: str | None) -> timedelta | None:
    if not text:
        return None
    age = parse_age(text)
    if age is not None:
        return age
    raise InputError(f"--older-than {text!r}: give an age such as 30m, 4h, 2d")


def _print_order(env: Env, order: Any, events: list[Any], as_json: bool) -> None:
    if as_json:
        data = order.as_dict()
        data["history"] = [{**asdict(e), "at": e.at.isoformat()} for e in events]
        env.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    env.out.print(f"order {order.id}: {order.type}, {order.status}, county {order.county}, "
                  f"seat {order.seat or '-'}, account {order.account_no}, priority "
                  f"{order.priority}, call {order.call_linkedid or '-'}")
    for e in events:
        move = f"{e.from_status or ''}→{e.to_status}" if e.to_status else ""
        env.out.print(f"  {e.at:%F %T} {e.actor:<18} {e.event:<10} {move:<22} {e.note}")


def cmd_orders_create(args: argparse.Namespace, env: Env) -> int:
    from .orders_db import create, dispatch, history

    inv = _inv(args)
    with _store(args, env) as store:
        order = create(store, inv, type=args.type, account_no=args.account,
                       created_by=args.actor, description=args.description or "",
                       contact=args.contact or "", priority=args.priority,
                       call_linkedid=args.call or "", call_site=args.site or "")
        if not args.no_dispatch:
            order = dispatch(store, inv, order.id, actor=args.actor)
        _print_order(env, order, history(store, order.id), args.json)
    return 0


def cmd_orders_list(args: argparse.Namespace, env: Env) -> int:
    from .orders_db import list_orders

    with _store(args, env) as store:
        orders = list_orders(store, county=args.county, status=args.status,
                             older_than=_age(args.older_than), limit=args.limit)
    if args.json:
        env.stdout.write(json.dumps([o.as_dict() for o in orders], ensure_ascii=False) + "\n")
        return 0
    table = Table(title=f"work orders ({len(orders)})")
    for col in ("id", "type", "status", "county", "seat", "account", "priority", "created"):
        table.add_column(col)
    for o in orders:
        table.add_row(str(o.id), o.type, o.status, o.county, o.seat or "-", o.account_no,
                      str(o.priority), o.created_at.strftime("%F %T"))
    env.out.print(table)
    return 0


def cmd_orders_show(args: argparse.Namespace, env: Env) -> int:
    from .orders_db import get, history

    with _store(args, env) as store:
        _print_order(env, get(store, args.id), history(store, args.id), args.json)
    return 0


def cmd_orders_change(args: argparse.Namespace, env: Env) -> int:
    from .orders_db import accept, close, dispatch, history, return_order

    with _store(args, env) as store:
        if args.verb == "assign":
            order = dispatch(store, _inv(args), args.id, actor=args.actor, seat=args.seat)
        elif args.verb == "accept":
            order = accept(store, args.id, seat=args.seat, actor=args.actor or args.seat)
        elif args.verb == "return":
            order = return_order(store, args.id, reason=args.reason, actor=args.actor)
        else:
            order = close(store, args.id, actor=args.actor, note=args.note or "")
        _print_order(env, order, history(store, order.id), args.json)
    return 0


def cmd_orders_report(args: argparse.Namespace, env: Env) -> int:
    from .orders_db import AGE_BUCKETS, open_report

    with _store(args, env) as store:
        report = open_report(store)
    if args.json:
        env.stdout.write(json.dumps(report) + "\n")
        return 0
    table = Table(title="open work orders by county and age")
    table.add_column("county")
    for name, _ in AGE_BUCKETS:
        table.add_column(name, justify="right")
    table.add_column("total", justify="right")
    for county, counts in sorted(report.items()):
        table.add_row(county, *(str(counts[b]) for b, _ in AGE_BUCKETS),
                      str(sum(counts.values())))
    env.out.print(table)
    return 0


def cmd_orders_dispatcher(args: argparse.Namespace, env: Env) -> int:
    """The daemon that calls terminal seats (runs beside the province PBX)."""
    from .ami import AmiClient
    from .dispatcher import Dispatcher
    from .tts import TtsCache

    inv = _inv(args)
    store = _store(args, env)
    store.open(wait=False)
    ami = AmiClient(host=args.ami_host, port=args.ami_port, username=args.ami_user,
                    secret=env.environ.get("PBXCTL_AMI_SECRET", ""), source=args.ami_source)
    ami.connect()
    disp = Dispatcher(store=store, inv=inv, ami=ami, prompt_dir=Path(args.prompt_dir),
                      tts=TtsCache(root=Path(args.tts_cache)))
    stop = threading.Event()
    try:
        while not stop.is_set():
            try:
                for line in disp.run_once():
                    env.out.print(line)
            except StoreUnavailable as exc:
                env.err.print(f"database unavailable, retrying: {exc.message}")
            if args.once:
                break
            stop.wait(args.interval)
    finally:
        ami.close()
        store.close()
    return 0


def register(nouns: Any, dsn_arg: Any) -> None:
    from provisioning.model import ORDER_TYPES

    orders = nouns.add_parser("orders", help="work orders to county terminal seats"
                              ).add_subparsers(dest="verb", metavar="VERB", required=True)
    cr = dsn_arg(orders.add_parser("create", help="create (and dispatch) a work order"))
    cr.add_argument("--inventory", required=True)
    cr.add_argument("--type", required=True, choices=ORDER_TYPES)
    cr.add_argument("--account", required=True, help="the customer's 10-digit account")
    cr.add_argument("--description")
    cr.add_argument("--contact")
    cr.add_argument("--priority", type=int, default=3, help="1 urgent … 4 low")
    cr.add_argument("--call", help="linkedid of the call it comes from")
    cr.add_argument("--site", help="the PBX that call was on")
    cr.add_argument("--actor", required=True, help="who creates it (agent seat id)")
    cr.add_argument("--no-dispatch", action="store_true")
    cr.add_argument("--json", action="store_true")
    cr.set_defaults(func=cmd_orders_create)

    ls = dsn_arg(orders.add_parser("list", help="orders, newest first"))
    ls.add_argument("--county")
    ls.add_argument("--status", help="new | dispatched | accepted | done | returned | "
                                     "escalated | open")
    ls.add_argument("--older-than", help="age: 30m, 4h, 2d")
    ls.add_argument("--limit", type=int, default=200)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_orders_list)

    sh = dsn_arg(orders.add_parser("show", help="one order with its full history"))
    sh.add_argument("id", type=int)
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_orders_show)

    for verb, helptext in (("assign", "dispatch to a (given) terminal seat"),
                           ("accept", "the seat accepts"), ("return", "give back, with reason"),
                           ("close", "the work is done")):
        sp = dsn_arg(orders.add_parser(verb, help=helptext))
        sp.add_argument("id", type=int)
        sp.add_argument("--actor", required=verb != "accept", default=None)
        sp.add_argument("--json", action="store_true")
        if verb == "assign":
            sp.add_argument("--inventory", required=True)
            sp.add_argument("--seat")
        if verb == "accept":
            sp.add_argument("--seat", required=True)
        if verb == "return":
            sp.add_argument("--reason", required=True)
        if verb == "close":
            sp.add_argument("--note")
        sp.set_defaults(func=cmd_orders_change)

    rp = dsn_arg(orders.add_parser("report", help="open orders by county and age"))
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_orders_report)

    dp = dsn_arg(orders.add_parser("dispatcher", help="call terminal seats about their orders"))
    dp.add_argument("--inventory", required=True)
    dp.add_argument("--ami-host", required=True)
    dp.add_argument("--ami-port", type=int, default=5038)
    dp.add_argument("--ami-user", default="pbxctl")
    dp.add_argument("--ami-source", help="local address to connect from")
    dp.add_argument("--prompt-dir", default="/var/lib/asterisk/sounds/pbxctl")
    dp.add_argument("--tts-cache", default="/var/cache/pbxctl/tts")
    dp.add_argument("--interval", type=float, default=2.0)
    dp.add_argument("--once", action="store_true")
    dp.set_defaults(func=cmd_orders_dispatcher)
