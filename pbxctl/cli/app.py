"""The `pbxctl` command: `pbxctl <noun> <verb>`, a thin command table, errors → exit codes here.

``main()`` takes its environment (argv, environ, streams) so tests run it in-process.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from pbxctl.cli.env import Command, Env, Verbs
from pbxctl.core.errors import PbxctlError, UsageError
from pbxctl.core.redact import redact_text

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130

# The command table: each module registers one noun (or two) and its verbs. A module is
# imported only when its noun is used (all of them for --help or an unknown word): a daemon
# started as `pbxctl uplink run` does not load thirteen other command modules and what they
# import — a few MB per process, ~95 daemons in a whole-province lab.
MODULES = ("lab", "cti", "db", "provision", "prompts", "tts", "status", "calls", "orders",
           "survive", "uplink", "drill", "host", "relay", "console")
NOUN_MODULE = {"lab": "lab", "agi": "cti", "esl": "cti", "db": "db", "provision": "provision",
               "prompts": "prompts", "tts": "tts", "status": "status", "calls": "calls",
               "recordings": "calls", "orders": "orders", "survive": "survive",
               "uplink": "uplink", "drill": "drill", "host": "host", "relay": "relay",
               "console": "console"}

# Old spellings, kept for one release: old noun → (new noun, verb inserted after it, or None
# when the old word is replaced by "noun verb"). Hidden from --help.
ALIASES: dict[str, tuple[str, str]] = {
    "tts": ("tts", "say"),
    "status": ("status", "show"),
    "drill": ("drill", "run"),
    "survive": ("survive", "run"),
    "uplink": ("uplink", "run"),
    "doctor": ("host", "doctor"),
    "version": ("host", "version"),
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser for ``argv`` (only its noun's module), or for every noun."""
    p = argparse.ArgumentParser(prog="pbxctl", description=(__doc__ or "").splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")
    nouns = p.add_subparsers(dest="noun", metavar="NOUN")
    word = next((a for a in argv if not a.startswith("-")), None)
    wanted = [NOUN_MODULE[word]] if word in NOUN_MODULE else MODULES
    for name in wanted:
        register: Callable[[Verbs], None] = importlib.import_module(
            f"pbxctl.cli.{name}").register
        register(nouns)
    return p


def _verbs_of(parser: argparse.ArgumentParser, noun: str) -> set[str]:
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        sub = getattr(action, "choices", {}).get(noun)
        if sub is not None and sub._subparsers is not None:
            return {v for a in sub._subparsers._group_actions for v in a.choices}
    return set()


def rewrite_alias(argv: list[str], parser: argparse.ArgumentParser
                  ) -> tuple[list[str], str | None]:
    """An old spelling → the new one, and the deprecation notice to print (or None)."""
    i = next((k for k, a in enumerate(argv) if not a.startswith("-")), None)
    if i is None or argv[i] not in ALIASES:
        return argv, None
    old = argv[i]
    noun, verb = ALIASES[old]
    rest = argv[i + 1:]
    if noun == old and rest and (rest[0] in _verbs_of(parser, noun) or rest[0] in ("-h",
                                                                                "--help")):
        return argv, None  # already the new spelling
    new = [*argv[:i], noun, verb, *rest]
    return new, (f"pbxctl: `pbxctl {old}` is deprecated and will be removed in the next "
                 f"release; use `pbxctl {noun} {verb}`")


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None,
         stdin: TextIO | None = None) -> int:
    out_stream = stdout if stdout is not None else sys.stdout
    err_stream = stderr if stderr is not None else sys.stderr
    env = Env(environ=environ if environ is not None else os.environ,
              stdout=out_stream, stderr=err_stream, stdin=stdin)
    given = list(argv) if argv is not None else sys.argv[1:]
    parser = build_parser(given)
    words, notice = rewrite_alias(given, parser)
    if notice:
        err_stream.write(notice + "\n")
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code or 0)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(file=err_stream)
        return UsageError.exit_code
    return run(func, args, env, err_stream)


def run(func: Command, args: argparse.Namespace, env: Env, err_stream: TextIO) -> int:
    """The one place where errors become exit codes."""
    try:
        return func(args, env)
    except PbxctlError as exc:
        if args.verbose:
            err_stream.write(traceback.format_exc())
        # Last line of defence: no password in a conninfo or URL reaches the terminal.
        err_stream.write(f"pbxctl: error: {redact_text(exc.message)}\n")
        if exc.hint:
            err_stream.write(f"pbxctl: hint: {redact_text(exc.hint)}\n")
        if exc.detail:
            err_stream.write("".join(f"    | {redact_text(line)}\n"
                                     for line in exc.detail.splitlines()))
        return exc.exit_code
    except KeyboardInterrupt:
        err_stream.write("pbxctl: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 -- the one place unexpected errors become an exit code
        if args.verbose:
            err_stream.write(traceback.format_exc())
        err_stream.write(f"pbxctl: internal error: {type(exc).__name__}: "
                         f"{redact_text(str(exc))} "
                         "(run with -v for the traceback)\n")
        return EXIT_INTERNAL
