"""File writes that are never half-done."""

from __future__ import annotations

import contextlib
import grp
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path


def atomic_write(path: Path, text: str | bytes, *, mode: int = 0o644,
                 groups: Sequence[str] = ()) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``.

    The temp file is created 0600, so a secret is never readable by others, not even for a
    moment; ``groups``: the first of these groups that exists owns the file (when root)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        gid = _first_group(groups)
        if gid is not None:
            os.chown(tmp, -1, gid)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _first_group(names: Sequence[str]) -> int | None:
    if not names or os.geteuid() != 0:
        return None
    for name in names:
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            continue
    return None
