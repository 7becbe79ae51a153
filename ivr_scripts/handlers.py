"""Call-time handlers. Each computes and sets channel variables; the dialplan owns the call."""

from __future__ import annotations

import logging

from pbxctl import chanvars as V
from pbxctl.errors import StoreUnavailable

from .call import Call
from .registry import HandlerContext, Registry

log = logging.getLogger("pbxctl.agi")

DEFAULT_WELCOME = "hello-world"


def ping(call: Call, ctx: HandlerContext) -> None:
    """Health check: does nothing; success means the server answered and ran a handler."""


def welcome(call: Call, ctx: HandlerContext) -> None:
    """Decide the welcome prompt this call plays from the PBX's own disk.

    Central control, local playback: only the prompt's name crosses the link.
    """
    prompts: dict[str, str] = ctx.settings.get("welcome_prompts", {})
    prompt = prompts.get(call.dnid, prompts.get("default", DEFAULT_WELCOME))
    call.set_variable(V.WELCOME_PROMPT, prompt)
    if ctx.store is not None:
        try:
            ctx.store.record_agi_call(uniqueid=call.uniqueid, route="welcome", dnid=call.dnid,
                                      caller=call.caller, outcome=prompt)
        except StoreUnavailable as exc:
            # The call log is not worth a failed welcome: the caller still gets the prompt.
            log.warning("welcome: call log not written for %s: %s", call.uniqueid, exc)


def default_registry() -> Registry:
    return Registry([ping, welcome])
