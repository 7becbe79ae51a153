"""Config set for the lab's single gateway site (pure: parameters in, file texts out).

The inventory-driven renderers (issue: provisioning) replace this for real provinces.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioning.templates import render

LOCAL_DEFAULT_PROMPT = "pls-hold-while-try"


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
        "pjsip.conf": render("asterisk/lab_pjsip.conf.j2", address=p.address, sip_port=p.sip_port,
                             pstn_address=p.pstn_address),
        "extensions.conf": render("asterisk/lab_gateway.conf.j2", agi_host=p.agi_host,
                                  agi_port=p.agi_port, local_prompt=p.local_prompt),
    }
