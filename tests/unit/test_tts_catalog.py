"""TTS (real espeak-ng and sox), the cache, Mandarin numbers, the welcome rule choice."""

from __future__ import annotations

import socket
import struct
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from ivr_scripts import phrases
from ivr_scripts.catalog import PromptCatalog, Snapshot, choose_welcome
from pbxctl.core.errors import StoreUnavailable
from pbxctl.core.procs import wait_until
from pbxctl.core.words import money_words, speakable
from pbxctl.data.prompts import Rule
from pbxctl.lab.sandbox.sipp import PCAP_DIR
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario
from pbxctl.services.tts import TtsCache, TtsError, TtsRequest, check_audio

# Written by hand (not computed with cn2an or pbxctl.core.words): what a caller must hear.
AMOUNTS = [
    ("0", "零元整"), ("0.01", "零元零一分"), ("0.10", "零元一角"), ("0.99", "零元九角九分"),
    ("1", "一元整"), ("9.9", "九元九角"), ("10", "十元整"), ("11", "十一元整"),
    ("15.5", "十五元五角"), ("20.30", "二十元三角"), ("99.99", "九十九元九角九分"),
    ("100", "一百元整"), ("100.00", "一百元整"), ("100.05", "一百元零五分"),
    ("101", "一百零一元整"), ("110", "一百一十元整"), ("119.2", "一百一十九元二角"),
    ("123.45", "一百二十三元四角五分"), ("329.26", "三百二十九元二角六分"),
    ("1000", "一千元整"), ("1005.50", "一千零五元五角"), ("1010", "一千零一十元整"),
    ("1234.56", "一千二百三十四元五角六分"), ("2000.08", "二千元零八分"),
    ("10000", "一万元整"), ("10001", "一万零一元整"), ("10010", "一万零一十元整"),
    ("12345.67", "一万二千三百四十五元六角七分"), ("100000", "十万元整"),
    ("101000", "十万一千元整"), ("1000000.01", "一百万元零一分"),
    ("2000000.01", "二百万元零一分"), ("100000000", "一亿元整"),
]
DAYS = [
    (date(2026, 1, 1), "二零二六年一月一日"), (date(2026, 10, 10), "二零二六年十月十日"),
    (date(2026, 11, 20), "二零二六年十一月二十日"),
    (date(2026, 12, 31), "二零二六年十二月三十一日"),
    (date(2030, 2, 28), "二零三零年二月二十八日"), (date(2000, 5, 5), "二零零零年五月五日"),
    (date(2019, 6, 15), "二零一九年六月十五日"),
]
PERIODS = [("2026-01", "二零二六年一月"), ("2026-10", "二零二六年十月"),
           ("2026-11", "二零二六年十一月"), ("2026-12", "二零二六年十二月")]


def zh_ids(words: str) -> list[str]:
    """The fragment naming scheme, restated here: one prompt per character, zh-<code point>."""
    return [f"zh-{ord(ch):04x}" for ch in words]


def test_the_naming_scheme_restated_here_matches_hand_written_ids() -> None:
    assert zh_ids("三百二十九元二角六分") == [
        "zh-4e09", "zh-767e", "zh-4e8c", "zh-5341", "zh-4e5d", "zh-5143", "zh-4e8c", "zh-89d2",
        "zh-516d", "zh-5206"]


@pytest.mark.parametrize(("amount", "words"), AMOUNTS)
def test_an_amount_is_spoken_as_written_by_hand(amount: str, words: str) -> None:
    assert money_words(amount) == words
    assert phrases.money(amount) == zh_ids(words)


@pytest.mark.parametrize(("day", "words"), DAYS)
def test_a_date_is_spoken_as_written_by_hand(day: date, words: str) -> None:
    assert phrases.day(day) == zh_ids(words)


@pytest.mark.parametrize(("period", "words"), PERIODS)
def test_a_bill_period_is_spoken_as_written_by_hand(period: str, words: str) -> None:
    assert phrases.period(period) == zh_ids(words)


def test_speakable_sentence() -> None:
    assert speakable("2026年12月5日前缴纳123.45元") == \
        "二零二六年十二月五日前缴纳一百二十三元四角五分"


def test_cache_synthesises_once_under_concurrency(tmp_path: Path) -> None:
    cache = TtsCache(root=tmp_path)
    req = TtsRequest("欢迎致电", fmt="gsm")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(req))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(set(results)) == 1 and cache.stats == {"hits": 7, "synth": 1, "fallbacks": 0}
    assert check_audio(results[0]) > 0.3  # real speech, whole GSM frames


def test_cache_key_separates_engine_voice_text_format(tmp_path: Path) -> None:
    cache = TtsCache(root=tmp_path)
    base = TtsRequest("欢迎")
    others = [TtsRequest("欢迎", fmt="ulaw"), TtsRequest("欢迎", voice="en"),
              TtsRequest("欢迎!"), TtsRequest("欢迎", engine="gtts")]
    assert len({cache.path_for(r) for r in [base, *others]}) == 5


