"""Text-to-speech behind one interface, converted to what Asterisk plays, with a cache.

Engines: espeak-ng (default, offline; Mandarin via the ``cmn-latn-pinyin`` voice — plain ``cmn``
reads Hanzi with English sounds on espeak-ng 1.51) and gTTS (real, optional; it needs Google's
servers, so offline it fails with a clear message and the default engine takes over).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pbxctl.core.errors import CommandFailed, MissingDependencyError, PbxctlError
from pbxctl.core.files import atomic_write
from pbxctl.core.procs import require_binary
from pbxctl.core.words import speakable

log = logging.getLogger("pbxctl.services.tts")

# Asterisk plays each of these with Playback(<path without extension>).
FORMATS: dict[str, list[str]] = {
    "wav": ["-b", "16", "-e", "signed-integer", "-t", "wav"],
    "sln": ["-b", "16", "-e", "signed-integer", "-t", "raw"],
    "ulaw": ["-t", "ul"],
    "alaw": ["-t", "al"],
    "gsm": ["-t", "gsm"],
}
DEFAULT_VOICE = {"zh": "cmn-latn-pinyin", "en": "en"}
SYNTH_TIMEOUT = 30.0


class TtsError(PbxctlError):
    exit_code = 11


class TtsEngine(Protocol):
    name: str

    def synthesize(self, text: str, *, voice: str, out_wav: Path) -> None: ...


class EspeakNg:
    name = "espeak-ng"

    def synthesize(self, text: str, *, voice: str, out_wav: Path) -> None:
        binary = require_binary("espeak-ng")
        # Text on stdin, never on the command line: nothing in it is an option.
        try:
            res = subprocess.run([binary, "-v", voice, "--stdin", "-w", str(out_wav)],
                                 input=text.encode(), capture_output=True,
                                 timeout=SYNTH_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TtsError(f"espeak-ng did not finish in {SYNTH_TIMEOUT:g}s") from exc
        if res.returncode != 0 or not out_wav.exists():
            raise TtsError(f"espeak-ng failed (voice {voice!r}): "
                           f"{res.stderr.decode(errors='replace').strip()[:200]}",
                           hint="`espeak-ng --voices` lists the voices installed")


class GoogleTts:
    """gTTS: real, optional. Offline it raises TtsError at once (no traceback)."""

    name = "gtts"

    def synthesize(self, text: str, *, voice: str, out_wav: Path) -> None:
        from gtts import gTTS  # imported here: optional at run time
        from gtts.tts import gTTSError

        lang = "zh" if voice in ("zh", "cmn-latn-pinyin", "cmn", "zh-CN") else voice
        mp3 = out_wav.with_suffix(".mp3")
        try:
            gTTS(text, lang=lang).save(str(mp3))
        except (gTTSError, OSError, ValueError) as exc:
            raise TtsError(f"gTTS failed: {exc}",
                           hint="gTTS needs Google's servers; use --engine espeak-ng offline"
                           ) from None
        _sox([str(mp3), str(out_wav)], what="mp3 → wav (needs libsox-fmt-mp3)")


ENGINES: dict[str, Callable[[], TtsEngine]] = {"espeak-ng": EspeakNg, "gtts": GoogleTts}


def engine(name: str) -> TtsEngine:
    try:
        return ENGINES[name]()
    except KeyError:
        raise TtsError(f"unknown TTS engine {name!r}; known: {', '.join(ENGINES)}") from None


def _sox(args: list[str], *, what: str) -> None:
    sox = require_binary("sox")
    try:
        res = subprocess.run([sox, "-V1", *args], capture_output=True, timeout=SYNTH_TIMEOUT,
                             check=False)
    except subprocess.TimeoutExpired as exc:
        raise TtsError(f"sox {what} did not finish in {SYNTH_TIMEOUT:g}s") from exc
    if res.returncode != 0:
        raise TtsError(f"sox {what} failed: {res.stderr.decode(errors='replace')[:200]}")


def convert(wav: Path, out: Path, fmt: str) -> None:
    """8 kHz mono in ``fmt``; a little headroom so resampling does not clip."""
    if fmt not in FORMATS:
        raise TtsError(f"unknown audio format {fmt!r}; known: {', '.join(FORMATS)}")
    _sox([str(wav), "-r", "8000", "-c", "1", *FORMATS[fmt], str(out), "gain", "-n", "-3"],
         what=f"wav → {fmt}")


# -- cache --------------------
@dataclass(frozen=True)
class TtsRequest:
    text: str
    engine: str = "espeak-ng"
    voice: str = DEFAULT_VOICE["zh"]
    fmt: str = "wav"

    def key(self) -> str:
        raw = "\0".join((self.engine, self.voice, self.fmt, self.text)).encode()
        return hashlib.sha256(raw).hexdigest()


class TtsCache:
    """Content-addressed: (engine, voice, text, format) → file. Concurrent requests for the same
    key synthesise once, across threads (a lock per key) and processes (an flock per key)."""

    def __init__(self, *, root: Path, fallback_engine: str | None = "espeak-ng") -> None:
        self.root = root
        self.fallback_engine = fallback_engine
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.stats = {"hits": 0, "synth": 0, "fallbacks": 0}

    def path_for(self, req: TtsRequest) -> Path:
        key = req.key()
        return self.root / key[:2] / f"{key}.{req.fmt}"

    def get(self, req: TtsRequest) -> Path:
        path = self.path_for(req)
        if path.exists():
            self._count("hits")
            return path
        with self._guard:
            lock = self._locks.setdefault(req.key(), threading.Lock())
        with lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_suffix(".lock"), "w") as lockfile:
                fcntl.flock(lockfile, fcntl.LOCK_EX)
                if path.exists():
                    self._count("hits")
                    return path
                self._synthesize(req, path)
                self._count("synth")
        return path

    def _count(self, key: str) -> None:
        with self._guard:
            self.stats[key] += 1

    def _synthesize(self, req: TtsRequest, path: Path) -> None:
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            wav = Path(tmp) / "raw.wav"
            try:
                engine(req.engine).synthesize(speakable(req.text), voice=req.voice, out_wav=wav)
            except (TtsError, MissingDependencyError) as exc:
                if not self.fallback_engine or self.fallback_engine == req.engine:
                    raise
                log.warning("TTS engine %s failed (%s); falling back to %s", req.engine, exc,
                            self.fallback_engine)
                self._count("fallbacks")
                voice = DEFAULT_VOICE["zh"] if req.engine == "gtts" else req.voice
                engine(self.fallback_engine).synthesize(speakable(req.text), voice=voice,
                                                        out_wav=wav)
            out = Path(tmp) / f"out.{req.fmt}"
            convert(wav, out, req.fmt)
            atomic_write(path, out.read_bytes())


def synthesize_to(text: str, out: Path, *, engine_name: str = "espeak-ng",
                  voice: str | None = None, fallback: bool = True) -> str:
    """One-off synthesis into ``out`` (format from its suffix). Returns the engine used."""
    fmt = out.suffix.lstrip(".") or "wav"
    if fmt not in FORMATS:
        raise TtsError(f"cannot write {out.name}: format must be one of {', '.join(FORMATS)}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = TtsCache(root=Path(tmp), fallback_engine="espeak-ng" if fallback else None)
        path = cache.get(TtsRequest(text, engine_name, voice or DEFAULT_VOICE["zh"], fmt))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        return "espeak-ng" if cache.stats["fallbacks"] else engine_name


def check_audio(path: Path) -> float:
    """Duration in seconds of an audio file; raises CommandFailed for a corrupt one.

    Headerless formats are checked by size (frame-aligned for GSM); WAV through sox.
    """
    size = path.stat().st_size
    raw = {".sln": 16000, ".ulaw": 8000, ".alaw": 8000}
    if path.suffix in raw:
        if path.suffix == ".sln" and size % 2:
            raise CommandFailed(f"{path}: odd size for 16-bit audio")
        return size / raw[path.suffix]
    if path.suffix == ".gsm":
        if size % 33:
            raise CommandFailed(f"{path}: size {size} is not a whole number of GSM frames")
        return size / 33 * 0.02
    soxi = shutil.which("soxi") or require_binary("sox")
    res = subprocess.run([soxi, "-D", str(path)], capture_output=True, timeout=10, check=False)
    if res.returncode != 0:
        raise CommandFailed(f"{path}: not readable audio: "
                            f"{res.stderr.decode(errors='replace').strip()}")
    return float(res.stdout.strip() or 0)
