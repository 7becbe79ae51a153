"""The province lab's pure parts: the phone plan, the phones' scenarios, `lab call`'s keys and
timeline, the packet meter's classifier. (The lab itself: integration/test_province_lab.py.)"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from pbxctl.core.errors import UsageError
from pbxctl.lab.drill import Timeline
from pbxctl.lab.labcall import CallPlan, build, parse_keys, steps_for
from pbxctl.lab.phones import answer_scenario, register_scenario
from pbxctl.lab.province import phone_plan
from pbxctl.lab.wanmeter import classify
from provisioning.inventory import load_inventory

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"


def test_phone_plan_puts_each_seat_on_its_prefectures_network_with_its_registrars() -> None:
    inv = load_inventory(SMALL)
    plan = phone_plan(inv, [inv.prefecture("HZ")])
    assert sorted(plan) == ["hzph", "supph"]
    links, specs = plan["hzph"]
    by_seat = {s.seat: s for s in specs}
    assert sorted(by_seat) == ["hz-a001", "hz-a002", "hzxs-t01"]
    assert [str(a) for a in links["a"]] == ["127.211.1.100", "127.211.1.101", "127.211.1.102"]
    assert by_seat["hz-a001"].registrars == (("zj-pbx", "127.201.1.10"),
                                             ("hz-lss", "127.211.1.11"))
    assert by_seat["hz-a001"].queues == (("zj-pbx", "acd-HZ"), ("hz-lss", "lss-HZ"))
    assert by_seat["hzxs-t01"].kind == "county" and by_seat["hzxs-t01"].prefecture == "HZ"
    assert by_seat["hzxs-t01"].registrars == (("zj-pbx", "127.201.1.10"),)
    [sup] = plan["supph"][1]
    assert (sup.seat, sup.address, sup.queues) == ("zj-sup01", "127.201.1.100",
                                                   (("zj-pbx", "acd-supervisors"),))


def test_registration_credentials_live_in_the_scenario_and_odd_secrets_are_refused() -> None:
    xml = register_scenario("hz-a001", "s3cret-Token_1")
    assert "[authentication username=hz-a001 password=s3cret-Token_1]" in xml
    assert "Contact: <sip:[user]@[local_ip]:5060>" in xml  # where the UAS listens
    for bad in ("short", "has space in it", "quote\"inside1", "]closing-bracket"):
        with pytest.raises(UsageError, match="hz-a001"):
            register_scenario("hz-a001", bad)


def test_an_answering_phone_streams_audio_for_the_whole_call(tmp_path: Path) -> None:
    xml = answer_scenario(tmp_path / "voice.alaw", ring_ms=700)
    assert f'rtp_stream="{tmp_path}/voice.alaw,-1,8"' in xml  # looped: never falls silent
    assert "play_pcap_audio" not in xml and '<pause milliseconds="700"/>' in xml


def test_keys_are_groups_of_dtmf_with_pauses() -> None:
    assert parse_keys("1 3301010001#") == ["1", "3301010001#"]
    assert steps_for(["1", "3301010001#", "2#"]) == [(1500, "1"), (2000, "3301010001#"),
                                                     (4500, "2#")]
    with pytest.raises(UsageError, match="'x' is not a DTMF key"):
        parse_keys("1 x#")


def _msg(**kv: str) -> dict[str, str]:
    return dict(kv)


def test_the_timeline_follows_one_call_across_sites_in_time_order() -> None:
    plan = CallPlan(prefecture="HZ", did="057195598", caller="057188880000", keys=["0"])
    gw, pbx, lss = Timeline(), Timeline(), Timeline()
    chan = "PJSIP/pstn-a-00000001"
    other = {"CallerIDNum": "057100000000", "Linkedid": "hz-gw-9.9"}
    gw.events += [
        (100.0, _msg(Event="Newchannel", Channel=chan, Uniqueid="hz-gw-1.1",
                     Linkedid="hz-gw-1.1", CallerIDNum=plan.caller, Exten=plan.did)),
        (100.1, _msg(Event="Newchannel", **other, Channel="PJSIP/pstn-a-2",
                     Uniqueid="hz-gw-9.9")),  # someone else's call: not in the timeline
        (100.3, _msg(Event="VarSet", Uniqueid="hz-gw-1.1", Linkedid="hz-gw-1.1",
                     Variable="PBXCTL_WELCOME_PROMPT", Value="welcome-default/v2")),
        (100.4, _msg(Event="VarSet", Uniqueid="hz-gw-1.1", Linkedid="hz-gw-1.1",
                     Variable="__PBXCTL_WELCOME", Value="central")),
        (101.5, _msg(Event="DTMFEnd", Uniqueid="hz-gw-1.1", Linkedid="hz-gw-1.1",
                     Direction="Received", Digit="0")),
        (101.6, _msg(Event="UserEvent", UserEvent="PbxctlRoute", Linkedid="hz-gw-1.1",
                     Queue="acd-HZ", Reason="did")),
        (108.0, _msg(Event="Hangup", Uniqueid="hz-gw-1.1", Linkedid="hz-gw-1.1",
                     **{"Cause-txt": "Normal Clearing"})),
    ]
    pbx.events += [
        (101.9, _msg(Event="QueueCallerJoin", CallerIDNum=plan.caller, Queue="acd-HZ",
                     Position="1")),
        (102.0, _msg(Event="QueueCallerJoin", CallerIDNum="057100000000", Queue="acd-HZ")),
        (103.0, _msg(Event="AgentConnect", CallerIDNum=plan.caller, Queue="acd-HZ",
                     Interface="PJSIP/hz-a002", HoldTime="1")),
    ]
    report = build({"hz-gw": gw, "zj-pbx": pbx, "hz-lss": lss}, plan=plan, t0=99.0,
                   gw="hz-gw", pbx="zj-pbx", lss="hz-lss", gw_channel=chan)
    assert [(round(s.t, 1), s.site, s.what) for s in report.timeline] == [
        (1.0, "hz-gw", "call arrives"), (1.4, "hz-gw", "welcome: central"),
        (2.5, "hz-gw", "key 0"), (2.6, "hz-gw", "route"), (2.9, "zj-pbx", "queued"),
        (4.0, "zj-pbx", "agent answers"), (9.0, "hz-gw", "hang-up")]
    assert report.welcome == {"gateway_call": "hz-gw-1.1", "prompt": "welcome-default/v2",
                              "branch": "central"}
    assert (report.agent, report.served_by) == ("hz-a002", "province")
    assert report.route == {"queue": "acd-HZ", "reason": "did"}


def _frame(src: str, dst: str, proto: int, sport: int, dport: int, size: int = 200) -> bytes:
    ip = bytes([0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0]) + socket.inet_aton(src) \
        + socket.inet_aton(dst)
    l4 = struct.pack(">HH", sport, dport) + bytes(4)
    body = ip + l4
    return bytes(12) + b"\x08\x00" + body + bytes(max(0, size - 14 - len(body)))


def test_the_packet_meter_tells_control_from_audio() -> None:
    peers = {"10.11.1.10"}
    assert classify(_frame("10.11.1.10", "10.1.1.20", 6, 40000, 4573), peers) == ("agi", 200)
    assert classify(_frame("10.1.1.10", "10.11.1.10", 17, 5060, 5060), peers) == ("sip", 200)
    assert classify(_frame("10.1.1.10", "10.11.1.10", 17, 10002, 18000), peers) == ("rtp",
                                                                                    200)
    assert classify(_frame("10.1.1.10", "10.12.1.10", 17, 10002, 18000), peers) is None
    assert classify(bytes(12) + b"\x86\xdd" + bytes(60), peers) is None  # not IPv4
