"""What this host can run: the Asterisk builds found, their module sets, the tools pbxctl
uses, and for anything missing the feature it breaks and the command that fixes it."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pbxctl.pbx.asterisk_modules import SUPPORTED, modules_for, traits
from pbxctl.pbx.freeswitch_modules import FS_PREFIX
from pbxctl.pbx.freeswitch_modules import MODULES as FS_MODULES

# Which pbxctl feature needs which modules (the rest of the list is plumbing they rely on).
FEATURES: dict[str, tuple[str, ...]] = {
    "SIP trunks and seats (PJSIP)": ("chan_pjsip", "res_pjsip", "res_pjsip_session",
                                     "res_pjsip_registrar", "res_rtp_asterisk"),
    "central control (FastAGI)": ("res_agi",),
    "queues and overflow": ("app_queue",),
    "recording": ("app_mixmonitor", "format_wav"),
    "supervisor listen/whisper/barge": ("app_chanspy",),
    "call records (local call log)": ("func_env", "func_uri", "func_strings"),
    "self-service prompts and DTMF": ("app_read", "app_playback", "format_pcm"),
}

TOOLS: dict[str, tuple[str, str]] = {
    "sipp": ("real test calls", "apt-get install sip-tester"),
    "espeak-ng": ("offline TTS of the prompt catalogue", "apt-get install espeak-ng"),
    "sox": ("prompt audio conversion", "apt-get install sox"),
    "pg_ctl": ("private PostgreSQL clusters (tests, lab)", "apt-get install postgresql"),
}


@dataclass
class EngineReport:
    major: int
    binary: str
    version: str = ""
    present: bool = False
    modules_missing: list[str] = field(default_factory=list)
    features_broken: dict[str, list[str]] = field(default_factory=dict)
    fix: str = ""

    @property
    def usable(self) -> bool:
        return self.present and not self.modules_missing


def _version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10,
                             check=False).stdout.strip()
    except OSError as exc:
        return f"unrunnable: {exc}"
    return out.removeprefix("Asterisk ")


def engine_report(major: int) -> EngineReport:
    t = traits(major)
    rep = EngineReport(major, t.binary, fix=t.fix)
    if not os.access(t.binary, os.X_OK):
        rep.features_broken = {f: list(mods) for f, mods in FEATURES.items()}
        return rep
    rep.present = True
    rep.version = _version(t.binary)
    have = {p.stem for p in Path(t.moddir).glob("*.so")}
    rep.modules_missing = [m for m in modules_for(major) if m not in have]
    for feature, mods in FEATURES.items():
        gone = [m for m in mods if m not in have]
        if gone:
            rep.features_broken[feature] = gone
    return rep


def pg_bindir_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    return None


def tool_report() -> dict[str, str | None]:
    return {name: (pg_bindir_tool(name) if name == "pg_ctl" else shutil.which(name))
            for name in TOOLS}


def all_engines() -> list[EngineReport]:
    return [engine_report(m) for m in sorted(SUPPORTED, reverse=True)]


@dataclass
class FreeSwitchReport:
    binary: str
    present: bool = False
    version: str = ""
    modules_missing: list[str] = field(default_factory=list)
    fix: str = "make setup (scripts/build-freeswitch.sh, from ../shared/vendor/freeswitch)"


def freeswitch_report(prefix: Path = FS_PREFIX) -> FreeSwitchReport:
    """The FreeSWITCH build: present (with its build stamp), version, modules missing. Optional:
    only FreeSWITCH sites and their tests need it."""
    rep = FreeSwitchReport(str(prefix / "bin" / "freeswitch"))
    if not os.access(rep.binary, os.X_OK) or not (prefix / ".pbxctl-build").is_file():
        return rep
    rep.present = True
    try:
        out = subprocess.run([rep.binary, "-version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except OSError as exc:
        out = f"unrunnable: {exc}"
    rep.version = out.strip().removeprefix("FreeSWITCH version: ").split(" ")[0]
    have = {p.stem for p in (prefix / "lib" / "freeswitch" / "mod").glob("*.so")}
    rep.modules_missing = [m for m in FS_MODULES if m not in have]
    return rep
