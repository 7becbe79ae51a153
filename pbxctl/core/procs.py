"""Start, watch and stop child processes by PID, every wait bounded."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pbxctl.core.errors import MissingDependencyError, WaitTimeout

SETUP_HINT = "run `make setup` (as root) to install it"


def require_binary(name: str, *, hint: str = SETUP_HINT, search: Sequence[str] = ()) -> str:
    """Return the absolute path of ``name`` or raise a one-line error saying how to get it."""
    for candidate in search:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise MissingDependencyError(f"required program {name!r} not found", hint=hint)
    return found


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with output going to ``log_path``.

    Its own session means a Ctrl-C aimed at the caller does not hit it and it can outlive
    the caller (the lab); we always keep the PID to stop it ourselves.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is dead for every purpose here.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_pid_gone(pid: int, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        if not pid_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def stop_pid(pid: int, *, grace: float = 5.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Never raises for a gone process."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            _reap(pid)
            return
        if wait_pid_gone(pid, timeout=wait):
            return
    raise WaitTimeout(f"process {pid} survived SIGKILL",
                      hint="check for a stuck kernel wait (D state)")


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    hint: str | None = None,
    interval: float = 0.02,
) -> None:
    """Poll ``predicate`` until true; raise WaitTimeout naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}", hint=hint)
        time.sleep(interval)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:]) or "(log empty)"
