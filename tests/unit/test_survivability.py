"""The survivable-mode decision (pure): immediate failover, failback only after a quiet
hold-down, and a flapping WAN causing one switch, not one per flap."""

from __future__ import annotations

from pbxctl.services.survivability import ModeMachine


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


def test_the_cti_is_bypassed_after_failures_in_a_row_and_trusted_after_successes() -> None:
    from pbxctl.services.survivability import HealthTracker

    t = HealthTracker(failures=2, successes=2)
    assert t.observe(False) is None  # one slow ping is not a hung server
    assert t.observe(True) is None
    assert t.observe(False) is None
    assert t.observe(False) is True  # two in a row: bypass
    assert t.observe(True) is None
    assert t.observe(False) is None  # a relapse restarts the count
    assert t.observe(True) is None
    assert t.observe(True) is False  # two good in a row: use it again


def test_a_failback_rule_holds_a_due_failback_and_says_why() -> None:
    busy = [1]
    m = ModeMachine(hold_down=10, gate=lambda: "the LSS still carries 1 call(s)"
                    if busy[0] else None)
    m.observe("province-a", False, 0.0)
    m.observe("province-b", False, 0.0)
    m.observe("province-a", True, 1.0)
    assert m.tick(5.0) is None and m.held is None  # hold-down not over: nothing to hold
    assert m.tick(11.0) is None and m.held == "the LSS still carries 1 call(s)"
    busy[0] = 0
    sw = m.tick(12.0)
    assert sw is not None and sw.to == "central" and m.held is None
