"""The web console's sign-in records: password hashes, server-side sessions, failed sign-ins.

Hashing lives in the console (argon2); this module stores and reads what it is given. A
session is found by the sha256 of its cookie token, so the table alone signs no one in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pbxctl.data.store import Store


@dataclass(frozen=True)
class Login:
    login: str
    admin: bool
    password_hash: str


@dataclass(frozen=True)
class Session:
    login: str
    csrf: str
    lang: str
    created_at: datetime
    seen_at: datetime
    expires_at: datetime


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def set_password(store: Store, *, login: str, password_hash: str, admin: bool) -> None:
    """Create or replace a login's hash; every session of that login ends (a changed
    password signs out whoever knew the old one)."""
    with store.transaction() as conn:
        conn.execute("INSERT INTO console_logins (login, admin, password_hash) "
                     "VALUES (%s, %s, %s) ON CONFLICT (login) DO UPDATE SET "
                     "admin = EXCLUDED.admin, password_hash = EXCLUDED.password_hash, "
                     "updated_at = now()", (login, admin, password_hash))
        conn.execute("DELETE FROM console_sessions WHERE login = %s", (login,))


def get_login(store: Store, login: str) -> Login | None:
    rows = store.execute("SELECT login, admin, password_hash FROM console_logins "
                         "WHERE login = %s", (login,))
    if not rows:
        return None
    name, admin, hashed = rows[0]
    return Login(str(name), bool(admin), str(hashed))


def update_hash(store: Store, *, login: str, password_hash: str) -> None:
    """A rehash with newer parameters at sign-in (sessions stay)."""
    store.execute("UPDATE console_logins SET password_hash = %s WHERE login = %s",
                  (password_hash, login))


def note_failure(store: Store, *, login: str, client: str) -> None:
    store.execute("INSERT INTO console_login_failures (login, client) VALUES (%s, %s)",
                  (login, client))


def recent_failures(store: Store, *, login: str, client: str,
                    window: timedelta) -> tuple[int, int]:
    """Failed sign-ins within ``window``: (for this login, from this client)."""
    rows = store.execute(
        "SELECT count(*) FILTER (WHERE login = %s), count(*) FILTER (WHERE client = %s) "
        "FROM console_login_failures WHERE at > now() - %s AND (login = %s OR client = %s)",
        (login, client, window, login, client))
    by_login, by_client = rows[0]
    assert isinstance(by_login, int) and isinstance(by_client, int)
    return by_login, by_client


def clear_failures(store: Store, *, login: str) -> None:
    store.execute("DELETE FROM console_login_failures WHERE login = %s OR at < now() - "
                  "interval '1 day'", (login,))


def create_session(store: Store, *, token: str, login: str, csrf: str, lang: str,
                   lifetime: timedelta) -> None:
    store.execute("INSERT INTO console_sessions (token_hash, login, csrf, lang, expires_at) "
                  "VALUES (%s, %s, %s, %s, now() + %s)",
                  (token_hash(token), login, csrf, lang, lifetime))


def find_session(store: Store, *, token: str, idle: timedelta) -> Session | None:
    """The live session of ``token``, touched; None when unknown, idle longer than ``idle``
    or past its absolute end (then it is deleted)."""
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT login, csrf, lang, created_at, seen_at, expires_at, "
            "seen_at + %s < now() OR expires_at < now() FROM console_sessions "
            "WHERE token_hash = %s FOR UPDATE", (idle, token_hash(token))).fetchone()
        if row is None:
            return None
        if row[6]:
            conn.execute("DELETE FROM console_sessions WHERE token_hash = %s",
                         (token_hash(token),))
            return None
        conn.execute("UPDATE console_sessions SET seen_at = now() WHERE token_hash = %s",
                     (token_hash(token),))
    return Session(str(row[0]), str(row[1]), str(row[2]), row[3], row[4], row[5])


def set_session_lang(store: Store, *, token: str, lang: str) -> None:
    store.execute("UPDATE console_sessions SET lang = %s WHERE token_hash = %s",
                  (lang, token_hash(token)))


def end_session(store: Store, *, token: str) -> None:
    store.execute("DELETE FROM console_sessions WHERE token_hash = %s", (token_hash(token),))
