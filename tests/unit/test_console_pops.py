"""What a PbxctlAgentPop event becomes on the agent's screen: URI-encoded text decoded, an
account kept only as digits, a malformed agent or linkedid refused (no pop at all)."""

from __future__ import annotations

from pbxctl.console.calls import pop_from_event

EVENT = {"Event": "UserEvent", "UserEvent": "PbxctlAgentPop", "Agent": "hz-a001",
         "Linkedid": "zj-pbx-1764.7", "CallerUniqueid": "zj-pbx-1764.7",
         "Caller": "%E7%8E%8B%3Cb%3E0571", "Did": "057195598", "Reason": "account",
         "Account": "3301010001", "Queue": "acd-HZ", "Prefecture": "HZ", "Mode": "central",
         "Start": "1764000000.250", "Answer": "1764000012.750",
         "Recording": "pbxctl-zj-pbx-1764-7.wav"}


def test_a_pop_decodes_text_and_computes_the_wait() -> None:
    pop = pop_from_event(EVENT, received=0.0)
    assert pop is not None
    assert pop.caller == "王<b>0571"  # decoded here, escaped by the template
    assert (pop.account, pop.reason, pop.wait_s) == ("3301010001", "account", 12.5)


def test_bad_values_never_make_a_pop_or_an_account() -> None:
    assert pop_from_event({**EVENT, "Account": "33010;DROP"}, received=0.0).account == ""  # type: ignore[union-attr]
    assert pop_from_event({**EVENT, "Start": "soon"}, received=0.0).wait_s is None  # type: ignore[union-attr]
    # A joined duplicate header (two values) or a missing agent: no pop.
    assert pop_from_event({**EVENT, "Linkedid": "a.1\nb.2"}, received=0.0) is None
    assert pop_from_event({**EVENT, "Agent": ""}, received=0.0) is None
    assert pop_from_event({**EVENT, "Agent": "hz a001"}, received=0.0) is None
