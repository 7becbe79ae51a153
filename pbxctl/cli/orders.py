"""`pbxctl orders …`: work orders from the command line, and the dispatcher daemon."""

from __future__ import annotations

import argparse
import functools
import json
import threading
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from pbxctl.cli.env import (
    Env,
    Verbs,
    config_of,
    dsn_arg,
    inventory,
    new_table,
    store,
    verbs,
)
from pbxctl.core.ages import parse_age
from pbxctl.core.config import Option, resolve
from pbxctl.core.errors import InputError, StoreUnavailable, UsageError


def _inv(args: argparse.Namespace) -> Any:
    return inventory(args.inventory)


_store = store


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
    from pbxctl.data.orders import create, dispatch, history

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
    from pbxctl.data.orders import list_orders

    with _store(args, env) as store:
        orders = list_orders(store, county=args.county, status=args.status,
                             older_than=_age(args.older_than), limit=args.limit)
    if args.json:
        env.stdout.write(json.dumps([o.as_dict() for o in orders], ensure_ascii=False) + "\n")
        return 0
    table = new_table(f"work orders ({len(orders)})")
    for col in ("id", "type", "status", "county", "seat", "account", "priority", "created"):
        table.add_column(col)
    for o in orders:
        table.add_row(str(o.id), o.type, o.status, o.county, o.seat or "-", o.account_no,
                      str(o.priority), o.created_at.strftime("%F %T"))
    env.out.print(table)
    return 0


