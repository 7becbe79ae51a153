"""The survivable-mode decision (pure): immediate failover, failback only after a quiet
hold-down, and a flapping WAN causing one switch, not one per flap."""

from __future__ import annotations

from pbxctl.survivability import ModeMachine


def test_failover_is_immediate_and_needs_every_path_gone() -> None:
    m = ModeMachine(hold_down=30)
    assert m.observe("province-a", False, 0.0) is None  # path B still carries calls
    sw = m.observe("province-b", False, 1.0)
    assert sw is not None and (sw.to, sw.at) == ("survivable", 1.0)


def test_failback_waits_for_the_hold_down_and_any_loss_restarts_it() -> None:
    m = ModeMachine(hold_down=30)
    m.observe("province-a", False, 0.0)
    m.observe("province-b", False, 0.0)
    assert m.observe("province-a", True, 10.0) is None
    assert m.tick(39.9) is None
    assert m.observe("province-a", False, 35.0) is None  # lost again: start over
    assert m.observe("province-b", True, 36.0) is None
    assert m.tick(65.9) is None
    sw = m.tick(66.0)
    assert sw is not None and sw.to == "central"


def test_flapping_links_cause_a_bounded_number_of_switches() -> None:
    m = ModeMachine(hold_down=10)
    t = 0.0
    for _ in range(60):  # both paths down and up every 2 s for two minutes
        m.observe("province-a", False, t)
        m.observe("province-b", False, t)
        t += 1.0
        m.observe("province-a", True, t)
        m.observe("province-b", True, t)
        m.tick(t)
        t += 1.0
    assert [s.to for s in m.switches] == ["survivable"]  # no flip per flap
    assert m.tick(t + 10.0) is not None  # quiet for the hold-down: back to the province
    assert [s.to for s in m.switches] == ["survivable", "central"]
