"""The floors contract (setup.cfg [importlinter]) fails on a back-arrow, not only passes today.

A copy of the three packages gets one deliberate back-import (core → CLI); import-linter, run
on the copy with the repository's own contract, must refuse it and name the import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = ("pbxctl", "provisioning", "ivr_scripts")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--config", str(tree / "setup.cfg"), "--no-cache"],
                          cwd=tree, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(tree)})


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tree / pkg,
                        ignore=shutil.ignore_patterns("__pycache__", "*.sql", "*.xml"))
    shutil.copy(ROOT / "setup.cfg", tree / "setup.cfg")
    return tree


def test_the_floors_hold_and_a_back_import_breaks_the_contract(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    clean = _lint(tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "1 kept, 0 broken" in clean.stdout

    errors = tree / "pbxctl" / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport pbxctl.cli  # a back-arrow\n")
    broken = _lint(tree)
    assert broken.returncode != 0
    assert "BROKEN" in broken.stdout
    assert "pbxctl.core.errors -> pbxctl.cli" in broken.stdout, broken.stdout
