"""Golden-file comparison shared by the renderer tests.

A normal run only compares. `make golden` (PBXCTL_UPDATE_GOLDEN=1, renderer tests only) only
rewrites: it never compares in the same run, so an update cannot "pass" against itself.
Review the rewritten files with `git diff tests/golden` before committing them."""

from __future__ import annotations

import os
from pathlib import Path

UPDATE = "PBXCTL_UPDATE_GOLDEN"


def updating() -> bool:
    return bool(os.environ.get(UPDATE))


def assert_golden(folder: Path, files: dict[str, str]) -> None:
    if updating():
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if old.name not in files:
                old.unlink()
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        return
    assert sorted(files) == sorted(p.name for p in folder.iterdir())
    for name, text in files.items():
        assert text == (folder / name).read_text(encoding="utf-8"), f"{folder.name}/{name} differs"
