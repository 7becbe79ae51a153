"""`pbxctl host doctor|version`: what this host has for pbxctl, and which pbxctl it is."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from pbxctl import __version__
from pbxctl.cli.env import Env, Verbs, verbs
from pbxctl.core.errors import MissingDependencyError


def cmd_doctor(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.ops.doctor import all_engines, freeswitch_report, tool_report
    from pbxctl.pbx.engine import default_major

    engines, tools, fs = all_engines(), tool_report(), freeswitch_report()
    default = default_major(env.environ)
    starts = _freeswitch_starts() if args.start_freeswitch and fs.present else None
    if args.json:
        env.stdout.write(json.dumps({"default": default,
                                     "engines": [e.__dict__ for e in engines],
                                     "freeswitch": {**fs.__dict__, "starts": starts},
                                     "tools": tools}) + "\n")
    else:
        _print_doctor(env, engines, tools, default)
        if not fs.present:
            env.out.print(f"FreeSWITCH: not built at {fs.binary} (optional) — fix: {fs.fix}")
        else:
            missing = ", ".join(fs.modules_missing)
            env.out.print(f"FreeSWITCH: {fs.version} at {fs.binary}: " + (
                f"[red]missing {missing}[/] — fix: {fs.fix}" if missing else "[green]ok[/]"))
        if starts is not None:
            env.out.print(f"  starts: [green]yes[/], ready in {starts['seconds']} s" if
                          starts["ok"] else f"  starts: [red]no[/] — {starts['error']}")
    chosen = next(e for e in engines if e.major == default)
    if not chosen.usable or not all(tools.values()):
        raise MissingDependencyError(
            f"this host cannot run everything pbxctl does with Asterisk {default}",
            hint="the lines above name each missing piece and its fix")
    return 0


def _freeswitch_starts() -> dict[str, object]:
    """Boot the built FreeSWITCH once in a private sandbox on loopback (every pbxctl module,
    the event socket, one SIP profile), then stop it: does it really start here?"""
    import tempfile
    import time

    from pbxctl.core.errors import PbxctlError
    from pbxctl.lab.sandbox.freeswitch import FreeSwitchInstance

    with tempfile.TemporaryDirectory(prefix="pbxctl-doctor-") as tmp:
        fs = FreeSwitchInstance(name="doctor", root=Path(tmp))
        began = time.monotonic()
        try:
            fs.start(timeout=60)
        except PbxctlError as exc:
            return {"ok": False, "error": exc.message}
        else:
            return {"ok": True, "seconds": round(time.monotonic() - began, 1)}
        finally:
            fs.stop()


def _print_doctor(env: Env, engines: Sequence[object], tools: dict[str, str | None],
                  default: int) -> None:
    from pbxctl.ops.doctor import TOOLS, EngineReport

    for e in engines:
        assert isinstance(e, EngineReport)
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


def cmd_version(args: argparse.Namespace, env: Env) -> int:
    env.stdout.write(f"pbxctl {__version__}\n")
    return 0


def register(nouns: Verbs) -> None:
    host = verbs(nouns, "host", "this host: what pbxctl needs, and pbxctl's version")
    doc = host.add_parser("doctor", help="Asterisk versions, modules and tools on this host")
    doc.add_argument("--json", action="store_true")
    doc.add_argument("--start-freeswitch", action="store_true",
                     help="also boot the built FreeSWITCH once in a private sandbox (~5 s)")
    doc.set_defaults(func=cmd_doctor)
    ver = host.add_parser("version", help="print the version")
    ver.set_defaults(func=cmd_version)
