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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pbxctl.core import chanvars as V
from pbxctl.core.errors import CommandFailed, PbxctlError, WaitTimeout
from pbxctl.pbx.ami import AmiClient, Message
from provisioning.failback import Gate
from provisioning.failback import count_lss_calls as lss_calls

log = logging.getLogger("pbxctl.services.survivability")

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
    gate: Gate | None = None  # optional failback rules (failback.py): None = go ahead
    held: str | None = None  # why a due failback waits, while it does

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
            self.held = self.gate() if self.gate else None
            if self.held:
                return None
            return self._switch("central", f"province reachable for {self.hold_down:g} s", now)
        self.held = None
        return None

    def _switch(self, to: str, reason: str, now: float) -> Switch:
        self.mode = to
        sw = Switch(to, reason, now)
        self.switches.append(sw)
        return sw


@dataclass
class HealthTracker:
    """Down after ``failures`` probes in a row fail, up again after ``successes`` in a row
    succeed: one slow answer does not bypass the CTI, one good one does not trust it."""

    failures: int = 2
    successes: int = 2
    down: bool = False
    _run: int = 0  # consecutive probes contradicting the current state

    def observe(self, ok: bool) -> bool | None:
        """Feed one probe result; returns the new state (True = down) when it changes."""
        if ok != self.down:  # agrees with the current state
            self._run = 0
            return None
        self._run += 1
        if self._run >= (self.successes if self.down else self.failures):
            self.down, self._run = not self.down, 0
            return self.down
        return None


Probe = Callable[..., object]  # check(host, port, timeout=…); raises when unhealthy


def probe_cti(client: AmiClient, targets: list[tuple[str, int]], *, check: Probe,
              stop: threading.Event, interval: float = 1.0, timeout: float = 1.0,
              tracker: HealthTracker | None = None,
              on_change: Callable[[bool, str], None] | None = None) -> None:
    """Speak AGI to the CTI (``check``: its ping route) on every path at once, every
    ``interval``; when no path answers within ``timeout`` for long enough, set the gateway's
    global CTI_DOWN=1 so new calls skip the AGI. A hung server still accepts connections:
    no connect timeout and no SIP check would ever see it."""
    tracker = tracker or HealthTracker()
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        while not stop.is_set():
            started = time.monotonic()
            futures = [pool.submit(check, host, port, timeout=timeout) for host, port in targets]
            errors = []
            for fut in futures:
                try:
                    fut.result(timeout=timeout + 5)
                except (PbxctlError, OSError) as exc:  # TimeoutError is an OSError
                    errors.append(str(exc).splitlines()[0])
            changed = tracker.observe(len(errors) < len(targets))
            if changed is not None:
                reason = "; ".join(errors) if changed else "the CTI answers again"
                client.setvar(V.CTI_DOWN, "1" if changed else "0")
                client.action("UserEvent", UserEvent="PbxctlCti", Down="1" if changed else "0",
                              Reason=reason[:200])
                log.warning("CTI %s: %s", "bypassed" if changed else "back in use", reason)
                if on_change:
                    on_change(changed, reason)
            stop.wait(max(0.0, interval - (time.monotonic() - started)))


def _contact_up(msg: Message) -> tuple[str, bool] | None:
    if msg.get("Event") != "ContactStatus":
        return None
    status = msg.get("ContactStatus", "")
    if status in ("Reachable", "Created"):
        return msg.get("AOR", ""), True
    if status in ("Unreachable", "Removed"):
        return msg.get("AOR", ""), False
    return None


_STATES = {"Reachable": "Avail", "Unreachable": "Unavail"}


def contact_state(client: AmiClient, aor: str) -> str:
    """Avail | Unavail | Unknown of the AOR's first contact, read like the dialplan reads it
    (PJSIP_AOR, PJSIP_CONTACT through Getvar): the watcher's AMI user needs no `command`."""
    contact = client.getvar(f"PJSIP_AOR({aor},contact)").split(",")[0].strip()
    if not contact:
        return "Unknown"
    return _STATES.get(client.getvar(f"PJSIP_CONTACT({contact},status)").strip(), "Unknown")


def count_lss_calls(client: AmiClient) -> int:
    """Calls the gateway has on its LSS trunks (CoreShowChannels: reporting, not command)."""
    reply = client.action("CoreShowChannels")
    return lss_calls([ev.get("Channel", "") for ev in reply.events
                      if ev.get("Event") == "CoreShowChannel"])


def apply(client: AmiClient, sw: Switch) -> None:
    client.setvar(MODE_VAR, "1" if sw.to == "survivable" else "0")
    client.action("UserEvent", UserEvent="PbxctlMode", Mode=sw.to, Reason=sw.reason)
    log.warning("gateway mode → %s: %s", sw.to, sw.reason)


def watch(client: AmiClient, machine: ModeMachine, *, stop: threading.Event,
          on_switch: Callable[[Switch], None] | None = None, tick: float = 0.2,
          on_state: Callable[[ModeMachine], None] | None = None) -> None:
    """Run until ``stop``: read both AORs' state, then follow ContactStatus (and read the
    state again whenever the bounded event buffer overflowed). ``on_state`` sees the machine
    after every step (the province's state report: it must not block)."""
    # Only ContactStatus is queued, and boundedly: the watcher runs for months.
    with client.subscribe(keep=lambda m: _contact_up(m) is not None, maxlen=1000) as events:
        log.info("watching %s; failback hold-down %g s", ", ".join(PROVINCE_AORS),
                 machine.hold_down)
        _sync(client, machine, on_switch)
        dropped = 0
        while not stop.is_set():
            if not client.connected:
                raise CommandFailed("AMI connection to the gateway lost",
                                    hint="the supervisor (systemd) restarts the watcher")
            if events.dropped != dropped:
                # More events than the buffer holds (a storm): some transitions were lost.
                # Read the state again instead of trusting what is left.
                dropped = events.dropped
                log.warning("AMI event buffer overflowed (%d dropped): resyncing", dropped)
                _sync(client, machine, on_switch)
            try:
                msg = events.wait_for(lambda m: _contact_up(m) is not None, timeout=tick,
                                      what="ContactStatus")
            except WaitTimeout:  # nothing new: time to check the hold-down
                msg = None
            now = time.monotonic()
            got = _contact_up(msg) if msg else None
            held = machine.held
            sw = machine.observe(got[0], got[1], now) if got else machine.tick(now)
            if machine.held and machine.held != held:
                log.warning("failback due but held: %s", machine.held)
            _switched(client, sw, on_switch)
            if on_state is not None:
                on_state(machine)


def _sync(client: AmiClient, machine: ModeMachine,
          on_switch: Callable[[Switch], None] | None) -> None:
    now = time.monotonic()
    for aor in PROVINCE_AORS:
        state = contact_state(client, aor)
        # Right after a boot qualify has not answered yet ("Unknown"): not a loss.
        if state not in ("Avail", "Unavail"):
            continue
        _switched(client, machine.observe(aor, state == "Avail", now), on_switch)


def _switched(client: AmiClient, sw: Switch | None,
              on_switch: Callable[[Switch], None] | None) -> None:
    if sw:
        apply(client, sw)
        if on_switch:
            on_switch(sw)
