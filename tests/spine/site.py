"""The spine gateway: the smallest dialplan that asks the FastAGI server for a welcome and
plays it (or a local fallback), reporting the branch in a UserEvent. Only the FastAGI
transport tests use it, on Asterisk 22 and 16; production gateways render
extensions_gateway.conf.j2 from an inventory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provisioning.templates import render_from

LOCAL_DEFAULT_PROMPT = "pls-hold-while-try"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class GatewayParams:
    address: str
    sip_port: int
    agi_host: str
    agi_port: int
    pstn_address: str
    local_prompt: str = LOCAL_DEFAULT_PROMPT


def gateway_configs(p: GatewayParams) -> dict[str, str]:
    return {
        "pjsip.conf": render_from(TEMPLATES, "spine_pjsip.conf.j2", address=p.address,
                                  sip_port=p.sip_port, pstn_address=p.pstn_address),
        "extensions.conf": render_from(TEMPLATES, "spine_gateway.conf.j2", agi_host=p.agi_host,
                                       agi_port=p.agi_port, local_prompt=p.local_prompt),
    }