def test_gtts_unreachable_fails_clearly_or_falls_back(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Google made unreachable on purpose (a proxy on a closed loopback port), so the test
    # means the same on a machine that does have internet.
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{closed_port()}")
    strict = TtsCache(root=tmp_path / "a", fallback_engine=None)
    with pytest.raises(TtsError, match="gTTS failed") as exc:
        strict.get(TtsRequest("测试", engine="gtts"))
    assert "espeak-ng" in (exc.value.hint or "")
    lenient = TtsCache(root=tmp_path / "b")
    assert lenient.get(TtsRequest("测试", engine="gtts")).exists()
    assert lenient.stats["fallbacks"] == 1


def closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_corrupt_gsm_detected(tmp_path: Path) -> None:
    bad = tmp_path / "x.gsm"
    bad.write_bytes(b"\0" * 50)
    with pytest.raises(Exception, match="GSM frames"):
        check_audio(bad)


def _rule(i: int, pid: str, kind: str = "default", **kw: object) -> Rule:
    fields: dict[str, object] = {"prefecture": None, "area_code": None, "valid_from": None,
                                 "valid_until": None, "priority": 0}
    fields.update(kw)
    return Rule(i, pid, kind, **fields)  # type: ignore[arg-type]


NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_welcome_rules() -> None:
    hour = timedelta(hours=1)
    snap = Snapshot((
        _rule(1, "welcome-default"),
        _rule(2, "holiday", "holiday", valid_from=NOW - hour, valid_until=NOW + hour),
        _rule(3, "hz-outage", "outage", prefecture="HZ", valid_from=NOW - hour,
              valid_until=NOW + hour),
        _rule(4, "xs-only", "outage", prefecture="HZ", area_code="0571", valid_until=NOW),
        _rule(5, "never-published", "outage", priority=99),
    ), {"welcome-default": 3, "holiday": 1, "hz-outage": 2, "xs-only": 1}, 0.0)
    assert choose_welcome(snap, prefecture="HZ", caller="057188", now=NOW) == "hz-outage/v2"
    assert choose_welcome(snap, prefecture="NB", caller="057488", now=NOW) == "holiday/v1"
    assert choose_welcome(snap, prefecture="NB", caller="0574", now=NOW + 2 * hour) == \
        "welcome-default/v3"
    assert choose_welcome(None, prefecture="HZ", caller="", now=NOW) == "welcome-default/current"


def test_catalog_keeps_last_snapshot_when_the_store_fails_and_takes_a_new_one_after() -> None:
    """Deterministic: the test waits for each background refresh to have run (an event set
    by the loader), never on the clock or on thread scheduling luck."""
    state = {"up": True, "version": 1}
    ran = threading.Semaphore(0)

    def load() -> tuple[list[Rule], dict[str, int]]:
        try:
            if not state["up"]:
                raise StoreUnavailable("down")
            return [_rule(1, "welcome-default")], {"welcome-default": state["version"]}
        finally:
            ran.release()

    cat = PromptCatalog(load=load, ttl=0.0)
    assert cat.prime()
    assert ran.acquire(timeout=10)
    first = cat.snapshot()  # ttl 0: this also starts a background refresh
    assert first is not None and first.versions == {"welcome-default": 1}
    assert ran.acquire(timeout=10)
    wait_until(lambda: not cat.refreshing, timeout=10, what="the refresh to finish")
    state["up"] = False
    assert cat.snapshot() is not None  # starts a refresh that fails
    assert ran.acquire(timeout=10)
    wait_until(lambda: not cat.refreshing, timeout=10, what="the failed refresh to finish")
    kept = cat.snapshot()
    assert kept is not None and kept.versions == {"welcome-default": 1}  # the last good one
    assert ran.acquire(timeout=10)
    wait_until(lambda: not cat.refreshing, timeout=10, what="the failed refresh to finish")
    state["up"], state["version"] = True, 2
    cat.snapshot()  # the store is back: the next refresh replaces the snapshot
    assert ran.acquire(timeout=10)
    wait_until(lambda: not cat.refreshing and cat.snapshot() is not None
               and cat.snapshot().versions == {"welcome-default": 2},  # type: ignore[union-attr]
               timeout=10, what="the new snapshot")


def test_dtmf_pcaps_renumbered_into_one_monotonic_stream(tmp_path: Path) -> None:
    dtmf_scenario([(0, "3301")], pcap_dir=tmp_path)
    seqs, stamps = [], []
    for pcap in sorted(tmp_path.glob("dtmf-*.pcap")):
        data, off = pcap.read_bytes(), 24
        while off < len(data):
            incl = struct.unpack_from("<I", data, off + 8)[0]
            seq, ts = struct.unpack_from(">HI", data, off + 16 + 42 + 2)
            seqs.append(seq)
            stamps.append(ts)
            off += 16 + incl
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len(set(stamps)) == 4 and stamps == sorted(stamps)
    # payloads untouched: the events are SIPp's own
    assert (tmp_path / "dtmf-000.pcap").read_bytes()[-4:] == \
        (PCAP_DIR / "dtmf_2833_3.pcap").read_bytes()[-4:]
