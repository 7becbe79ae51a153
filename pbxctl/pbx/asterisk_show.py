"""Parse what a running Asterisk says it has (CLI output, via -rx or AMI Command)."""

from __future__ import annotations

import re

_ENDPOINT = re.compile(r"^ Endpoint:\s+([^<\s/][^\s/]*)")
_CONTEXT = re.compile(r"^\[ Context '([^']+)' created by '([^']+)' \]")
_EXTEN = re.compile(r"^  '([^']+)' =>")
_QUEUE = re.compile(r"^(\S+) has \d+ calls? ")
_CONTACT = re.compile(r"^\s+Contact:\s+([^/\s<]+)/\S+\s+\S+\s+(\S+)")
_MEMBER = re.compile(r"^\s+(?:.*? )?\(((?:PJSIP|SIP|Local)/[^\s)]+)")


def endpoints(pjsip_show_endpoints: str) -> set[str]:
    return {m.group(1) for line in pjsip_show_endpoints.splitlines()
            if (m := _ENDPOINT.match(line))}


def contacts(pjsip_show_contacts: str) -> dict[str, str]:
    """AOR → contact status (Avail, Unavail, NonQual, Unknown) from `pjsip show contacts`."""
    return {m.group(1): m.group(2) for line in pjsip_show_contacts.splitlines()
            if (m := _CONTACT.match(line))}


def dialplan(dialplan_show: str, *, registrar: str = "pbx_config") -> dict[str, set[str]]:
    """Context → extensions, for contexts created by ``registrar`` (the config file)."""
    out: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in dialplan_show.splitlines():
        if m := _CONTEXT.match(line):
            current = out.setdefault(m.group(1), set()) if m.group(2) == registrar else None
        elif current is not None and (m := _EXTEN.match(line)):
            current.add(m.group(1))
    return out


def queues(queue_show: str) -> dict[str, set[str]]:
    """Queue → member interfaces."""
    out: dict[str, set[str]] = {}
    current: set[str] | None = None
    in_members = False
    for line in queue_show.splitlines():
        if m := _QUEUE.match(line):
            current = out.setdefault(m.group(1), set())
            in_members = False
        elif line.strip() == "Members:":
            in_members = True
        elif line.strip().startswith(("No Callers", "Callers:", "No Members")):
            in_members = False
        elif in_members and current is not None and (m := _MEMBER.match(line)):
            current.add(m.group(1))
    return out
