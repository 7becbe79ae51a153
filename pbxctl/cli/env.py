"""What every command gets: its environment (streams, environ) and the shared argument helpers."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pbxctl.core.config import ConfigFile, config_path, database_conninfo, load_config
from pbxctl.core.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from pbxctl.data.store import Store
    from provisioning.model import Inventory


@dataclass
class Env:
    """``out``/``err`` (rich consoles) are made on first use: a daemon never prints a table,
    and importing rich costs every one of them ~5 MB (a whole-province lab runs ~95)."""

    environ: Mapping[str, str]
    stdout: TextIO
    stderr: TextIO
    stdin: TextIO | None = None  # None: the process's own (read only by verbs that need it)

    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console(file=self.stdout, highlight=False, soft_wrap=True)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(file=self.stderr, highlight=False, soft_wrap=True)


def new_table(title: str) -> Table:
    from rich.table import Table

    return Table(title=title)


Command = Callable[[argparse.Namespace, Env], int]
# argparse's sub-command collection (its class is private)
Verbs = Any


def verbs(nouns: Verbs, noun: str, helptext: str) -> Verbs:
    """A noun whose verbs are listed, one line each, by ``pbxctl NOUN --help``."""
    return nouns.add_parser(noun, help=helptext, description=helptext,
                            formatter_class=_OneLineHelp).add_subparsers(
        dest="verb", metavar="VERB", required=True)


class _OneLineHelp(argparse.HelpFormatter):
    """Room for the longest verb, so each one's help stays on its own line."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=100)
        self._action_max_length = 20  # argparse undercounts nested verbs: pin the column


def dsn_arg(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--dsn", help="PostgreSQL conninfo without a password (or PBXCTL_DSN, or "
                                  "database.dsn in the config file)")
    config_arg(sp)
    return sp


def config_arg(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    if not any("--config" in a.option_strings for a in sp._actions):
        sp.add_argument("--config", help="config file (default: PBXCTL_CONFIG, else "
                                         "/etc/pbxctl/pbxctl.yaml when present)")
    return sp


def config_of(args: argparse.Namespace, env: Env) -> ConfigFile:
    return load_config(config_path(getattr(args, "config", None), env.environ))


def conninfo(args: argparse.Namespace, env: Env, *, required: bool = True) -> str:
    dsn = database_conninfo(environ=env.environ, config=config_of(args, env),
                            cli_dsn=getattr(args, "dsn", None) or None)
    if not dsn and required:
        raise UsageError("no database given",
                         hint="pass --dsn CONNINFO, set PBXCTL_DSN, or set database.dsn in "
                              "the config file")
    return dsn


def store(args: argparse.Namespace, env: Env) -> Store:
    from pbxctl.data.store import Store, StoreConfig

    return Store(config=StoreConfig(conninfo=conninfo(args, env)))


def inventory(path: str) -> Inventory:
    from provisioning.inventory import load_inventory

    return load_inventory(Path(path))


def daemon_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def major(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.pbx.engine import default_major

    return int(args.asterisk) if getattr(args, "asterisk", None) else default_major(env.environ)


def run_in_namespace(env: Env, ns: str, argv: list[str], *, marker: tuple[str, str]) -> int:
    """Run `pbxctl ARGV` again inside lab namespace ``ns`` (where the calls and the PBXs'
    addresses are), passing its output on as it comes. ``marker`` (variable, lab tag) tells
    the inner run it is already there."""
    import os
    import subprocess

    with subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "pbxctl", *argv],
                          stdout=subprocess.PIPE, text=True,
                          env={**os.environ, **env.environ, marker[0]: marker[1]}) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            env.stdout.write(line)
            env.stdout.flush()
    return proc.returncode
