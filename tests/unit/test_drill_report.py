"""The drill's arithmetic on a made-up timeline: which calls failed, which were dropped,
how long detection, recovery and failback took (the lab runs are in
tests/integration/test_drills.py)."""

from __future__ import annotations

from pathlib import Path

from pbxctl.lab.drill import CALLER_PREFIX, DrillPlan, Timeline, build_report, targets
from pbxctl.lab.netlab import NetState

T0 = 1_800_000_000.0


def _log(tmp: Path, lines: list[tuple[str, int, float]]) -> Path:
    path = tmp / "calls.log"
    path.write_text("".join(f"{what} {n} {int(T0 + t)} {round((t % 1) * 1e6)}\n"
                            for what, n, t in lines))
    return path


def _served(tl: Timeline, n: int, at: float, dest: str) -> None:
    uid = f"gw-{n}"
    tl.events.append((T0 + at - 2, {"Event": "Newchannel", "Uniqueid": uid,
                                    "CallerIDNum": f"{CALLER_PREFIX}{n}"}))
    tl.events.append((T0 + at, {"Event": "DialEnd", "Uniqueid": uid, "DialStatus": "ANSWER",
                                "DestChannel": f"PJSIP/{dest}-0001", "DestUniqueid": f"t-{n}"}))


def _state(tmp: Path) -> NetState:
    return NetState(tag="t", inventory="", prefectures=["HZ"], hold_down=5.0)


def test_a_wan_cut_report(tmp_path: Path) -> None:
    tl = Timeline()
    # Call 1 is up through the province when the WAN goes (t=10) and is torn down at 14.5
    # (dead audio); call 2 is placed in the detection window and served late by the LSS;
    # call 3 after detection, served normally by the LSS; call 4 never served.
    _served(tl, 1, 3.0, "province-a")
    tl.events.append((T0 + 14.5, {"Event": "Hangup", "Uniqueid": "t-1"}))
    _served(tl, 2, 17.0, "lss-a")
    _served(tl, 3, 15.0, "lss-a")
    tl.events.append((T0 + 11.9, {"Event": "UserEvent", "UserEvent": "PbxctlMode",
                                  "Mode": "survivable"}))
    tl.events.append((T0 + 36.0, {"Event": "UserEvent", "UserEvent": "PbxctlMode",
                                  "Mode": "central"}))
    log = _log(tmp_path, [("start", 1, 1.0), ("up", 1, 1.1), ("start", 2, 10.5),
                          ("up", 2, 10.6), ("start", 3, 13.0), ("up", 3, 13.1),
                          ("start", 4, 20.0), ("up", 4, 20.1), ("done", 2, 40.0),
                          ("done", 3, 40.0), ("done", 4, 40.0)])
    plan = DrillPlan(fault="wan-cut", prefecture="HZ")
    rep = build_report(_state(tmp_path), plan, tl, log, fault_at=T0 + 10,
                       restored_at=T0 + 30, placed=4)
    assert rep.calls == 4
    assert rep.detect_s is not None and abs(rep.detect_s - 1.9) < 1e-6
    assert rep.baseline_setup_s is not None and abs(rep.baseline_setup_s - 2.0) < 1e-6
    assert rep.failed_new_calls == 1 and "4" in rep.notes[-1]
    assert rep.dropped_established == 1
    assert rep.dead_audio_teardown_s is not None and abs(rep.dead_audio_teardown_s - 4.5) < 1e-6
    assert rep.recover_s is not None and abs(rep.recover_s - 3.0) < 1e-6  # call 3
    assert rep.max_setup_in_window_s is not None and abs(rep.max_setup_in_window_s - 6.5) < 1e-6
    assert rep.failback_s is not None and abs(rep.failback_s - 6.0) < 1e-6
    assert rep.mode_switches == 2
    assert rep.served_by == {"province": 1, "lss": 2}
    checks = {name: ok for name, _, ok in targets(rep, hold_down=5.0, rtp_timeout=4)}
    assert checks["detection"] and checks["failback"]  # 6 s ≤ 5 + 3
    assert checks["failed new calls"] is False and checks["dead-audio teardown"]
    strict = {name: ok for name, _, ok in targets(rep, hold_down=2.0, rtp_timeout=2)}
    assert not strict["failback"] and not strict["dead-audio teardown"]  # 6 > 5, 4.5 > 4


def test_a_drill_without_calls_meets_no_target(tmp_path: Path) -> None:
    rep = build_report(_state(tmp_path), DrillPlan(fault="wan-cut", prefecture="HZ"),
                       Timeline(), _log(tmp_path, []), fault_at=T0, restored_at=T0 + 1,
                       placed=10)
    checks = {name: ok for name, _, ok in targets(rep, hold_down=5.0, rtp_timeout=4)}
    assert not checks["calls placed and served before the fault"]
    assert not checks["detection"]


def test_a_link_down_is_timed_from_the_gateways_uplink_log(tmp_path: Path) -> None:
    uplog = tmp_path / "hzgw.log"
    uplog.write_text(f"uplink at={T0 + 1:.3f} active=etha previous=None reason=start\n"
                     f"uplink at={T0 + 10.04:.3f} active=ethb previous=etha reason=etha DOWN\n"
                     f"uplink at={T0 + 30.02:.3f} active=etha previous=ethb reason=etha up\n")
    state = NetState(tag="t", inventory="", prefectures=["HZ"],
                     uplinks={"hzgw": {"pid": 0, "log": str(uplog)}})
    tl = Timeline()
    _served(tl, 1, 3.0, "province-a")
    log = _log(tmp_path, [("start", 1, 1.0), ("up", 1, 1.1), ("done", 1, 21.0)])
    rep = build_report(state, DrillPlan(fault="link-down", prefecture="HZ"), tl, log,
                       fault_at=T0 + 10, restored_at=T0 + 30, placed=1)
    assert rep.detect_s is not None and abs(rep.detect_s - 0.04) < 1e-3
    assert rep.failback_s is not None and abs(rep.failback_s - 0.02) < 1e-3
    assert rep.dropped_established == 0  # up across the cut, ended with its own BYE
