"""Starting a batch of the lab's daemons: spawn every one, then wait for each.

A whole-province lab starts ~46 uplink keepers, 23 collectors, 11 watchers and 12 phone
keepers. Started one after the other, each waiting for its ready line before the next is
spawned, the lab spent most of its minute and a half waiting on Python start-up in series on
a 2-core box. Spawning a batch first and then waiting lets the start-ups overlap; the wait
for each stays bounded and names the daemon that did not come up.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbxctl.core.errors import ServiceStartError, WaitTimeout
from pbxctl.core.procs import spawn, stop_pid, tail


@dataclass(frozen=True)
class Daemon:
    """One daemon to start: ready when ``marker`` appears in its log."""

    key: str  # where the lab records it (node, site, service name)
    argv: Sequence[str]
    log: Path
    marker: str
    what: str  # for errors: "uplink keeper of hzgw"
    env: Mapping[str, str] | None = None
    timeout: float = 60.0
    pass_fds: tuple[int, ...] = ()  # sockets it inherits (a listener made in another netns)


def _logged(log: Path, marker: str) -> bool:
    try:
        return marker in log.read_text(errors="replace")
    except FileNotFoundError:
        return False


def start_daemons(batch: Sequence[Daemon], *, interval: float = 0.05) -> dict[str, dict[str, Any]]:
    """Spawn every daemon of ``batch``, then wait until each has logged its marker.

    Returns key → {"pid", "log"}. If one exits or is not ready within its own timeout (counted
    from the moment the batch was spawned), every daemon of the batch is stopped and the
    error names the first that failed — nothing is left half-started."""
    procs = []
    try:
        for d in batch:
            procs.append((d, spawn(d.argv, log_path=d.log, env=d.env, pass_fds=d.pass_fds)))
        started = time.monotonic()
        pending = list(procs)
        while pending:
            still = []
            for d, proc in pending:
                if _logged(d.log, d.marker):
                    continue
                if proc.poll() is not None:
                    raise ServiceStartError(f"{d.what}: exited", hint=f"see {d.log}",
                                            detail=tail(d.log))
                if time.monotonic() - started > d.timeout:
                    raise WaitTimeout(f"timed out after {d.timeout:g}s waiting for {d.what}",
                                      hint=f"see {d.log}")
                still.append((d, proc))
            pending = still
            if pending:
                time.sleep(interval)
    except BaseException:
        for _, proc in procs:
            stop_pid(proc.pid)
        raise
    return {d.key: {"pid": proc.pid, "log": str(d.log)} for d, proc in procs}
