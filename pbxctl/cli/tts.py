"""`pbxctl tts say`: synthesise text into an audio file the PBX plays."""

from __future__ import annotations

import argparse
from pathlib import Path

from pbxctl.cli.env import Env, Verbs, verbs


def cmd_say(args: argparse.Namespace, env: Env) -> int:
    from pbxctl.services.tts import DEFAULT_VOICE, synthesize_to

    used = synthesize_to(args.text, Path(args.output), engine_name=args.engine,
                         voice=args.voice or DEFAULT_VOICE["zh"], fallback=not args.no_fallback)
    if used != args.engine:
        env.err.print(f"[yellow]{args.engine} unavailable; used {used}[/]")
    env.out.print(f"wrote {args.output} ({used})")
    return 0


def register(nouns: Verbs) -> None:
    tts = verbs(nouns, "tts", "text to speech")
    say = tts.add_parser("say", help="synthesise TEXT into an audio file the PBX plays")
    say.add_argument("text")
    say.add_argument("-o", "--output", required=True,
                     help="FILE.wav|.sln|.ulaw|.alaw|.gsm (8 kHz mono)")
    say.add_argument("--engine", default="espeak-ng", choices=["espeak-ng", "gtts"])
    say.add_argument("--voice", help="engine voice (default: cmn-latn-pinyin, Mandarin)")
    say.add_argument("--no-fallback", action="store_true",
                     help="fail instead of falling back to espeak-ng")
    say.set_defaults(func=cmd_say)
