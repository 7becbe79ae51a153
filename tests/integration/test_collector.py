"""The collector and `pbxctl recordings` against a real PostgreSQL, with a call log written
the way the dialplan writes it and real WAV files: torn lines wait, bad lines are kept aside,
a replay inserts nothing twice, rotation loses nothing, verify and reconcile find damage."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from urllib.parse import quote

import pytest

from pbxctl.cli import main
from pbxctl.data.callrecords import CALL_LOG_NAME
from pbxctl.data.calls import call_count, list_recordings
from pbxctl.data.store import Store
from pbxctl.services.collector import Collector, CollectorConfig

pytestmark = pytest.mark.pg

T0 = 1_795_000_000.0


def record(uid: str, *, answer: float | None = T0 + 5, end: float = T0 + 15,
           caller: str = "05718888", recording: bool = True) -> str:
    fields = {"v": "1", "site": "zj-pbx", "uniqueid": uid, "linkedid": uid,
              "origin": f"hz-gw-{uid}", "caller": caller, "did": "057195598",
              "prefecture": "HZ", "mode": "central", "queue": "acd-HZ", "agent": "hz-a001",
              "overflow": "", "service": "", "start": f"{T0:.3f}",
              "answer": "" if answer is None else f"{answer:.3f}",
              "recording": f"pbxctl-{uid}.wav" if recording else "", "queue_status": "",
              "dial_status": "", "hangup_cause": "16", "end": f"{end:.3f}", "eor": "1"}
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items()) + "\n"


def wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * int(8000 * seconds))


@pytest.fixture
def site(tmp_path: Path) -> CollectorConfig:
    return CollectorConfig(call_log=tmp_path / "log" / CALL_LOG_NAME,
                           recordings_dir=tmp_path / "monitor", state_dir=tmp_path / "state",
                           settle_s=0.0)


def append(cfg: CollectorConfig, text: str) -> None:
    cfg.call_log.parent.mkdir(parents=True, exist_ok=True)
    with cfg.call_log.open("a", encoding="utf-8") as fh:
        fh.write(text)


def cli(store: Store, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--dsn", store.config.conninfo], environ={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_collect_is_exactly_once_and_keeps_bad_lines_aside(
        site: CollectorConfig, fresh_db: Store) -> None:
    wav(site.recordings_dir / "pbxctl-a.wav", 10.0)
    wav(site.recordings_dir / "pbxctl-b.wav", 3.0)  # short: a recording that broke off
    torn = record("c").rstrip("\n")[:-6]  # a line still being written: no eor, no newline
    append(site, record("a") + "v=1&site=zj-pbx&garbage\n" + record("b")
           + record("n", answer=None, recording=False) + torn)
    collector = Collector(config=site, store=fresh_db)
    res = collector.run_once()
    assert (res.calls, res.recordings, res.rejected) == (3, 2, 1)
    assert "garbage" in (site.state_dir / "rejected.log").read_text()
    statuses = {r.uniqueid: r.status for r in list_recordings(fresh_db)}
    assert statuses == {"a": "ok", "b": "truncated"}
    assert res.problems and "truncated" in res.problems[0]

    # The rest of the torn line arrives: collected then, and only then.
    append(site, record("c")[len(torn):])
    wav(site.recordings_dir / "pbxctl-c.wav", 10.0)
    assert collector.run_once().calls == 1
    # Losing the position replays the whole log: nothing is inserted twice.
    (site.state_dir / f"{CALL_LOG_NAME}.position").unlink()
    Collector(config=site, store=fresh_db).run_once()
    assert call_count(fresh_db, site="zj-pbx") == 4
    assert len(list_recordings(fresh_db)) == 3


def test_rotation_drains_the_old_log_before_deleting_it(
        site: CollectorConfig, fresh_db: Store) -> None:
    cfg = CollectorConfig(call_log=site.call_log, recordings_dir=site.recordings_dir,
                          state_dir=site.state_dir, rotate_bytes=1, settle_s=0.0)
    collector = Collector(config=cfg, store=fresh_db)
    append(cfg, record("r1", answer=None, recording=False))
    collector.run_once()  # collects r1, then rotates the log away
    rotated = list(cfg.call_log.parent.glob(CALL_LOG_NAME + ".*"))
    assert len(rotated) == 1 and not cfg.call_log.exists()
    with rotated[0].open("a") as fh:  # a writer that opened the file before the rename
        fh.write(record("r2", answer=None, recording=False))
    append(cfg, record("r3", answer=None, recording=False))  # the next call: a new log
    collector.run_once(now=T0 + 10**9)
    assert call_count(fresh_db, site="zj-pbx") == 3
    assert not rotated[0].exists()


def test_recordings_cli_lists_verifies_and_reconciles(
        site: CollectorConfig, fresh_db: Store) -> None:
    wav(site.recordings_dir / "pbxctl-a.wav", 10.0)
    wav(site.recordings_dir / "pbxctl-b.wav", 10.0)
    append(site, record("a", caller="0571\n[evil]") + record("b"))
    Collector(config=site, store=fresh_db).run_once()

    code, out, _ = cli(fresh_db, "recordings", "list", "--json")
    assert code == 0 and '"caller": "0571\\n[evil]"' in out  # stored as data, not as a line
    code, out, _ = cli(fresh_db, "recordings", "show", "hz-gw-b")  # by the gateway's call id
    assert code == 0 and "pbxctl-b.wav" in out
    assert cli(fresh_db, "recordings", "verify")[0] == 0

    with (site.recordings_dir / "pbxctl-b.wav").open("r+b") as fh:  # tampered after indexing
        fh.seek(100)
        fh.write(b"\xff\xff")
    code, out, err = cli(fresh_db, "recordings", "verify")
    assert code == 8 and "b: sha256 changed" in err and "1 with problems" in out

    (site.recordings_dir / "pbxctl-a.wav").unlink()
    wav(site.recordings_dir / "pbxctl-orphan.wav", 1.0)
    code, out, err = cli(fresh_db, "recordings", "reconcile", "--site", "zj-pbx",
                         "--recordings", str(site.recordings_dir), "--json")
    assert code == 8
    assert '"files_without_rows": ["pbxctl-orphan.wav"]' in out
    assert '"rows_without_files": ["pbxctl-a.wav"]' in out
    code, _, err = cli(fresh_db, "recordings", "show", "nope")
    assert code == 3 and "no recording for call 'nope'" in err


def test_collect_cli_with_the_database_down_says_nothing_is_lost(
        site: CollectorConfig, tmp_path: Path) -> None:
    append(site, record("x", answer=None, recording=False))
    out, err = io.StringIO(), io.StringIO()
    code = main(["calls", "collect", "--dsn", f"host={tmp_path} port=1 connect_timeout=1",
                 "--log-dir", str(site.call_log.parent), "--recordings",
                 str(site.recordings_dir), "--state", str(site.state_dir)],
                environ={}, stdout=out, stderr=err)
    assert code == 9
    assert "nothing is lost" in err.getvalue() and str(site.call_log) in err.getvalue()
    assert not (site.state_dir / f"{CALL_LOG_NAME}.position").exists()
