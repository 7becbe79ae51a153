"""Queries over call records and the recording index (written by pbxctl.services.collector)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from pbxctl.core.errors import InputError
from pbxctl.data.recordings import TOLERANCE_S, inspect_recording
from pbxctl.data.store import Store

_REC_COLUMNS = (
    "r.site", "r.uniqueid", "c.linkedid", "c.origin", "c.caller", "c.did", "c.prefecture",
    "c.queue", "c.agent", "c.started_at", "c.answered_at", "c.ended_at", "c.talk_s", "r.path",
    "r.size_bytes", "r.sha256", "r.audio_s", "r.status", "r.problem")


@dataclass(frozen=True)
class RecordingRow:
    site: str
    uniqueid: str
    linkedid: str
    origin: str
    caller: str
    did: str
    prefecture: str
    queue: str
    agent: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    talk_s: Decimal
    path: str
    size_bytes: int
    sha256: str
    audio_s: Decimal
    status: str
    problem: str

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Decimal):
                value = float(value)
            out[key] = value
        return out


def _select(where: str = "", params: tuple[object, ...] = (), *, tail: str = "") -> str:
    return (f"SELECT {', '.join(_REC_COLUMNS)} FROM recordings r JOIN call_records c "
            f"USING (site, uniqueid) {where} {tail}")


def list_recordings(store: Store, *, site: str | None = None, prefecture: str | None = None,
                    status: str | None = None, agent: str | None = None,
                    since: datetime | None = None, limit: int = 100) -> list[RecordingRow]:
    conds: list[str] = []
    params: list[object] = []
    for column, value in (("r.site", site), ("c.prefecture", prefecture), ("c.agent", agent)):
        if value:
            conds.append(f"{column} = %s")
            params.append(value)
    if status == "failed":
        conds.append("r.status <> 'ok'")
    elif status:
        conds.append("r.status = %s")
        params.append(status)
    if since:
        conds.append("c.started_at >= %s")
        params.append(since)
    where = ("WHERE " + " AND ".join(conds)) if conds else ""
    params.append(limit)
    rows = store.execute(_select(where, tail="ORDER BY c.started_at DESC LIMIT %s"),
                         tuple(params))
    return [RecordingRow(*r) for r in rows]  # type: ignore[arg-type]


def find_recording(store: Store, ident: str) -> RecordingRow:
    """By uniqueid (or linkedid); InputError if there is none."""
    rows = store.execute(_select("WHERE r.uniqueid = %s OR c.linkedid = %s OR c.origin = %s",
                                 tail="ORDER BY c.started_at LIMIT 2"), (ident, ident, ident))
    if not rows:
        raise InputError(f"no recording for call {ident!r}",
                         hint="`pbxctl recordings list` shows the indexed ones")
    return RecordingRow(*rows[0])  # type: ignore[arg-type]


def call_count(store: Store, *, site: str) -> int:
    value = store.execute("SELECT count(*) FROM call_records WHERE site = %s", (site,))[0][0]
    assert isinstance(value, int)
    return value


@dataclass(frozen=True)
class Verdict:
    uniqueid: str
    ok: bool
    problems: tuple[str, ...]


def verify(row: RecordingRow, *, root: Path | None = None) -> Verdict:
    """Re-hash the file, re-read its WAV header, compare audio and talk time (± TOLERANCE_S)."""
    path = _local_path(row, root)
    check = inspect_recording(path, talk_s=float(row.talk_s))
    problems: list[str] = []
    if row.status == "ok":
        if check.status != "ok":
            problems.append(f"{check.status}: {check.problem}")
        elif check.sha256 != row.sha256:
            problems.append(f"sha256 changed since indexing ({row.sha256[:12]}… → "
                            f"{check.sha256[:12]}…)")
        elif abs(check.audio_s - float(row.talk_s)) > TOLERANCE_S:
            problems.append(f"{check.audio_s:.2f} s of audio for {float(row.talk_s):.2f} s")
    else:
        problems.append(f"indexed as {row.status}: {row.problem}")
    return Verdict(row.uniqueid, not problems, tuple(problems))


def _local_path(row: RecordingRow, root: Path | None) -> Path:
    """The indexed path, or the same file name under ``root`` (a copy of the store)."""
    return root / Path(row.path).name if root is not None else Path(row.path)


@dataclass(frozen=True)
class Reconciliation:
    files_without_rows: tuple[str, ...]
    rows_without_files: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.files_without_rows and not self.rows_without_files


def reconcile(store: Store, *, site: str, recordings_dir: Path) -> Reconciliation:
    """Files in the store that no index row names, and rows whose file is gone."""
    rows = store.execute("SELECT path, status FROM recordings WHERE site = %s", (site,))
    indexed = {Path(str(p)).name for p, _ in rows}
    expected = {Path(str(p)).name for p, status in rows if status != "missing"}
    on_disk = {p.name for p in recordings_dir.glob("*.wav")} if recordings_dir.is_dir() else set()
    return Reconciliation(tuple(sorted(on_disk - indexed)), tuple(sorted(expected - on_disk)))
