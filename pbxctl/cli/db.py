"""`pbxctl db migrate`: the PostgreSQL store's schema (and sample self-service data)."""

from __future__ import annotations

import argparse

from pbxctl.cli.env import Env, Verbs, dsn_arg, inventory, store, verbs
from pbxctl.core.errors import UsageError


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


def register(nouns: Verbs) -> None:
    db = verbs(nouns, "db", "the PostgreSQL store")
    mig = dsn_arg(db.add_parser("migrate", help="apply pending schema migrations"))
    mig.add_argument("--sample-data", action="store_true",
                     help="also insert sample accounts, bills and outages (idempotent)")
    mig.add_argument("--inventory", help="inventory whose prefectures get the sample data")
    mig.set_defaults(func=cmd_migrate)
