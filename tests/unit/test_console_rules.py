"""The console's pure rules: who has which role and scope (from the inventory), which order
each may see and act on, SLA colours, the client-network guard, and a zh_CN translation for
every message the screens show."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from pbxctl.console import labels
from pbxctl.console.guard import AllowClients
from pbxctl.console.i18n import load_translations
from pbxctl.console.roles import may_act_on_order, may_see_order, order_scope, principal
from pbxctl.data.orders import Order
from provisioning.inventory import load_inventory

ROOT = Path(__file__).parents[2]
INV = load_inventory(ROOT / "examples" / "zhejiang" / "province.yaml")
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
ORDER = Order(id=7, type="repair", account_no="3301010001", contact="", address="",
              description="", priority=3, call_site="", call_linkedid="", recording="",
              prefecture="HZ", county="HZXS", seat="hzxs-t01", status="dispatched", version=2,
              notify_attempts=0, next_notify_at=None, created_by="hz-a001", created_at=NOW,
              updated_at=NOW)


def test_roles_and_scopes_come_from_the_inventory() -> None:
    seat, agent, sup = (principal(INV, s, admin=False) for s in ("hzxs-t01", "hz-a001",
                                                                 "zj-sup01"))
    assert seat is not None and (seat.role, seat.county, seat.prefecture) == \
        ("county", "HZXS", "HZ")
    assert agent is not None and (agent.role, agent.prefecture) == ("agent", "HZ")
    assert sup is not None and sup.role == "supervisor"
    assert principal(INV, "gone-seat", admin=False) is None  # removed from the inventory
    admin = principal(INV, "ops", admin=True)
    assert admin is not None and admin.role == "admin"
    assert order_scope(seat) == (None, "HZXS") and order_scope(agent) == ("HZ", None)
    assert order_scope(sup) == (None, None)


@pytest.mark.parametrize(("login", "sees", "acts"), [
    ("hzxs-t01", True, True),     # the assigned seat
    ("hzxs-t02", True, False),    # same county, another seat: sees, may not act
    ("hzyh-t01", False, False),   # another county of the same prefecture
    ("nbyy-t01", False, False),   # another prefecture's county
    ("hz-a001", True, False),     # the prefecture's agent: sees, acts from the phone/CLI
    ("nb-a001", False, False),    # another prefecture's agent
    ("zj-sup01", True, False),    # the province's supervisor: sees all
])
def test_who_may_see_and_act_on_a_hzxs_order(login: str, sees: bool, acts: bool) -> None:
    who = principal(INV, login, admin=False)
    assert who is not None, login
    assert may_see_order(who, ORDER) is sees
    assert all(may_act_on_order(who, ORDER, a) is acts for a in ("accept", "return", "close"))
    assert not may_act_on_order(who, ORDER, "delete")


def test_sla_colours_by_priority_and_age() -> None:
    assert labels.sla_state(1, timedelta(minutes=59), "dispatched") == "ok"
    assert labels.sla_state(1, timedelta(minutes=61), "dispatched") == "due"
    assert labels.sla_state(1, timedelta(hours=2, seconds=1), "accepted") == "late"
    assert labels.sla_state(4, timedelta(hours=71), "dispatched") == "due"
    assert labels.sla_state(1, timedelta(days=9), "done") == "closed"


def _messages() -> set[str]:
    found = extract_from_dir(str(ROOT / "pbxctl" / "console"),
                             method_map=[("templates/**.html", "jinja2"), ("**.py", "python")],
                             keywords={"_": None, "N_": None, "gettext": None})
    return {m if isinstance(m, str) else m[0] for _, _, m, _, _ in found}


def test_every_message_has_a_chinese_translation_and_none_is_stale() -> None:
    messages = _messages()
    assert {"Sign in", "accepted", "Work orders of county %(county)s"} <= messages
    po = ROOT / "pbxctl/console/locale/zh_CN/LC_MESSAGES/console.po"
    with po.open("rb") as fh:
        catalog = read_po(fh)
    translated = {m.id: m.string for m in catalog if m.id}
    assert sorted(messages - translated.keys()) == []
    assert sorted(translated.keys() - messages) == []  # no stale entries
    assert all(translated[m] for m in messages)
    zh = load_translations("zh_CN")
    assert zh.gettext("Work orders of county %(county)s") % {"county": "HZXS"} == "HZXS 县区工单"


def _call(guard: AllowClients, client: tuple[str, int] | None) -> int:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    guard.app = app
    asyncio.run(guard({"type": "http", "client": client}, None, send))
    return int(sent[0]["status"])


def test_the_guard_admits_only_the_allowed_networks() -> None:
    guard = AllowClients(None, [ip_network("127.0.0.0/8"), ip_network("10.1.0.0/16")])
    assert _call(guard, ("127.0.0.1", 5000)) == 200
    assert _call(guard, ("10.1.2.3", 5000)) == 200
    assert _call(guard, ("10.2.0.1", 5000)) == 403
    assert _call(guard, ("::1", 5000)) == 403
    assert _call(guard, None) == 403  # no peer address (a unix socket): not on the list




def test_names_from_the_inventory_are_escaped_on_every_screen() -> None:
    """An agent's or a seat's name with markup (the inventory is text someone typed) is shown
    as text in the header and on the wallboard's agent table, never run."""
    from pbxctl.console.app import Console, ConsoleDeps, Seen
    from pbxctl.console.calls import QueueLive
    from pbxctl.console.roles import Principal
    from provisioning.model import Seat

    xss = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    hz = INV.prefecture("HZ")
    evil = replace(hz, agents=(replace(hz.agents[0], name=xss), *hz.agents[1:]))
    inv = replace(INV, prefectures=(evil, *INV.prefectures[1:]))
    console = Console(ConsoleDeps(store=None, inventory=inv, feed=None))  # type: ignore[arg-type]
    seen = Seen(Principal("zj-sup01", xss, "supervisor"), "tok", "en")
    board = {"rows": [{"code": "HZ", "name": xss, "live": QueueLive("acd-HZ"), "state": None,
                       "k": labels_kpis(), "agents": evil.agents}],
             "supervisors": None, "hours": [], "peak": 1, "orders": {xss: {"<1h": 1}},
             "buckets": ["<1h"], "live_ok": True, "at": NOW, "sl_seconds": 20,
             "stale_s": 15.0}
    for page, ctx in (("_board.html", {"b": board}), ("error.html", {"why": xss, "code": 403})):
        html = bytes(console.render(page, "en", seen=seen, **ctx).body).decode()
        assert "<script>alert" not in html and "<img src=x" not in html, page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, page
    assert isinstance(evil.agents[0], Seat)


def labels_kpis() -> object:
    from pbxctl.data.kpis import Kpis

    return Kpis(0, 0, 0, 0, None)
