"""Prompt catalogue in PostgreSQL: prompts (id, version, text), rules, drift reports."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pbxctl.core.errors import InputError
from pbxctl.data.store import Store

WELCOME_DEFAULT = "welcome-default"  # played when no rule applies (and as local default)
PROMPT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
RULE_KINDS = ("default", "holiday", "outage")


@dataclass(frozen=True)
class Prompt:
    prompt_id: str
    version: int
    language: str
    kind: str
    text: str
    published: bool
    sha256: str | None


@dataclass(frozen=True)
class Rule:
    id: int
    prompt_id: str
    kind: str
    prefecture: str | None
    area_code: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    priority: int


def check_prompt_id(prompt_id: str) -> str:
    if not PROMPT_ID.match(prompt_id):
        raise InputError(f"prompt id {prompt_id!r}: use a-z, 0-9 and '-' (max 64)")
    return prompt_id


def add_prompt(store: Store, *, prompt_id: str, text: str, kind: str = "announcement",
               language: str = "zh") -> Prompt:
    """A new version of ``prompt_id`` (1 for a new id)."""
    check_prompt_id(prompt_id)
    if not text.strip() or len(text) > 2000:
        raise InputError(f"prompt {prompt_id}: text must be 1..2000 characters")
    rows = store.execute(
        "INSERT INTO prompts (prompt_id, version, language, kind, text) "
        "SELECT %s, coalesce(max(version), 0) + 1, %s, %s, %s FROM prompts WHERE prompt_id = %s "
        "RETURNING version", (prompt_id, language, kind, text, prompt_id))
    return Prompt(prompt_id, int(str(rows[0][0])), language, kind, text, False, None)


def ensure_prompt(store: Store, *, prompt_id: str, text: str, kind: str) -> bool:
    """Add version 1 if the id is unknown; an existing id is left alone. True if added."""
    rows = store.execute("SELECT 1 FROM prompts WHERE prompt_id = %s LIMIT 1", (prompt_id,))
    if rows:
        return False
    add_prompt(store, prompt_id=prompt_id, text=text, kind=kind)
    return True


def latest_prompts(store: Store) -> list[Prompt]:
    rows = store.execute(
        "SELECT DISTINCT ON (prompt_id) prompt_id, version, language, kind, text, "
        "published_at IS NOT NULL, sha256 FROM prompts ORDER BY prompt_id, version DESC")
    return [Prompt(str(r[0]), int(str(r[1])), str(r[2]), str(r[3]), str(r[4]), bool(r[5]),
                   None if r[6] is None else str(r[6])) for r in rows]


def published_versions(store: Store) -> dict[str, int]:
    rows = store.execute("SELECT prompt_id, max(version) FROM prompts "
                         "WHERE published_at IS NOT NULL GROUP BY prompt_id")
    return {str(r[0]): int(str(r[1])) for r in rows}


def mark_published(store: Store, *, prompt_id: str, version: int, sha256: str) -> None:
    store.execute("UPDATE prompts SET published_at = now(), sha256 = %s "
                  "WHERE prompt_id = %s AND version = %s", (sha256, prompt_id, version))


def add_rule(store: Store, *, prompt_id: str, kind: str, prefecture: str | None = None,
             area_code: str | None = None, valid_from: datetime | None = None,
             valid_until: datetime | None = None, priority: int = 0) -> int:
    check_prompt_id(prompt_id)
    if kind not in RULE_KINDS:
        raise InputError(f"rule kind {kind!r}: one of {', '.join(RULE_KINDS)}")
    if not store.execute("SELECT 1 FROM prompts WHERE prompt_id = %s LIMIT 1", (prompt_id,)):
        raise InputError(f"no prompt {prompt_id!r} in the catalogue",
                         hint="add it first: pbxctl prompts add")
    if valid_from and valid_until and valid_until <= valid_from:
        raise InputError("rule window: --until must be after --from")
    rows = store.execute(
        "INSERT INTO prompt_rules (prompt_id, kind, prefecture, area_code, valid_from, "
        "valid_until, priority) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (prompt_id, kind, prefecture, area_code, valid_from, valid_until, priority))
    return int(str(rows[0][0]))


def rules(store: Store) -> list[Rule]:
    rows = store.execute("SELECT id, prompt_id, kind, prefecture, area_code, valid_from, "
                         "valid_until, priority FROM prompt_rules ORDER BY id")
    out = []
    for r in rows:
        starts, ends = r[5], r[6]
        assert starts is None or isinstance(starts, datetime)
        assert ends is None or isinstance(ends, datetime)
        out.append(Rule(int(str(r[0])), str(r[1]), str(r[2]), None if r[3] is None else str(r[3]),
                        None if r[4] is None else str(r[4]), starts, ends, int(str(r[7]))))
    return out


def record_drift(store: Store, *, site: str, prompt: str, uniqueid: str, problem: str) -> None:
    store.execute("INSERT INTO prompt_drift (site, prompt, uniqueid, problem) "
                  "VALUES (%s, %s, %s, %s)", (site, prompt, uniqueid, problem))


def drift_reports(store: Store, *, limit: int = 100) -> list[dict[str, str]]:
    rows = store.execute("SELECT site, prompt, uniqueid, problem, seen_at::text FROM "
                         "prompt_drift ORDER BY id DESC LIMIT %s", (limit,))
    keys = ("site", "prompt", "uniqueid", "problem", "seen_at")
    return [dict(zip(keys, (str(v) for v in r), strict=True)) for r in rows]
