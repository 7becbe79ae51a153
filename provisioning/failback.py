"""Optional failback rules, like Avaya's LSP offers, on top of the hold-down.

The hold-down says *whether* the province is back for good; these say *when* it is a good
moment to move new calls back to it:

* ``lss-idle``: only when the LSS carries no call (no agent is mid-conversation on the
  survivable server while their colleagues' new calls already go to the province);
* a window (``02:00-05:00``, province local time): only in a quiet hour.

A rule that holds failback back says why, so the watcher can log it once. The checks are
plain callables, so the decision stays testable without a PBX.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from pbxctl.core.errors import InputError

RULES = ("hold-down", "lss-idle")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")

Gate = Callable[[], str | None]  # None: failback may go ahead; else why it waits


@dataclass(frozen=True)
class Window:
    start: time
    end: time  # 24:00 is written as time.max

    @classmethod
    def parse(cls, text: str, *, where: str = "failback window") -> Window:
        m = _WINDOW.match(text.strip())
        if not m:
            raise InputError(f"{where}: {text!r} is not HH:MM-HH:MM (e.g. 02:00-05:00)")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        end = time.max if (h2, m2) == (24, 0) else time(h2 % 24, m2)
        if h2 == 24 and m2:
            raise InputError(f"{where}: {text!r}: 24:MM is only valid as 24:00")
        return cls(time(h1, m1), end)

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # across midnight, e.g. 22:00-06:00

    def __str__(self) -> str:
        end = "24:00" if self.end == time.max else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


def make_gate(*, rule: str = "hold-down", window: Window | None = None,
              lss_calls: Callable[[], int] | None = None, timezone: str = "Asia/Shanghai",
              clock: Callable[[], datetime] | None = None) -> Gate | None:
    """The combined check for the watcher, or None when only the hold-down applies."""
    if rule not in RULES:
        raise InputError(f"failback rule {rule!r}: one of {', '.join(RULES)}")
    if rule == "lss-idle" and lss_calls is None:
        raise InputError("failback rule lss-idle needs a way to count the LSS's calls")
    if rule == "hold-down" and window is None:
        return None
    zone = ZoneInfo(timezone)
    now = clock or (lambda: datetime.now(zone))

    def gate() -> str | None:
        if window is not None:
            local = now().astimezone(zone).time()
            if not window.contains(local):
                return f"outside the failback window {window}"
        if rule == "lss-idle" and lss_calls is not None:
            busy = lss_calls()
            if busy:
                return f"the LSS still carries {busy} call(s)"
        return None

    return gate


def count_lss_calls(channels: Iterable[str]) -> int:
    """Calls the gateway has on its LSS trunks, from its channel names."""
    return sum(1 for name in channels if name.startswith("PJSIP/lss-"))
