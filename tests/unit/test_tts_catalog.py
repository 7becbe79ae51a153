"""TTS (real espeak-ng and sox), the cache, Mandarin numbers, the welcome rule choice."""

from __future__ import annotations

import struct
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from ivr_scripts import phrases
from ivr_scripts.catalog import PromptCatalog, Snapshot, choose_welcome
from pbxctl.core.errors import StoreUnavailable
from pbxctl.core.words import money_words, speakable
from pbxctl.data.prompts import Rule
from pbxctl.lab.sandbox.sipp import PCAP_DIR
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario
from pbxctl.services.tts import TtsCache, TtsError, TtsRequest, check_audio


@pytest.mark.parametrize(("amount", "words"), [
    ("123.45", "一百二十三元四角五分"), ("100", "一百元整"), ("100.00", "一百元整"),
    ("0.05", "零元零五分"), ("10.4", "十元四角"), ("2000000.01", "二百万元零一分"),
    ("1005.50", "一千零五元五角")])
def test_money_words(amount: str, words: str) -> None:
    assert money_words(amount) == words


def test_speakable_sentence() -> None:
    assert speakable("2026年12月5日前缴纳123.45元") == \
        "二零二六年十二月五日前缴纳一百二十三元四角五分"


def test_fragments_cover_amounts_and_dates() -> None:
    ids = phrases.money("1234.56") + phrases.day(date(2026, 12, 31)) + phrases.period("2026-11")
    assert all(i in phrases.FRAGMENTS for i in ids)
    assert "".join(phrases.FRAGMENTS[i] for i in phrases.money("123.45")) == "一百二十三元四角五分"


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


def test_gtts_offline_fails_clearly_or_falls_back(tmp_path: Path) -> None:
    strict = TtsCache(root=tmp_path / "a", fallback_engine=None)
    with pytest.raises(TtsError, match="gTTS failed") as exc:
        strict.get(TtsRequest("测试", engine="gtts"))
    assert "espeak-ng" in (exc.value.hint or "")
    lenient = TtsCache(root=tmp_path / "b")
    assert lenient.get(TtsRequest("测试", engine="gtts")).exists()
    assert lenient.stats["fallbacks"] == 1


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


def test_catalog_keeps_last_snapshot_when_the_store_fails() -> None:
    calls = {"n": 0}

    def load() -> tuple[list[Rule], dict[str, int]]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise StoreUnavailable("down")
        return [_rule(1, "welcome-default")], {"welcome-default": 1}

    cat = PromptCatalog(load=load, ttl=0.0)
    first = cat.snapshot()
    assert first is not None and cat.snapshot() is first


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
