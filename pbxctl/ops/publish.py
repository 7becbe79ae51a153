"""Publish the central prompt catalogue to every site's own disk; report drift.

Layout per site (a deployment root, like `apply`): ``ROOT/<site>/sounds/pbxctl/<id>/v<N>.<fmt>``
plus ``current.<fmt>`` (the latest published version) and ``manifest.json`` with each file's
sha256. Asterisk plays ``<dir>/<id>/v<N>`` and picks the format matching the call's codec.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pbxctl.core.files import atomic_write
from pbxctl.data.prompts import latest_prompts, mark_published, published_versions
from pbxctl.data.store import Store
from pbxctl.services.tts import DEFAULT_VOICE, FORMATS, TtsCache, TtsRequest
from provisioning.model import Inventory, Site

PROMPT_SUBDIR = Path("sounds") / "pbxctl"
MANIFEST = "manifest.json"


def prompt_dir(root: Path, site: str) -> Path:
    return root / site / PROMPT_SUBDIR


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class PublishResult:
    prompts: list[tuple[str, int]] = field(default_factory=list)
    files_written: int = 0
    sites: list[str] = field(default_factory=list)


def publish(store: Store, inv: Inventory, root: Path, *, cache: TtsCache,
            engine: str = "espeak-ng", sites: list[Site] | None = None) -> PublishResult:
    targets = sites or list(inv.sites())
    result = PublishResult(sites=[s.name for s in targets])
    manifests = {s.name: _read_manifest(prompt_dir(root, s.name)) for s in targets}
    for p in latest_prompts(store):
        voice = DEFAULT_VOICE.get(p.language, p.language)
        audio = {fmt: cache.get(TtsRequest(p.text, engine, voice, fmt)) for fmt in FORMATS}
        shas = {fmt: _sha(path) for fmt, path in audio.items()}
        for site in targets:
            folder = prompt_dir(root, site.name) / p.prompt_id
            for fmt, src in audio.items():
                for name in (f"v{p.version}.{fmt}", f"current.{fmt}"):
                    dst = folder / name
                    if not dst.exists() or _sha(dst) != shas[fmt]:
                        atomic_write(dst, src.read_bytes())
                        result.files_written += 1
            manifests[site.name][p.prompt_id] = {"version": p.version, "sha256": shas,
                                                 "text": p.text}
        mark_published(store, prompt_id=p.prompt_id, version=p.version, sha256=shas["wav"])
        result.prompts.append((p.prompt_id, p.version))
    for site in targets:
        atomic_write(prompt_dir(root, site.name) / MANIFEST,
                     json.dumps(manifests[site.name], ensure_ascii=False, indent=1,
                                sort_keys=True))
    return result


def _read_manifest(folder: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Drift:
    site: str
    prompt: str
    problem: str


def status(store: Store, inv: Inventory, root: Path, *, sites: list[Site] | None = None
           ) -> list[Drift]:
    """Sites missing a published version, or holding a file whose bytes changed."""
    want = published_versions(store)
    out: list[Drift] = []
    for site in sites or list(inv.sites()):
        folder = prompt_dir(root, site.name)
        manifest = _read_manifest(folder)
        if not manifest and want:
            out.append(Drift(site.name, "*", f"no {MANIFEST}: never published here"))
        for prompt_id, version in sorted(want.items()):
            entry = manifest.get(prompt_id)
            if entry is None:
                out.append(Drift(site.name, prompt_id, f"missing (v{version} published)"))
                continue
            shas = entry.get("sha256", {})
            assert isinstance(shas, dict)
            for fmt in FORMATS:
                for name in (f"v{version}.{fmt}", f"current.{fmt}"):
                    path = folder / prompt_id / name
                    if not path.exists():
                        out.append(Drift(site.name, prompt_id, f"{name} missing"))
                    elif _sha(path) != shas.get(fmt):
                        out.append(Drift(site.name, prompt_id, f"{name} corrupt (sha256 differs)"))
    return out
