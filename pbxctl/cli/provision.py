"""`pbxctl provision validate|render|diff|apply`: inventory → validated model → PBX configs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbxctl.cli.env import Env, Verbs, major, verbs
from pbxctl.core.errors import UsageError
from pbxctl.pbx.asterisk_modules import SUPPORTED

if TYPE_CHECKING:
    from provisioning.model import Inventory
    from provisioning.secrets import Secrets


def load(args: argparse.Namespace) -> tuple[Inventory, Secrets]:
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


def cmd_validate(args: argparse.Namespace, env: Env) -> int:
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


def cmd_render(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.core.files import atomic_write
    from provisioning import render_freeswitch
    from provisioning.render_asterisk import render_all

    inv, secrets = load(args)
    out = Path(args.out)
    rendered: dict[str, Any]
    if args.engine == "freeswitch":
        rendered = render_freeswitch.render_all(inv, secrets, site=args.site)
    else:
        rendered = render_all(inv, secrets, site=args.site, major=major(args, env))
    count = 0
    for site, files in rendered.items():
        for name, f in files.items():
            atomic_write(out / site / name, f.text, mode=f.mode)
            count += 1
    # The self-service replicas' SQL: province.sql and one <code>.sql per prefecture, in a
    # folder no site can be named (host names have no "_").
    if not args.site:
        from provisioning.render_replication import render as render_replication

        for name, sql in render_replication(inv).items():
            atomic_write(out / "_replication" / name, sql.text, mode=sql.mode)
        env.out.print(f"rendered the replication SQL into {out / '_replication'}")
    env.out.print(f"rendered {count} files for {len(rendered)} site(s) into {out}")
    return 0


def cmd_diff(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.ops.deploy import plan, unified_diff
    from provisioning.render_asterisk import render_all

    inv, secrets = load(args)
    changed = 0
    for site, files in render_all(inv, secrets, site=args.site, major=major(args, env)).items():
        changes = plan(Path(args.target) / site / "etc", files)
        changed += len(changes)
        env.stdout.write(unified_diff(site, changes))
    if not changed:
        env.err.print("no differences")
    return 1 if (changed and args.exit_code) else 0


def cmd_apply(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.ops.deploy import apply_site
    from pbxctl.pbx.ami import AmiClient
    from provisioning.endpoints import site_ami
    from provisioning.expect import expected
    from provisioning.render_asterisk import render_all

    inv, secrets = load(args)
    rendered = render_all(inv, secrets, site=args.site, major=major(args, env))
    for site_name, files in rendered.items():
        site = inv.site(site_name)
        ami = site_ami(site, secrets)
        with AmiClient(host=ami.host, port=ami.port, username=ami.username, secret=ami.secret,
                       source=args.ami_source) as client:

            def run(cmd: str, client: AmiClient = client) -> str:
                return "\n".join(client.command(cmd))

            result = apply_site(site=site_name, root=Path(args.target) / site_name, files=files,
                                run=run, want=expected(inv, site))
        if not result.changed:
            env.out.print(f"{site_name}: up to date")
            continue
        env.out.print(f"{site_name}: applied {', '.join(result.changed)}; reloaded with "
                      f"{'; '.join(result.reloads) or 'nothing'}")
        if result.restart_needed:
            env.out.print(f"{site_name}: restart needed for {', '.join(result.restart_needed)}")
    return 0


def _inv_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("inventory", help="the province inventory YAML")
    sp.add_argument("--site", help="only this site (e.g. hz-gw)")
    sp.add_argument("--secrets", help="secrets file (default: INVENTORY.secrets.yaml)")
    sp.add_argument("--asterisk", type=int, choices=SUPPORTED,
                    help="Asterisk major the configs are for (default: PBXCTL_ASTERISK, "
                         "else 22)")


def register(nouns: Verbs) -> None:
    pv = verbs(nouns, "provision", "inventory → validated model → PBX configs")
    v = pv.add_parser("validate", help="check the inventory; every problem with file:line")
    v.add_argument("inventory")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_validate)
    r = pv.add_parser("render", help="write one config directory per site")
    _inv_args(r)
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--engine", choices=("asterisk", "freeswitch"), default="asterisk",
                   help="which PBX the configs are for (FreeSWITCH: XML; see docs/freeswitch.md)")
    r.set_defaults(func=cmd_render)
    d = pv.add_parser("diff", help="unified diff against what is deployed")
    _inv_args(d)
    d.add_argument("--target", required=True, help="deployment root: TARGET/<site>/etc")
    d.add_argument("--exit-code", action="store_true", help="exit 1 when there are differences")
    d.set_defaults(func=cmd_diff)
    a = pv.add_parser("apply", help="write atomically, reload, verify; roll back on failure")
    _inv_args(a)
    a.add_argument("--target", required=True, help="deployment root: TARGET/<site>/etc")
    a.add_argument("--ami-source", help="local address to reach AMI from (must be permitted)")
    a.set_defaults(func=cmd_apply)
