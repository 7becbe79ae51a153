"""Golden-file comparison shared by the renderer tests (PBXCTL_UPDATE_GOLDEN=1 rewrites)."""

from __future__ import annotations

import os
from pathlib import Path


def assert_golden(folder: Path, files: dict[str, str]) -> None:
    if os.environ.get("PBXCTL_UPDATE_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    assert sorted(files) == sorted(p.name for p in folder.iterdir())
    for name, text in files.items():
        assert text == (folder / name).read_text(encoding="utf-8"), f"{folder.name}/{name} differs"
