"""Optional failback rules (pure): only when the LSS is idle, only within a window."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from pbxctl.core.errors import InputError
from provisioning.failback import Window, count_lss_calls, make_gate

SH = ZoneInfo("Asia/Shanghai")


def test_windows_parse_and_may_cross_midnight() -> None:
    w = Window.parse("22:00-06:00")
    assert w.contains(time(23, 30)) and w.contains(time(5, 59))
    assert not w.contains(time(6, 0)) and not w.contains(time(12, 0))
    day = Window.parse("02:00-24:00")
    assert day.contains(time(23, 59, 59)) and str(day) == "02:00-24:00"
    for bad in ("2:00-5:00", "02:00-25:00", "02:00", "24:30-01:00", "02:00-24:30"):
        with pytest.raises(InputError):
            Window.parse(bad)


def test_only_the_hold_down_means_no_gate() -> None:
    assert make_gate() is None


def test_lss_idle_waits_for_the_last_call() -> None:
    calls = [2]
    gate = make_gate(rule="lss-idle", lss_calls=lambda: calls[0])
    assert gate is not None and gate() == "the LSS still carries 2 call(s)"
    calls[0] = 0
    assert gate() is None


def test_a_window_is_in_the_province_time_zone() -> None:
    at = [datetime(2026, 11, 26, 18, 30, tzinfo=ZoneInfo("UTC"))]  # 02:30 in Shanghai
    gate = make_gate(window=Window.parse("02:00-05:00"), clock=lambda: at[0])
    assert gate is not None and gate() is None
    at[0] = datetime(2026, 11, 26, 12, 0, tzinfo=SH)
    assert gate() == "outside the failback window 02:00-05:00"


def test_unknown_rules_and_idle_without_a_counter_are_refused() -> None:
    with pytest.raises(InputError):
        make_gate(rule="whenever")
    with pytest.raises(InputError):
        make_gate(rule="lss-idle")


def test_lss_calls_are_counted_from_the_gateways_channels() -> None:
    # Channel names as CoreShowChannel events give them: the caller's leg dialling the LSS
    # does not count, the leg on the LSS trunk does.
    names = ["PJSIP/pstn-00000001", "PJSIP/lss-a-00000002", "PJSIP/province-a-00000003",
             "PJSIP/lss-b-00000004"]
    assert count_lss_calls(names) == 2
