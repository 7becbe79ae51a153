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
# ping: the CTI process's counters ("refused_peers=3 over_capacity=0 …"), for health checks.
HEALTH = "PBXCTL_HEALTH"

# welcome: which local prompt file the PBX plays.
WELCOME_PROMPT = "PBXCTL_WELCOME_PROMPT"
# Self-service handlers say what the dialplan does next: agent | done | menu.
NEXT = "PBXCTL_NEXT"
NEXT_AGENT = "agent"
NEXT_DONE = "done"
# Why a self-service call went to an agent: wrong-input | store-unavailable | (empty).
SVC_RESULT = "PBXCTL_SVC_RESULT"
# Folder (on the PBX's own disk) holding published prompts: <dir>/<prompt id>/<version>.
PROMPT_DIR = "PBXCTL_PROMPT_DIR"
ACCOUNT = "PBXCTL_ACCOUNT"
BILL_PERIOD = "PBXCTL_BILL_PERIOD"
BILL_AMOUNT = "PBXCTL_BILL_AMOUNT"
BILL_DUE = "PBXCTL_BILL_DUE"
OUTAGES = "PBXCTL_OUTAGES"


def as_template_vars() -> dict[str, str]:
    """All names, for templates: ``{{ V.STATUS }}``."""
    return {k: v for k, v in globals().items() if k.isupper() and isinstance(v, str)}

# Call records (pbxctl.data.callrecords): set along the call, written by the hangup handler.
CALL_ORIGIN = "PBXCTL_CALL_ORIGIN"  # the gateway's linkedid, carried to the province
DID = "PBXCTL_DID"
CALLER = "PBXCTL_CALLER"
PREFECTURE = "PBXCTL_PREFECTURE"
QUEUE = "PBXCTL_QUEUE"
AGENT = "PBXCTL_AGENT"
T_START = "PBXCTL_T_START"
T_ANSWER = "PBXCTL_T_ANSWER"
OVERFLOWED = "PBXCTL_OVERFLOWED"
RECORDING = "PBXCTL_RECORDING"
MODE = "PBXCTL_MODE"
# SIP headers the gateway adds when it hands a call to the province or the LSS.
HEADER_DID = "X-Pbxctl-Did"
HEADER_ORIGIN = "X-Pbxctl-Origin"
HEADER_SENT = "X-Pbxctl-Sent"  # the gateway's ${EPOCH} when it sent the INVITE
HEADER_ACCOUNT = "X-Pbxctl-Account"  # the account self-service identified (digits), if any
HEADER_REASON = "X-Pbxctl-Reason"  # why the call went to this queue (ROUTE_REASON)

# route: where a caller who wants a person goes (ivr_scripts.routing).
ROUTE_PREFECTURE = "PBXCTL_ROUTE_PREFECTURE"
ROUTE_QUEUE = "PBXCTL_ROUTE_QUEUE"
ROUTE_REASON = "PBXCTL_ROUTE_REASON"  # account | did | area | gateway
ROUTE_OPEN = "PBXCTL_ROUTE_OPEN"  # 1 within business hours, 0 outside
AFTER_HOURS = "PBXCTL_AFTER_HOURS"  # selfservice | message

# Work orders (ivr_scripts.orders): the order a feature-code call created / a notify call is
# about, and what became of the seat's key.
ORDER = "PBXCTL_ORDER"
ORDER_RESULT = "PBXCTL_ORDER_RESULT"  # created | accepted | returned | refused

# Self-service: who answered it — "province" (the CTI) or "ivr" (the prefecture's own IVR,
# from its replica of the self-service data).
SVC_BY = "PBXCTL_SVC_BY"
SVC_BY_PROVINCE = "province"
SVC_BY_IVR = "ivr"

# Set (global, over AMI) by the survivability watcher: 1 = the province is out, go to the LSS.
SURVIVABLE = "PBXCTL_SURVIVABLE"
# Set (global, over AMI) by the watcher's CTI health probe: 1 = the FastAGI server accepts
# connections but does not answer (hung) or is gone; calls skip it until it answers again.
CTI_DOWN = "PBXCTL_CTI_DOWN"
