"""The one interface handlers use to act on a call, whatever the transport (AGI or ESL)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class CallHangup(Exception):
    """The caller hung up (or the PBX closed the session): nothing more can be done on the call."""


class CallTimeout(Exception):
    """The PBX did not answer a command within its timeout."""


class ProtocolError(Exception):
    """The PBX sent something the transport cannot parse."""


class DialplanBreak(Exception):
    """A handler cannot do its job: the server sets the failure variables and the dialplan
    takes its local fallback. ``reason`` becomes the failure-reason variable (a short token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Call(Protocol):
    @property
    def uniqueid(self) -> str: ...

    @property
    def env(self) -> Mapping[str, str]:
        """What the PBX told us at session start (AGI: agi_* keys)."""
        ...

    @property
    def params(self) -> Mapping[str, str]:
        """Query parameters of the route URL (``agi://host/bill?site=hz-gw&pref=HZ``)."""
        ...

    @property
    def dnid(self) -> str: ...

    @property
    def caller(self) -> str: ...

    def get_variable(self, name: str) -> str: ...

    def set_variable(self, name: str, value: str) -> None: ...

    def play(self, prompt: str, *, escape_digits: str = "") -> str:
        """Play a prompt stored on the PBX; returns the digit that interrupted it, or ""."""
        ...

    def collect_digits(self, prompt: str, *, max_digits: int, timeout_ms: int) -> str: ...

    def say_digits(self, digits: str) -> None: ...

    def verbose(self, message: str, *, level: int = 1) -> None: ...

    def hangup(self) -> None: ...
