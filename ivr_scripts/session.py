"""The one session dispatcher: route lookup, time budget, status and failure reporting.

Both transports (FastAGI in :mod:`ivr_scripts.fastagi`, outbound ESL in :mod:`ivr_scripts.esl`)
hand a :class:`~ivr_scripts.call.Call` and its route to :func:`run_session`. Every session
ends in exactly one :class:`Outcome`:

- the handler ran: ``PBXCTL_STATUS=OK``;
- the handler raised :class:`DialplanBreak`, any other error, or the route is unknown:
  ``PBXCTL_STATUS=FAIL`` and ``PBXCTL_FAIL_REASON=<token>``; the dialplan takes its fallback;
- the caller hung up or the PBX vanished: nothing more is sent.

How a budget is enforced is the transport's business (a thread cannot be interrupted, a
greenlet can): it passes a ``budget`` context manager.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from enum import StrEnum

from ivr_scripts.call import Call, CallHangup, CallTimeout, DialplanBreak, ProtocolError
from ivr_scripts.registry import HandlerContext, Registry, UnknownRoute
from pbxctl.core import chanvars as V

log = logging.getLogger("pbxctl.cti")

Budget = Callable[[float], AbstractContextManager[None]]


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    HANGUP = "hangup"  # the caller (or the PBX) went away: nothing to report to
    TIMEOUT = "timeout"  # the failure could not be reported: the PBX stopped answering


@contextlib.contextmanager
def no_budget(_seconds: float) -> Iterator[None]:
    yield


def log_event(event: str, **fields: object) -> None:
    """One JSON line per session event: greppable and machine-readable."""
    log.info(json.dumps({"event": event, **fields}, ensure_ascii=False, sort_keys=True))


def run_session(call: Call, route: str, *, registry: Registry, context: HandlerContext,
                budget: Budget = no_budget, transport: str = "agi",
                authorize: Callable[[], str | None] | None = None) -> Outcome:
    """``authorize``: the transport's check of what this peer may do (its site); a reason
    to refuse fails the session before any handler runs."""
    started = time.monotonic()
    ids = {"uniqueid": call.uniqueid, "route": route, "transport": transport}
    try:
        refused = authorize() if authorize is not None else None
        if refused:
            raise DialplanBreak(refused)
        try:
            handler, seconds = registry.entry(route)
        except UnknownRoute:
            raise DialplanBreak("unknown-route") from None
        with budget(seconds):
            handler(call, context)
        call.set_variable(V.STATUS, V.STATUS_OK)
    except CallHangup:
        log_event("session_hangup", **ids)
        return Outcome.HANGUP
    except DialplanBreak as brk:
        return _fail(call, brk.reason, ids)
    except (CallTimeout, ProtocolError) as exc:
        # The PBX's fault (or a budget cut), not ours: one line, no traceback.
        log.warning("session %s (%s): %s", route, type(exc).__name__, exc)
        return _fail(call, f"error-{type(exc).__name__}", ids)
    except Exception as exc:  # the one failure path for every handler bug
        log.exception("handler %s failed", route)
        return _fail(call, f"error-{type(exc).__name__}", ids)
    log_event("session_ok", ms=round((time.monotonic() - started) * 1000, 1), **ids)
    return Outcome.OK


def _fail(call: Call, reason: str, ids: dict[str, str]) -> Outcome:
    log_event("session_fail", reason=reason, **ids)
    try:
        call.set_variable(V.FAIL_REASON, reason)
        call.set_variable(V.STATUS, V.STATUS_FAIL)
    except CallHangup:
        return Outcome.HANGUP
    except (CallTimeout, ProtocolError):
        return Outcome.TIMEOUT
    return Outcome.FAILED
