"""AMI users per purpose on a rendered, booted site (real Asterisk): each can do what its
daemon needs and nothing more, and only from its exact addresses.

- pbxctl-watch (the survivability watcher, beside the gateway): reads the AORs' state, counts
  LSS calls, sets PBXCTL_SURVIVABLE; may not run CLI commands or originate calls;
- pbxctl-notify (the work-order notifier, beside the province PBX): may originate; may not
  run CLI commands;
- pbxctl-console (the web console, on the CTI host): may pause an agent and originate (a
  supervisor's listen call); may not run CLI commands;
- every user: refused from an address that is not in its permit lines (a /24 neighbour).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxctl.core.errors import CommandFailed, ServiceStartError
from pbxctl.pbx.ami import AmiClient
from pbxctl.services.survivability import contact_state, count_lss_calls
from provisioning.inventory import load_inventory
from provisioning.render_asterisk import AMI_PORT, AMI_USERS
from provisioning.secrets import ensure_secrets, secrets_path
from tests.conftest import SiteFactory

pytestmark = [pytest.mark.asterisk]


def _client(host: str, user: str, secret: str, source: str) -> AmiClient:
    client = AmiClient(host=host, port=AMI_PORT, username=user, secret=secret, source=source,
                       timeout=5)
    client.connect()
    return client


def test_each_ami_user_can_do_its_job_and_no_more(small_inventory_path: Path,
                                                   site_factory: SiteFactory) -> None:
    inv = load_inventory(small_inventory_path)
    sec = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    hz = inv.prefecture("HZ")
    site_factory(inv, sec, "hz-gw")
    site_factory(inv, sec, "zj-pbx")
    gw_addr, pbx_addr = str(hz.gateway.a), str(inv.province.pbx.a)

    watch = _client(gw_addr, AMI_USERS["watch"], sec.ami_watch["hz-gw"], source=gw_addr)
    try:
        assert contact_state(watch, "province-a") in ("Avail", "Unavail", "Unknown")
        assert count_lss_calls(watch) == 0
        watch.setvar("PBXCTL_SURVIVABLE", "0")
        with pytest.raises(CommandFailed):
            watch.command("core show channels")
        refused = watch.action("Originate", Channel="Local/s@default", Application="Wait",
                               Data="1")
        assert not refused.ok
    finally:
        watch.close()

    notify = _client(pbx_addr, AMI_USERS["notify"], sec.ami_notify["zj-pbx"], source=pbx_addr)
    try:
        with pytest.raises(CommandFailed):
            notify.command("core show channels")
        assert notify.action("Originate", Channel="Local/s@nowhere", Application="Wait",
                             Data="1", Async="true").ok
    finally:
        notify.close()

    # The web console: pause/unpause queue members (agents' ready state), ring a supervisor.
    console = _client(pbx_addr, AMI_USERS["console"], sec.ami_console["zj-pbx"],
                      source=str(inv.province.cti.a))
    try:
        with pytest.raises(CommandFailed):
            console.command("core show channels")
        # Originate: the supervisor's listen/whisper/barge call to their own phone.
        listen = "*1" + hz.agents[0].extension  # ChanSpy ends at once: that agent has no call
        assert console.action("Originate", Channel=f"Local/{listen}@supervisors",
                              Context="supervisors", Exten=listen, Priority="1",
                              Async="true").ok
        paused = console.action("QueuePause", Interface="PJSIP/hz-a001", Paused="true",
                                Reason="break")
        assert paused.ok, paused.response
    finally:
        console.close()

    # The watcher's user from a neighbour on the same /24 (the PSTN gateway's address): no.
    with pytest.raises(ServiceStartError, match=r"refused|closed"):
        _client(gw_addr, AMI_USERS["watch"], sec.ami_watch["hz-gw"],
                source=str(hz.pstn_gateway.a)).close()
    # Operations from the CTI host: yes, and it may run the CLI (provision apply reloads).
    ops = _client(pbx_addr, AMI_USERS["ops"], sec.ami["zj-pbx"], source=str(inv.province.cti.a))
    try:
        assert ops.command("core show version")
    finally:
        ops.close()
