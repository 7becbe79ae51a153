"""`pbxctl db migrate | replicas`: the PostgreSQL store's schema (and sample self-service
data); the prefectures' replicas of the self-service data (logical replication)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from pbxctl.cli.env import Env, Verbs, conninfo, dsn_arg, inventory, new_table, store, verbs
from pbxctl.core.errors import UsageError

if TYPE_CHECKING:
    from provisioning.model import Inventory, Prefecture


def cmd_migrate(args: argparse.Namespace, env: Env) -> int:
    if args.sample_data and not args.inventory:
        raise UsageError("--sample-data needs --inventory (whose prefectures to fill)")
    with store(args, env) as db:
        applied = db.migrate()
        version = db.schema_version()
        env.out.print(f"schema at version {version}; applied: {', '.join(applied) or 'nothing'}")
        if args.sample_data:
            from pbxctl.data.selfservice import seed_sample_data
            from provisioning.sample import seed_input

            n = seed_sample_data(db, seed_input(inventory(args.inventory)))
            env.out.print(f"sample data: {n[0]} accounts, {n[1]} bills, {n[2]} outages")
    return 0


def _prefectures(inv: Inventory, codes: str | None) -> list[Prefecture]:
    valid = [p.code for p in inv.prefectures]
    wanted = codes.split(",") if codes and codes != "all" else valid
    unknown = [c for c in wanted if c not in valid]
    if unknown:
        raise UsageError(f"--prefecture: {', '.join(unknown)} not in the inventory "
                         f"(valid: {', '.join(valid)})")
    return [inv.prefecture(c) for c in wanted]


def cmd_replicas_publish(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.replicas import run_sql
    from provisioning.render_replication import province_sql, publication_name

    inv = inventory(args.inventory)
    chosen = _prefectures(inv, args.prefectures)
    run_sql(conninfo(args, env), province_sql(inv, chosen))
    env.out.print("published: " + ", ".join(publication_name(p.code) for p in chosen))
    return 0


def cmd_replicas_subscribe(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.replicas import run_sql, subscription_exists
    from provisioning.render_replication import (
        DEFAULT_PASSFILE,
        PG_PORT,
        prefecture_sql,
        publication_name,
        publisher_conninfo,
    )

    inv = inventory(args.inventory)
    [p] = _prefectures(inv, args.prefecture)
    dsn = conninfo(args, env)
    name = publication_name(p.code)
    if subscription_exists(dsn, name):
        env.out.print(f"{name}: already subscribed (nothing done)")
        return 0
    via = publisher_conninfo(inv, p, port=args.publisher_port or PG_PORT,
                             hosts=args.publisher_host.split(",") if args.publisher_host else None,
                             passfile=args.passfile or DEFAULT_PASSFILE)
    run_sql(dsn, prefecture_sql(inv, p, conninfo=via))
    env.out.print(f"{name}: subscribed (the first sync copies {p.code}'s rows)")
    return 0


def cmd_replicas_status(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.data.replicas import status

    report = status(conninfo(args, env))
    if args.json:
        env.stdout.write(json.dumps({**asdict(report), "healthy": report.healthy}) + "\n")
        return 0 if report.healthy else 1
    if not report.publications and not report.subscriptions:
        env.out.print("no pbxctl publication or subscription in this database")
    if report.publications:
        t = new_table("publications (this database is the province)")
        for col in ("publication", "subscriber", "state", "behind (bytes)", "replay lag"):
            t.add_column(col)
        for p in report.publications:
            t.add_row(p.name,
                      "none yet" if p.slot_active is None
                      else (p.client or "connected") if p.slot_active else "NOT CONNECTED",
                      p.state or "-", "-" if p.lag_bytes is None else str(p.lag_bytes),
                      "-" if p.replay_lag_s is None else f"{p.replay_lag_s:.3f} s")
        env.out.print(t)
    if report.subscriptions:
        t = new_table("subscriptions (this database is a prefecture replica)")
        for col in ("subscription", "worker", "last heard", "tables", "errors"):
            t.add_column(col)
        for s in report.subscriptions:
            t.add_row(s.name, ("running" if s.worker_running else "NOT RUNNING")
                      + ("" if s.enabled else " (disabled)"),
                      "-" if s.last_msg_age_s is None else f"{s.last_msg_age_s:.1f} s ago",
                      ", ".join(f"{n} {st}" for st, n in sorted(s.tables.items())) or "-",
                      f"apply {s.apply_errors}, sync {s.sync_errors}")
        env.out.print(t)
    return 0 if report.healthy else 1


def register(nouns: Verbs) -> None:
    db = verbs(nouns, "db", "the PostgreSQL store")
    mig = dsn_arg(db.add_parser("migrate", help="apply pending schema migrations"))
    mig.add_argument("--sample-data", action="store_true",
                     help="also insert sample accounts, bills and outages (idempotent)")
    mig.add_argument("--inventory", help="inventory whose prefectures get the sample data")
    mig.set_defaults(func=cmd_migrate)
    rep = db.add_parser("replicas", help="the prefectures' replicas of the self-service data "
                                         "(publish | subscribe | status)")
    rv = rep.add_subparsers(dest="action", metavar="ACTION", required=True)
    pub = dsn_arg(rv.add_parser("publish", help="on the province database: a publication "
                                                "(and replication role) per prefecture"))
    pub.add_argument("--inventory", required=True)
    pub.add_argument("--prefectures", help="comma-separated codes (default: all)")
    pub.set_defaults(func=cmd_replicas_publish)
    sub = dsn_arg(rv.add_parser("subscribe", help="on a prefecture IVR's database: subscribe "
                                                  "to its publication (once)"))
    sub.add_argument("--inventory", required=True)
    sub.add_argument("--prefecture", required=True)
    sub.add_argument("--passfile", help="the replication role's password file on this host "
                                        "(default: /etc/pbxctl/replication.pgpass)")
    sub.add_argument("--publisher-host", help="reach the province database at these "
                                              "addresses (comma-separated) instead of the "
                                              "province host's two")
    sub.add_argument("--publisher-port", type=int, help="its port (default 5432)")
    sub.set_defaults(func=cmd_replicas_subscribe)
    st = dsn_arg(rv.add_parser("status", help="publications and subscriptions: connected, "
                                              "lag, sync state, errors (exit 1 if unhealthy)"))
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_replicas_status)
