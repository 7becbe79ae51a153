"""Words the screens show for codes (statuses, order types, roles, SLA states), marked for the
catalog with ``N_`` and translated at render time."""

from __future__ import annotations

from datetime import timedelta


def N_(text: str) -> str:  # gettext's conventional name for "mark only"
    return text


STATUS = {"new": N_("new"), "dispatched": N_("dispatched"), "accepted": N_("accepted"),
          "returned": N_("returned"), "escalated": N_("escalated"), "done": N_("done")}
ORDER_TYPE = {"repair": N_("repair"), "billing": N_("billing dispute"),
              "outage": N_("outage report"), "meter": N_("meter"), "other": N_("other")}
PRIORITY = {1: N_("urgent"), 2: N_("high"), 3: N_("normal"), 4: N_("low")}
ROLE = {"agent": N_("agent"), "county": N_("county terminal seat"),
        "supervisor": N_("supervisor"), "admin": N_("administrator")}
REASON = {"account": N_("the caller's account"), "did": N_("the number dialled"),
          "area": N_("the caller's area code"), "gateway": N_("the gateway's prefecture"),
          "local": N_("the gateway's own prefecture (CTI unreachable)")}
PAUSE_REASONS = {"break": N_("break"), "meal": N_("meal"), "training": N_("training"),
                 "after-call-work": N_("after-call work"), "meeting": N_("meeting")}
SPY = {"listen": N_("listen"), "whisper": N_("whisper"), "barge": N_("barge")}
SPY_CODE = {"listen": "*1", "whisper": "*2", "barge": "*3"}  # the province's supervisors context
MEMBER = {"ready": N_("ready"), "busy": N_("busy"), "paused": N_("paused"),
          "offline": N_("offline")}
MODE = {"central": N_("central"), "survivable": N_("survivable")}
EVENT = {"created": N_("created"), "dispatched": N_("dispatched"), "notify": N_("phone call"),
         "accepted": N_("accepted"), "returned": N_("returned"), "escalated": N_("escalated"),
         "done": N_("done")}

# How long an open order may stay open, by priority (docs/console.md): the inbox colours an
# order green below half of it, amber up to it, red past it.
SLA = {1: timedelta(hours=2), 2: timedelta(hours=4), 3: timedelta(hours=24),
       4: timedelta(hours=72)}


def sla_state(priority: int, age: timedelta, status: str) -> str:
    if status == "done":
        return "closed"
    limit = SLA.get(priority, SLA[3])
    if age > limit:
        return "late"
    return "due" if age > limit / 2 else "ok"