def cmd_orders_show(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.orders import get, history

    with _store(args, env) as store:
        _print_order(env, get(store, args.id), history(store, args.id), args.json)
    return 0


def cmd_orders_change(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.orders import accept, close, dispatch, history, return_order

    with _store(args, env) as store:
        if args.verb == "assign":
            order = dispatch(store, _inv(args), args.id, actor=args.actor, seat=args.seat)
        elif args.verb == "accept":
            order = accept(store, args.id, seat=args.seat, actor=args.actor or args.seat)
        elif args.verb == "return":
            order = return_order(store, args.id, reason=args.reason, actor=args.actor,
                                 seat=args.seat)
        else:
            order = close(store, args.id, actor=args.actor, note=args.note or "")
        _print_order(env, order, history(store, order.id), args.json)
    return 0


def cmd_orders_report(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.orders import AGE_BUCKETS, open_report

    with _store(args, env) as store:
        report = open_report(store)
    if args.json:
        env.stdout.write(json.dumps(report) + "\n")
        return 0
    table = new_table("open work orders by county and age")
    table.add_column("county")
    for name, _ in AGE_BUCKETS:
        table.add_column(name, justify="right")
    table.add_column("total", justify="right")
    for county, counts in sorted(report.items()):
        table.add_row(county, *(str(counts[b]) for b, _ in AGE_BUCKETS),
                      str(sum(counts.values())))
    env.out.print(table)
    return 0


DISPATCHER_OPTIONS = (
    Option("inventory", str, ""), Option("ami_host", str, ""), Option("ami_port", int, 5038),
    Option("ami_user", str, "pbxctl-notify"), Option("ami_source", str, ""),
    Option("ami_secret", str, "", secret=True),
    # A FreeSWITCH province: its inbound event socket instead of AMI.
    Option("esl_host", str, ""), Option("esl_port", int, 8021), Option("esl_source", str, ""),
    Option("esl_secret", str, "", secret=True),
    Option("prompt_dir", str, "/var/lib/asterisk/sounds/pbxctl"),
    Option("tts_cache", str, "/var/cache/pbxctl/tts"), Option("interval", float, 2.0))


def cmd_orders_dispatcher(args: argparse.Namespace, env: Env) -> int:
    """The daemon that calls terminal seats (runs beside the province PBX)."""
    from pbxctl.pbx.ami import AmiClient
    from pbxctl.pbx.esl_inbound import opened
    from pbxctl.services.order_notifier import AmiDialer, EslDialer, OrderDialer, OrderNotifier
    from pbxctl.services.tts import TtsCache

    cli = {k: v for k, v in vars(args).items() if k not in ("ami_secret", "esl_secret")}
    s = resolve("dispatcher", DISPATCHER_OPTIONS, cli=cli, environ=env.environ,
                config=config_of(args, env))
    if not s["inventory"] or not (s["ami_host"] or s["esl_host"]):
        raise UsageError("the dispatcher needs the inventory and the province PBX's AMI (or, "
                         "on FreeSWITCH, event-socket) address",
                         hint="--inventory/--ami-host/--esl-host, or dispatcher.inventory/"
                              ".ami_host/.esl_host in the config file")
    if s["esl_host"] and not s["esl_secret"]:
        raise UsageError("dispatcher.esl_host is set but dispatcher.esl_secret is not",
                         hint="put the province's event-socket password in the secrets file")
    inv = inventory(s["inventory"])
    db = _store(args, env)
    db.open(wait=False)
    ami: AmiClient | None = None
    dialer: OrderDialer
    if s["esl_host"]:
        connect = functools.partial(opened, host=s["esl_host"], port=s["esl_port"],
                                    password=s["esl_secret"], source=s["esl_source"] or None)
        connect().close()  # refused or unreachable: say so now, not at the first order
        dialer, via = EslDialer(connect), f"ESL {s['esl_host']}:{s['esl_port']}"
    else:
        ami = AmiClient(host=s["ami_host"], port=s["ami_port"], username=s["ami_user"],
                        secret=s["ami_secret"], source=s["ami_source"] or None)
        ami.connect()
        dialer, via = AmiDialer(ami), f"AMI {s['ami_host']}:{s['ami_port']} as {s['ami_user']}"
    notifier = OrderNotifier(store=db, inv=inv, dialer=dialer, prompt_dir=Path(s["prompt_dir"]),
                             tts=TtsCache(root=Path(s["tts_cache"])))
    stop = threading.Event()
    # The journal's (and the lab's) sign that the daemon is up: PBX reached, store opened.
    env.err.print(f"dispatcher running: {via}, every {s['interval']:g} s")
    try:
        while not stop.is_set():
            try:
                for line in notifier.run_once():
                    env.out.print(line)
            except StoreUnavailable as exc:
                env.err.print(f"database unavailable, retrying: {exc.message}")
            if args.once:
                break
            stop.wait(s["interval"])
    finally:
        if ami is not None:
            ami.close()
        db.close()
    return 0


def register(nouns: Verbs) -> None:
    from pbxctl.data.ordertypes import ORDER_TYPES

    orders = verbs(nouns, "orders", "work orders to county terminal seats")
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
    _register_moves(orders)
    rp = dsn_arg(orders.add_parser("report", help="open orders by county and age"))
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_orders_report)
    _register_dispatcher(orders)


def _register_moves(orders: Verbs) -> None:
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
            sp.add_argument("--seat", help="the terminal seat returning it (must be its seat)")
        if verb == "close":
            sp.add_argument("--note")
        sp.set_defaults(func=cmd_orders_change)


def _register_dispatcher(orders: Verbs) -> None:
    dp = dsn_arg(orders.add_parser("dispatcher", help="call terminal seats about their orders "
                                                      "(the daemon)"))
    dp.add_argument("--inventory", help="(dispatcher.inventory)")
    dp.add_argument("--ami-host", help="the province PBX's AMI address (dispatcher.ami_host)")
    dp.add_argument("--ami-port", type=int, help="default 5038")
    dp.add_argument("--ami-user", help="default pbxctl-notify (the province's notifier user)")
    dp.add_argument("--ami-source", help="local address to connect from")
    dp.add_argument("--esl-host", help="a FreeSWITCH province's event socket, instead of AMI "
                                       "(dispatcher.esl_host; password dispatcher.esl_secret)")
    dp.add_argument("--esl-port", type=int, help="default 8021")
    dp.add_argument("--esl-source", help="local address to connect from (the site's ACL)")
    dp.add_argument("--prompt-dir", help="default /var/lib/asterisk/sounds/pbxctl")
    dp.add_argument("--tts-cache", help="default /var/cache/pbxctl/tts")
    dp.add_argument("--interval", type=float, help="default 2 s")
    dp.add_argument("--once", action="store_true")
    dp.set_defaults(func=cmd_orders_dispatcher)
