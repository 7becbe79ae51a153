"""Parsers of FreeSWITCH's API answers (over the event socket): what a running site holds, in
the shapes provisioning.expect compares with the model. Pure functions, text in."""

from __future__ import annotations


def profiles(sofia_status: str) -> dict[str, set[str]]:
    """`sofia status` → profile → its gateways (``switch-a::province-a`` is gateway
    ``province-a`` of profile ``switch-a``). Only RUNNING profiles count."""
    out: dict[str, set[str]] = {}
    gateways: list[tuple[str, str]] = []
    for line in sofia_status.splitlines():
        cols = line.split()
        if len(cols) < 4:
            continue
        if cols[1] == "profile" and cols[3] == "RUNNING":
            out.setdefault(cols[0], set())
        elif cols[1] == "gateway" and "::" in cols[0]:
            prof, _, gw = cols[0].partition("::")
            gateways.append((prof, gw))
    for prof, gw in gateways:
        if prof in out:
            out[prof].add(gw)
    return out


def table(text: str) -> list[dict[str, str]]:
    """A `|`-separated answer with a header line, ending with ``+OK``."""
    lines = [line for line in text.splitlines() if line.strip() and line.strip() != "+OK"]
    if not lines or "|" not in lines[0]:
        return []
    head = lines[0].split("|")
    return [dict(zip(head, line.split("|"), strict=False)) for line in lines[1:]]


def users(list_users: str) -> set[str]:
    """`list_users` → user ids."""
    return {row["userid"] for row in table(list_users) if row.get("userid")}


def queues(queue_list: str, tier_list: str) -> dict[str, set[str]]:
    """`callcenter_config queue list` and `… tier list` → queue → agents with a tier."""
    out: dict[str, set[str]] = {row["name"]: set() for row in table(queue_list)
                                if row.get("name")}
    for row in table(tier_list):
        if row.get("queue") in out:
            out[row["queue"]].add(row["agent"])
    return out
