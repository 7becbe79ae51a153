"""Moves a PBX's call log into PostgreSQL: a call record per call, an index row per recording.

At-least-once and idempotent: rows are inserted with ON CONFLICT DO NOTHING in one transaction
per batch, and only then is the position (inode + offset) saved, atomically. A database outage
leaves the position where it was; the lines wait in the call log. A line that cannot be parsed
is copied to ``rejected.log`` beside the position file (and counted), never silently dropped.

Rotation is ours, not logrotate's: once everything is collected and the log is bigger than
``rotate_bytes``, it is renamed to ``<log>.<epoch>``; Asterisk opens the log per write, so the
next call starts a new file, and the renamed one is drained before it is deleted. FreeSWITCH's
mod_cdr_csv keeps its file open instead: there ``rotate`` asks the switch to rename and reopen
it under its own lock (``cdr_csv rotate`` over the event socket), so no line can land in a
file the collector is about to delete.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pbxctl.core.errors import InputError, PbxctlError, StoreRefused, StoreUnavailable
from pbxctl.core.files import atomic_write
from pbxctl.data.callrecords import CallRecord, Chunk, Position, parse_record, read_complete_lines
from pbxctl.data.recordings import RecordingCheck, inspect_recording, read_wav_header
from pbxctl.data.store import Store

log = logging.getLogger("pbxctl.services.collector")

# A recording whose header is not finalised yet may still be being closed by MixMonitor.
SETTLE_S = 5.0

_INSERT_CALL = (
    "INSERT INTO call_records (site, uniqueid, linkedid, origin, caller, did, prefecture, mode,"
    " queue, agent, overflow, service, queue_status, dial_status, hangup_cause, started_at,"
    " answered_at, ended_at, talk_s) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (site, uniqueid) DO NOTHING")
_INSERT_RECORDING = (
    "INSERT INTO recordings (site, uniqueid, path, size_bytes, sha256, audio_s, status, problem)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (site, uniqueid) DO NOTHING")


@dataclass
class CollectResult:
    calls: int = 0
    recordings: int = 0
    rejected: int = 0
    waiting: int = 0  # records left for a later pass (recording still being closed)
    skipped: int = 0  # legs FreeSWITCH reported that are no call record (not marked)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CollectorConfig:
    call_log: Path
    recordings_dir: Path
    state_dir: Path
    rotate_bytes: int = 64 * 1024 * 1024
    settle_s: float = SETTLE_S
    # The PBX rotates its own call log (it holds it open); None: rename it here.
    rotate: Callable[[], None] | None = None


class Collector:
    def __init__(self, *, config: CollectorConfig, store: Store) -> None:
        self.config = config
        self.store = store

    # -- position -------------------------------------------------------------
    @property
    def _position_file(self) -> Path:
        return self.config.state_dir / (self.config.call_log.name + ".position")

    def _load_position(self) -> Position | None:
        try:
            data = json.loads(self._position_file.read_text())
            return Position(int(data["inode"]), int(data["offset"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{self._position_file}: unreadable collector position: {exc}",
                             hint="delete it to re-collect from the start (duplicates are"
                                  " ignored)") from exc

    def _save_position(self, pos: Position) -> None:
        atomic_write(self._position_file, json.dumps({"inode": pos.inode, "offset": pos.offset}))

    # -- one pass ---------------------------------------------------------------
    def run_once(self, *, now: float | None = None) -> CollectResult:
        """Collect everything complete; StoreUnavailable leaves the position untouched."""
        now = time.time() if now is None else now
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        result = CollectResult()
        for path in [*self._rotated(), self.config.call_log]:
            done = self._drain(path, now, result)
            if path != self.config.call_log and done and now - path.stat().st_mtime > 2.0:
                path.unlink()  # fully collected, and no writer can still hold it open
            if not done:
                break
        self._maybe_rotate(now)
        return result

    def _rotated(self) -> list[Path]:
        base = self.config.call_log
        return sorted(base.parent.glob(base.name + ".*"),
                      key=lambda p: p.name.rsplit(".", 1)[-1])

    def _drain(self, path: Path, now: float, result: CollectResult) -> bool:
        """Collect ``path`` to its end; False if something must wait for a later pass."""
        while True:
            chunk = read_complete_lines(path, self._load_position())
            if chunk is None or not chunk.lines:
                if chunk is not None:
                    self._save_position(Position(chunk.inode, chunk.end))
                return True
            upto = self._collect_chunk(chunk, now, result)
            self._save_position(Position(chunk.inode, upto))
            if upto < chunk.end:
                return False

    def _collect_chunk(self, chunk: Chunk, now: float, result: CollectResult) -> int:
        statements: list[tuple[str, tuple[object, ...]]] = []
        by_line: list[tuple[str, list[tuple[str, tuple[object, ...]]]]] = []
        upto = chunk.start
        rejected: list[str] = []
        for offset, line in chunk.lines:
            where = f"{chunk.path}:byte {offset}"
            try:
                rec = parse_record(line, where=where)
            except InputError as exc:
                log.error("rejected call record: %s", exc.message)
                rejected.append(line if line.endswith("\n") else line + "\n")
                upto = offset + len(line.encode())
                continue
            if rec is None:
                result.skipped += 1
                upto = offset + len(line.encode())
                continue
            check = self._check_recording(rec, now)
            if isinstance(check, str):  # "wait"
                result.waiting += 1
                break
            mine: list[tuple[str, tuple[object, ...]]] = [(_INSERT_CALL, _call_params(rec))]
            result.calls += 1
            if check is not None:
                mine.append((_INSERT_RECORDING, (
                    rec.site, rec.uniqueid, check.path, check.size_bytes, check.sha256,
                    round(check.audio_s, 3), check.status, check.problem)))
                result.recordings += 1
                if check.status != "ok":
                    msg = f"recording {rec.uniqueid} ({rec.site}): {check.status}: {check.problem}"
                    log.warning("%s", msg)
                    result.problems.append(msg)
            statements.extend(mine)
            by_line.append((line, mine))
            upto = offset + len(line.encode())
        if statements:
            try:
                self.store.execute_batch(statements)  # StoreUnavailable: nothing advances
            except StoreRefused:
                # One record the database will never take: insert one by one, quarantine it.
                for line, mine in by_line:
                    try:
                        self.store.execute_batch(mine)
                    except StoreRefused as exc:
                        log.error("rejected call record: %s", exc.message)
                        rejected.append(line if line.endswith("\n") else line + "\n")
                        result.calls -= 1
        if rejected:
            with (self.config.state_dir / "rejected.log").open("a", encoding="utf-8") as fh:
                fh.writelines(rejected)
            result.rejected += len(rejected)
        return upto

    def _check_recording(self, rec: CallRecord, now: float) -> RecordingCheck | str | None:
        if rec.answer is None or not rec.recording:
            return None
        path = self.config.recordings_dir / rec.recording
        if path.is_file() and now - rec.end < self.config.settle_s:
            try:
                if not read_wav_header(path).finalised:
                    return "wait"
            except (ValueError, OSError):
                return "wait"
        elif not path.is_file() and now - rec.end < self.config.settle_s:
            return "wait"
        return inspect_recording(path, talk_s=rec.talk_s)

    def _maybe_rotate(self, now: float) -> None:
        log_path = self.config.call_log
        pos = self._load_position()
        try:
            st = log_path.stat()
        except FileNotFoundError:
            return
        if pos and pos.inode == st.st_ino and pos.offset == st.st_size \
                and st.st_size >= self.config.rotate_bytes:
            if self.config.rotate is not None:
                try:
                    self.config.rotate()
                except PbxctlError as exc:  # housekeeping: the next pass asks again
                    log.warning("call log not rotated: %s", exc.message)
            else:
                os.rename(log_path, log_path.with_name(f"{log_path.name}.{int(now * 1000)}"))

    # -- follow -----------------------------------------------------------------
    def follow(self, *, stop: threading.Event, interval: float = 1.0) -> None:
        """Collect until ``stop`` is set; a database outage is waited out, not fatal."""
        backoff = interval
        while not stop.is_set():
            try:
                res = self.run_once()
                backoff = interval
                if res.calls or res.rejected:
                    log.info("collected %d calls, %d recordings, %d rejected",
                             res.calls, res.recordings, res.rejected)
            except StoreUnavailable as exc:
                log.warning("database unavailable, call records wait in %s: %s",
                            self.config.call_log, exc.message)
                backoff = min(backoff * 2, 15.0)
            stop.wait(backoff)


def _call_params(rec: CallRecord) -> tuple[object, ...]:
    return (rec.site, rec.uniqueid, rec.linkedid, rec.origin, rec.caller, rec.did,
            rec.prefecture, rec.mode, rec.queue, rec.agent, rec.overflow, rec.service,
            rec.queue_status, rec.dial_status, rec.hangup_cause, CallRecord.ts(rec.start),
            CallRecord.ts(rec.answer), CallRecord.ts(rec.end), round(rec.talk_s, 3))
