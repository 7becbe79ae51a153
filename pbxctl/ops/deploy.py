"""diff and apply rendered configs to a site's config directory, with reload and rollback.

A deployment target holds one folder per site laid out like a sandbox root: ``<site>/etc``
(the config files) and, when readable, ``<site>/log/messages`` (scanned for new ERROR lines).
``apply`` writes every changed file atomically (the previous version is kept under
``etc/.pbxctl-prev/``), runs each reload once, then checks that Asterisk shows exactly what the
model says. A reload is not trusted on its own: Asterisk reports success even when it rejects
a file and keeps the old configuration. On any failure the previous files are restored and
reloaded, and the error names what went wrong.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pbxctl.core.errors import CommandFailed
from pbxctl.core.files import atomic_write
from pbxctl.pbx import asterisk_show
from provisioning.expect import SiteExpectation, differences
from provisioning.render_asterisk import RenderedFile
from provisioning.sensitive import PBX_GROUPS, mask, mode_for

# Deployment-local layout, not part of what a reload can change; written at install time only.
NOT_APPLIED = frozenset({"asterisk.conf"})
# Reload order: transports/endpoints before the queues and dialplan that use them.
RELOAD_ORDER = ("module reload res_pjsip.so", "module reload res_rtp_asterisk.so",
                "module reload app_queue.so", "dialplan reload", "manager reload",
                "moh reload", "logger reload")
PREV_DIR = ".pbxctl-prev"

CliRunner = Callable[[str], str]


@dataclass(frozen=True)
class FileChange:
    name: str
    old: str | None
    new: str
    reload: str | None


@dataclass
class ApplyResult:
    site: str
    changed: list[str] = field(default_factory=list)
    reloads: list[str] = field(default_factory=list)
    restart_needed: list[str] = field(default_factory=list)


def plan(etc: Path, files: dict[str, RenderedFile]) -> list[FileChange]:
    changes = []
    for name, f in sorted(files.items()):
        if name in NOT_APPLIED:
            continue
        path = etc / name
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != f.text:
            changes.append(FileChange(name, old, f.text, f.reload))
    return changes


def unified_diff(site: str, changes: list[FileChange]) -> str:
    out: list[str] = []
    for ch in changes:
        # Secret values never reach the terminal; a changed secret still shows as a -/+ pair.
        out += (mask(line) for line in difflib.unified_diff(
            (ch.old or "").splitlines(keepends=True), ch.new.splitlines(keepends=True),
            fromfile=f"deployed/{site}/{ch.name}" if ch.old is not None else "/dev/null",
            tofile=f"rendered/{site}/{ch.name}"))
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def observe(run: CliRunner) -> tuple[set[str], dict[str, set[str]], dict[str, set[str]]]:
    return (asterisk_show.endpoints(run("pjsip show endpoints")),
            asterisk_show.dialplan(run("dialplan show")),
            asterisk_show.queues(run("queue show")))


def _log_size(log: Path | None) -> int:
    try:
        return log.stat().st_size if log is not None else 0
    except FileNotFoundError:
        return 0


def _new_errors(log: Path | None, offset: int) -> list[str]:
    if log is None or not log.exists():
        return []
    with open(log, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode(errors="replace")
    return [line for line in text.splitlines() if "ERROR[" in line]


def _write(etc: Path, changes: list[FileChange]) -> None:
    prev = etc / PREV_DIR
    for ch in changes:
        if ch.old is not None:  # the rollback copy holds the same secrets: same mode
            atomic_write(prev / ch.name, ch.old, mode=mode_for(ch.name), groups=PBX_GROUPS)
        atomic_write(etc / ch.name, ch.new, mode=mode_for(ch.name), groups=PBX_GROUPS)


def _reloads(changes: list[FileChange]) -> list[str]:
    wanted = {ch.reload for ch in changes if ch.reload}
    return [cmd for cmd in RELOAD_ORDER if cmd in wanted]


def apply_site(*, site: str, root: Path, files: dict[str, RenderedFile], run: CliRunner,
               want: SiteExpectation) -> ApplyResult:
    etc, log = root / "etc", root / "log" / "messages"
    changes = plan(etc, files)
    result = ApplyResult(site, changed=[c.name for c in changes])
    if not changes:
        return result
    result.restart_needed = [c.name for c in changes if c.reload is None]
    offset = _log_size(log)
    _write(etc, changes)
    problems: list[str] = []
    try:
        for cmd in _reloads(changes):
            result.reloads.append(cmd)
            out = run(cmd)
            if "fail" in out.lower() or "unable" in out.lower():
                problems.append(f"{cmd}: {out.strip()}")
        problems += [f"Asterisk logged: {line}" for line in _new_errors(log, offset)]
        problems += differences(want, *observe(run))
    except CommandFailed as exc:
        problems.append(str(exc))
    if problems:
        _rollback(etc, changes, run)
        raise CommandFailed(
            f"apply to {site} failed and was rolled back ({len(problems)} problem(s))",
            hint="the previous configuration is active again; fix the inventory or template",
            detail="\n".join(problems))
    return result


def _rollback(etc: Path, changes: list[FileChange], run: CliRunner) -> None:
    for ch in changes:
        if ch.old is None:
            (etc / ch.name).unlink(missing_ok=True)
        else:
            atomic_write(etc / ch.name, ch.old, mode=mode_for(ch.name), groups=PBX_GROUPS)
    for cmd in _reloads(changes):
        # The files are back; if this reload fails, the next reload or restart picks them up.
        with contextlib.suppress(CommandFailed):
            run(cmd)
