from __future__ import annotations

import jinja2
import pytest

from ivr_scripts.call import Call
from ivr_scripts.handlers import default_registry
from ivr_scripts.registry import HandlerContext, Registry, UnknownRoute, route_of
from pbxctl.core import chanvars
from pbxctl.core.errors import InputError
from provisioning.templates import conf_value, render
from tests.spine.site import GatewayParams, gateway_configs


def test_route_is_the_handler_name() -> None:
    reg = default_registry()
    assert reg.get("welcome").__name__ == "welcome"
    assert "ping" in reg.routes()
    with pytest.raises(UnknownRoute):
        reg.get("nope")


def test_duplicate_route_refused() -> None:
    def welcome(call: Call, ctx: HandlerContext) -> None: ...

    reg = Registry([welcome])
    with pytest.raises(ValueError, match="twice"):
        reg.add(welcome)


@pytest.mark.parametrize(("script", "route"), [("welcome", "welcome"), ("/welcome/x", "welcome"),
                                               ("welcome?a=1", "welcome"), ("", "")])
def test_route_of(script: str, route: str) -> None:
    assert route_of(script) == route


@pytest.mark.parametrize("bad", ["a\nb", "x;y", "[sec]", "a,b", "a)b", 'q"'])
def test_conf_value_refuses_line_breakers(bad: str) -> None:
    with pytest.raises(InputError, match="unsafe character"):
        conf_value(bad)


def test_templates_use_strict_undefined() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("asterisk/extensions_gateway.conf.j2")


def test_gateway_dialplan_checks_agistatus_and_our_status() -> None:
    files = gateway_configs(GatewayParams(address="127.0.0.1", sip_port=5060,
                                          agi_host="127.0.0.1", agi_port=4573,
                                          pstn_address="127.0.0.1"))
    ext = files["extensions.conf"]
    assert "AGI(agi://127.0.0.1:4573/welcome)" in ext
    assert '"${AGISTATUS}" != "SUCCESS"' in ext
    assert f'"${{{chanvars.STATUS}}}" != "{chanvars.STATUS_OK}"' in ext


def test_hostile_agi_host_is_not_rendered() -> None:
    with pytest.raises(InputError):
        gateway_configs(GatewayParams(address="127.0.0.1", sip_port=5060,
                                      agi_host="127.0.0.1\n[evil]", agi_port=4573,
                                      pstn_address="127.0.0.1"))


def test_contacts_parser_reads_status_per_aor() -> None:
    from pbxctl.pbx.asterisk_show import contacts

    out = ("  Contact:  <Aor/ContactUri.......................> <Hash....> <Status> <RTT(ms)..>\n"
           "=====================================================================================\n"
           "  Contact:  gw-a/sip:127.19.1.10:5060               0fd74a1901 Avail         0.412\n"
           "  Contact:  province-b/sip:127.201.2.10:5060         e7856e29d7 Unavail       nan\n")
    assert contacts(out) == {"gw-a": "Avail", "province-b": "Unavail"}
