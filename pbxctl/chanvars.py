"""Channel-variable names shared by the handlers, the dialplan templates and the tests.

Handlers compute and set these; the dialplan owns call control and acts on them.
"""

from __future__ import annotations

# Set to "OK" by the AGI server when a handler ran to completion; anything else (empty, FAIL)
# sends the dialplan to its local fallback. Asterisk's own AGISTATUS is checked as well.
STATUS = "PBXCTL_STATUS"
STATUS_OK = "OK"
STATUS_FAIL = "FAIL"
FAIL_REASON = "PBXCTL_FAIL_REASON"

# welcome: which local prompt file the PBX plays.
WELCOME_PROMPT = "PBXCTL_WELCOME_PROMPT"
# route: where the dialplan sends the call next (a context in the site's dialplan).
NEXT = "PBXCTL_NEXT"


def as_template_vars() -> dict[str, str]:
    """All names, for templates: ``{{ V.STATUS }}``."""
    return {k: v for k, v in globals().items() if k.isupper() and isinstance(v, str)}
