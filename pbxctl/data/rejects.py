"""Quarantine: a record a service cannot process goes here with the reason, and the service goes
on. The record is stored escaped to printable ASCII (``ascii()``): whatever made it poison (a NUL,
a lone surrogate, a 10 MB field) cannot poison this table too."""

from __future__ import annotations

from pbxctl.data.store import Store

MAX_RECORD = 4096  # characters of the escaped record kept; the reason says if it was cut


def escaped(record: object) -> str:
    text = ascii(record)
    if len(text) <= MAX_RECORD:
        return text
    return text[:MAX_RECORD] + f"...(+{len(text) - MAX_RECORD})"


def quarantine(store: Store, *, source: str, reason: str, record: object) -> None:
    store.execute("INSERT INTO rejected_records (source, reason, record) VALUES (%s, %s, %s)",
                  (source, escaped(reason)[1:-1], escaped(record)))


def recent(store: Store, *, source: str | None = None, limit: int = 100
           ) -> list[tuple[object, ...]]:
    return store.execute(
        "SELECT at, source, reason, record FROM rejected_records "
        "WHERE (%s::text IS NULL OR source = %s) ORDER BY id DESC LIMIT %s",
        (source, source, limit))
