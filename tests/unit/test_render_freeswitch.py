"""FreeSWITCH renderers: golden files per role; every file parses as XML; the dialplan routes
every DID of the model; queues and tiers match the model; XML special characters in names
are escaped (never markup) and characters XML cannot carry are refused.

No FreeSWITCH runs here (it is in no Debian suite or reachable registry): these files are
checked by parsing them back, not by loading them into a real FreeSWITCH."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pbxctl.core.errors import InputError
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.render_freeswitch import render_all
from provisioning.secrets import Secrets, ensure_secrets, secrets_path
from tests.golden_files import assert_golden

GOLDEN = Path(__file__).parents[1] / "golden" / "freeswitch"
ROLES = ("zj-pbx", "hz-gw", "hz-lss")
EXAMPLE = Path(__file__).parents[2] / "examples" / "zhejiang" / "province.yaml"


def _load(path: Path, secrets: Path | None = None) -> tuple[Inventory, Secrets]:
    inv = load_inventory(path)
    return inv, ensure_secrets(inv, secrets or secrets_path(path), create=secrets is not None)


@pytest.mark.golden
@pytest.mark.parametrize("site", ROLES)
def test_golden_files(small_inventory_path: Path, site: str) -> None:
    inv, secrets = _load(small_inventory_path)
    files = {n: f.text for n, f in render_all(inv, secrets)[site].items()}
    assert_golden(GOLDEN / site, files)


def test_every_file_of_the_example_province_parses_and_every_did_is_routed(
        tmp_path: Path) -> None:
    inv, secrets = _load(EXAMPLE, tmp_path / "secrets.yaml")
    rendered = render_all(inv, secrets)
    assert len(rendered) == 23
    for files in rendered.values():
        for f in files.values():
            ET.fromstring(f.text.encode())
    for p in inv.prefectures:
        dp = ET.fromstring(rendered[p.gateway.name]["dialplan.xml"].text.encode())
        routed = {c.get("expression") for c in dp.iter("condition")
                  if c.get("field") == "destination_number"}
        assert {f"^{d}$" for d in p.dids} <= routed
        sofia = ET.fromstring(rendered[p.gateway.name]["sofia.conf.xml"].text.encode())
        gws = {str(g.get("name")): {x.get("name"): x.get("value") for x in g.iter("param")}
               for g in sofia.iter("gateway")}
        assert sorted(gws) == ["lss-a", "lss-b", "province-a", "province-b"]
        assert gws["province-b"]["proxy"] == f"{inv.province.pbx.b}:5060"
        # FreeSWITCH refuses a ping below 5 s ("invalid ping!", and no ping at all).
        assert all(g["ping"] == str(max(inv.province.options.qualify_frequency, 5))
                   for g in gws.values())
        acl = ET.fromstring(rendered[p.gateway.name]["acl.conf.xml"].text.encode())
        trunks = {str(n.get("cidr")) for lst in acl.iter("list")
                  if lst.get("name") == "pbxctl-trunks" for n in lst.iter("node")}
        assert trunks == {f"{a}/32" for a in (inv.province.pbx.a, inv.province.pbx.b,
                                               p.lss.a, p.lss.b, p.pstn_gateway.a,
                                               p.pstn_gateway.b)}


def test_queues_and_tiers_follow_the_model(small_inventory_path: Path) -> None:
    inv, secrets = _load(small_inventory_path)
    cc = ET.fromstring(render_all(inv, secrets)["zj-pbx"]["callcenter.conf.xml"].text.encode())
    queues = {q.get("name") for q in cc.iter("queue")}
    assert queues == {"acd-HZ", "acd-NB", "acd-supervisors"}
    tiers = {(t.get("queue"), t.get("agent")) for t in cc.iter("tier")}
    assert tiers == {("acd-HZ", "hz-a001"), ("acd-HZ", "hz-a002"), ("acd-NB", "nb-a001"),
                     ("acd-supervisors", "zj-sup01")}


def test_xml_special_characters_are_escaped_not_markup(small_inventory_path: Path) -> None:
    inv, secrets = _load(small_inventory_path)
    evil = '王"/><user id="intruder'
    pref = inv.prefectures[0]
    agent = dataclasses.replace(pref.agents[0], name=evil + " & <co>")
    inv2 = dataclasses.replace(inv, prefectures=(dataclasses.replace(
        pref, agents=(agent, *pref.agents[1:])), *inv.prefectures[1:]))
    text = render_all(inv2, secrets)["zj-pbx"]["directory.xml"].text
    doc = ET.fromstring(text.encode())
    users = [u.get("id") for u in doc.iter("user")]
    assert "intruder" not in users and len(users) == len(inv.all_seats())
    names = [v.get("value") for v in doc.iter("variable")
             if v.get("name") == "effective_caller_id_name"]
    assert evil + " & <co>" in names  # the same text back, as data


def test_control_characters_are_refused(small_inventory_path: Path) -> None:
    inv, secrets = _load(small_inventory_path)
    pref = inv.prefectures[0]
    agent = dataclasses.replace(pref.agents[0], name="bell\x07")
    inv2 = dataclasses.replace(inv, prefectures=(dataclasses.replace(
        pref, agents=(agent, *pref.agents[1:])), *inv.prefectures[1:]))
    with pytest.raises(InputError, match="control character"):
        render_all(inv2, secrets)


def test_the_call_record_template_writes_lines_the_collector_reads(
        small_inventory_path: Path) -> None:
    """mod_cdr_csv's template, expanded the way FreeSWITCH does (each ``${url_encode(${v})}``
    the URI-encoded value of v, unset → empty): a marked call is a whole record with hostile
    text kept intact; an unmarked leg is skipped, not a record and not a rejection."""
    import re
    from urllib.parse import quote

    from pbxctl.data.callrecords import parse_record

    inv, secrets = _load(small_inventory_path)
    conf = ET.fromstring(render_all(inv, secrets)["zj-pbx"]["cdr_csv.conf.xml"].text.encode())
    template = conf.findtext("templates/template") or ""
    channel = {"pbxctl_cdr": "1", "uuid": "u-1", "caller_id_number": "0571&x=1\nz",
               "pbxctl_did": "95598", "start_epoch": "100", "end_epoch": "130",
               "cc_queue_answered_epoch": "110", "cc_agent": "hz-a001",
               "hangup_cause_q850": "16"}

    def expand(text: str) -> str:
        text = re.sub(r"\$\{url_encode\(\$\{([\w-]+)\}\)\}",
                      lambda m: quote(channel.get(m.group(1), ""), safe=""), text)
        return re.sub(r"\$\{([\w-]+)\}", lambda m: channel.get(m.group(1), ""), text)

    rec = parse_record(expand(template) + "\n", where="Master.csv:byte 0")
    assert rec is not None and rec.site == "zj-pbx" and rec.uniqueid == "u-1"
    assert (rec.caller, rec.did, rec.agent, rec.talk_s) == ("0571&x=1\nz", "95598",
                                                            "hz-a001", 20.0)
    channel["pbxctl_cdr"] = ""
    assert parse_record(expand(template) + "\n", where="Master.csv:byte 0") is None
