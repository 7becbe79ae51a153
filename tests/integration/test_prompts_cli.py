"""The prompt catalogue through the CLI against real PostgreSQL: publish to every site of an
inventory, then `status` finds a missing and a corrupt file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pbxctl.cli import main
from pbxctl.data.store import Store
from pbxctl.services.tts import FORMATS

pytestmark = pytest.mark.pg


def _run(*argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=env, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_publish_then_status_finds_drift(fresh_db: Store, small_inventory_path: Path,
                                         tmp_path: Path, tts_cache_dir: Path) -> None:
    env = {"PBXCTL_DSN": fresh_db.config.conninfo}
    inv, target = str(small_inventory_path), str(tmp_path / "deploy")
    assert _run("prompts", "init", env=env)[0] == 0
    code, out, _ = _run("prompts", "add", "holiday-2027", "--text", "新春快乐，欢迎致电。",
                        "--kind", "welcome", env=env)
    assert code == 0 and "holiday-2027 v1 added" in out
    assert _run("prompts", "rule", "holiday-2027", "--kind", "holiday", "--from",
                "2027-02-10T00:00+08:00", "--until", "2027-02-17T00:00+08:00", env=env)[0] == 0
    assert _run("prompts", "rule", "nope", "--kind", "holiday", env=env)[0] == 3
    code, out, err = _run("prompts", "publish", "--inventory", inv, "--target", target,
                          "--cache", str(tts_cache_dir), env=env)
    assert code == 0, err
    code, out, _ = _run("prompts", "status", "--inventory", inv, "--target", target, env=env)
    assert code == 0 and "every site holds every published prompt" in out

    folder = tmp_path / "deploy" / "hz-gw" / "sounds" / "pbxctl" / "holiday-2027"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{v}.{fmt}" for v in ("v1", "current") for fmt in FORMATS)
    manifest = json.loads((folder.parent / "manifest.json").read_text())
    assert manifest["holiday-2027"]["version"] == 1
    (folder / "v1.gsm").unlink()
    (folder / "current.alaw").write_bytes(b"\0" * 10)
    code, out, _ = _run("prompts", "status", "--inventory", inv, "--target", target, "--json",
                        env=env)
    assert code == 1
    drift = json.loads(out)["drift"]
    assert {"site": "hz-gw", "prompt": "holiday-2027", "problem": "v1.gsm missing"} in drift
    assert {"site": "hz-gw", "prompt": "holiday-2027",
            "problem": "current.alaw corrupt (sha256 differs)"} in drift
    assert all(d["site"] == "hz-gw" for d in drift)  # the other sites are intact

    # A new version is published everywhere; the old one stays for calls that asked for it.
    assert _run("prompts", "add", "holiday-2027", "--text", "新春快乐！", env=env)[0] == 0
    assert _run("prompts", "publish", "--inventory", inv, "--target", target,
                "--cache", str(tts_cache_dir), env=env)[0] == 0
    assert (folder / "v2.wav").exists() and (folder / "v1.wav").exists()
    assert _run("prompts", "status", "--inventory", inv, "--target", target, env=env)[0] == 0


def test_prompts_without_a_database_is_a_usage_error() -> None:
    code, _, err = _run("prompts", "list", env={})
    assert code == 2 and "PBXCTL_DSN" in err
