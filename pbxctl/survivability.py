"""Survivable mode for a prefecture gateway, with failback hold-down and flap damping.

The gateway's PJSIP qualify (1 s by default) says, per trunk, whether the province answers.
Going to survivable mode is immediate: the moment no province path is reachable, new calls
go straight to the LSS (no Dial attempt, no FastAGI wait). Coming back is not: the province
must stay reachable for ``hold_down`` seconds without a single loss first, so a flapping WAN
causes one switch to the LSS and none back until it is quiet (Cisco SRST waits 120 s,
Avaya's LSP similar). The decision is the pure :class:`ModeMachine`; :func:`watch` feeds it
AMI ContactStatus events and sets the gateway's global ``PBXCTL_SURVIVABLE`` (the dialplan
checks it first), logging every switch with its reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import chanvars as V
from .ami import AmiClient, Message
from .asterisk_show import contacts
from .errors import CommandFailed, WaitTimeout

log = logging.getLogger("pbxctl.survivability")

MODE_VAR = V.SURVIVABLE
PROVINCE_AORS = ("province-a", "province-b")


@dataclass
class Switch:
    to: str  # survivable | central
    reason: str
    at: float


@dataclass
class ModeMachine:
    hold_down: float
    reachable: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(PROVINCE_AORS, True))
    mode: str = "central"
    stable_since: float | None = None  # province reachable without a loss since then
    switches: list[Switch] = field(default_factory=list)

    def observe(self, aor: str, up: bool, now: float) -> Switch | None:
        if aor not in self.reachable:
            return None
        self.reachable[aor] = up
        any_up = any(self.reachable.values())
        if not up:
            self.stable_since = None  # any loss restarts the hold-down
        elif any_up and self.stable_since is None:
            self.stable_since = now
        if self.mode == "central" and not any_up:
            return self._switch("survivable", "province unreachable on every path", now)
        return self.tick(now)

    def tick(self, now: float) -> Switch | None:
        if (self.mode == "survivable" and self.stable_since is not None
                and now - self.stable_since >= self.hold_down):
            return self._switch("central", f"province reachable for {self.hold_down:g} s", now)
        return None

    def _switch(self, to: str, reason: str, now: float) -> Switch:
        self.mode = to
        sw = Switch(to, reason, now)
        self.switches.append(sw)
        return sw


def _contact_up(msg: Message) -> tuple[str, bool] | None:
    if msg.get("Event") != "ContactStatus":
        return None
    status = msg.get("ContactStatus", "")
    if status in ("Reachable", "Created"):
        return msg.get("AOR", ""), True
    if status in ("Unreachable", "Removed"):
        return msg.get("AOR", ""), False
    return None


def apply(client: AmiClient, sw: Switch) -> None:
    client.setvar(MODE_VAR, "1" if sw.to == "survivable" else "0")
    client.action("UserEvent", UserEvent="PbxctlMode", Mode=sw.to, Reason=sw.reason)
    log.warning("gateway mode → %s: %s", sw.to, sw.reason)


def watch(client: AmiClient, machine: ModeMachine, *, stop: threading.Event,
          on_switch: Callable[[Switch], None] | None = None, tick: float = 0.2) -> None:
    """Run until ``stop``: sync from `pjsip show contacts`, then follow ContactStatus."""
    with client.subscribe() as events:
        now = time.monotonic()
        state = contacts("\n".join(client.command("pjsip show contacts")))
        for aor in PROVINCE_AORS:
            sw = machine.observe(aor, state.get(aor) == "Avail", now)
            if sw:
                apply(client, sw)
                if on_switch:
                    on_switch(sw)
        while not stop.is_set():
            if not client.connected:
                raise CommandFailed("AMI connection to the gateway lost",
                                    hint="the supervisor (systemd) restarts the watcher")
            try:
                msg = events.wait_for(lambda m: _contact_up(m) is not None, timeout=tick,
                                      what="ContactStatus")
            except WaitTimeout:  # nothing new: time to check the hold-down
                msg = None
            now = time.monotonic()
            got = _contact_up(msg) if msg else None
            sw = machine.observe(got[0], got[1], now) if got else machine.tick(now)
            if sw:
                apply(client, sw)
                if on_switch:
                    on_switch(sw)
