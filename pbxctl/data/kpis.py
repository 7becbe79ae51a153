"""The contact-center figures of the supervisor wallboard and the daily report, computed from
the call records the collector moves into PostgreSQL (a local file first, so a database outage
loses none of them). Definitions (docs/console.md, "KPIs"), per prefecture and period:

* offered: call records of that prefecture that entered a queue (province ACD, the
  supervisors' overflow queue, or the LSS queue in survivable mode) and started in the period;
* answered: offered calls a member answered (``answered_at`` set);
* abandoned: offered calls nobody answered (the caller hung up, or gave up after a timeout);
* wait: answer time − start time of an answered call (the province queues a call the moment
  it arrives, a few ms after it starts);
* service level: answered with wait ≤ threshold ÷ offered (threshold default 20 s);
* ASA (average speed of answer): mean wait of answered calls;
* abandonment rate: abandoned ÷ offered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from pbxctl.data.store import Store


@dataclass(frozen=True)
class Kpis:
    offered: int
    answered: int
    abandoned: int
    answered_in_sl: int
    asa_s: float | None

    @property
    def service_level(self) -> float | None:
        return self.answered_in_sl / self.offered if self.offered else None

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None


_WAIT = "extract(epoch FROM answered_at - started_at)"


def prefecture_kpis(store: Store, *, since: datetime, until: datetime,
                    sl_seconds: int = 20) -> dict[str, Kpis]:
    rows = store.execute(
        f"SELECT prefecture, count(*), count(answered_at), "
        f"count(*) FILTER (WHERE answered_at IS NOT NULL AND {_WAIT} <= %s), "
        f"avg({_WAIT}) FILTER (WHERE answered_at IS NOT NULL) "
        "FROM call_records WHERE queue <> '' AND prefecture <> '' "
        "AND started_at >= %s AND started_at < %s GROUP BY prefecture",
        (sl_seconds, since, until))
    out: dict[str, Kpis] = {}
    for pref, offered, answered, in_sl, asa in rows:
        assert isinstance(offered, int) and isinstance(answered, int)
        assert isinstance(in_sl, int)
        out[str(pref)] = Kpis(offered, answered, offered - answered, in_sl,
                              float(str(asa)) if asa is not None else None)
    return out


@dataclass(frozen=True)
class HourRow:
    hour: int  # 0-23, in the zone asked for
    offered: int
    answered: int
    abandoned: int


def hourly(store: Store, *, since: datetime, until: datetime, zone: str,
           prefecture: str | None = None) -> list[HourRow]:
    """Offered/answered/abandoned by hour of the day in ``zone``; all 24 hours, zeros kept."""
    rows = store.execute(
        "SELECT extract(hour FROM started_at AT TIME ZONE %s)::int, count(*), "
        "count(answered_at) FROM call_records WHERE queue <> '' AND prefecture <> '' "
        "AND started_at >= %s AND started_at < %s AND (%s::text IS NULL OR prefecture = %s) "
        "GROUP BY 1", (zone, since, until, prefecture, prefecture))
    got = {int(str(h)): (int(str(o)), int(str(a))) for h, o, a in rows}
    return [HourRow(h, *got.get(h, (0, 0)), got.get(h, (0, 0))[0] - got.get(h, (0, 0))[1])
            for h in range(24)]


def hourly_kpis(store: Store, *, prefecture: str, since: datetime, until: datetime,
                zone: str, sl_seconds: int = 20) -> list[tuple[int, Kpis]]:
    """The same figures as ``prefecture_kpis``, by hour of the day in ``zone`` (all 24)."""
    rows = store.execute(
        f"SELECT extract(hour FROM started_at AT TIME ZONE %s)::int, count(*), "
        f"count(answered_at), "
        f"count(*) FILTER (WHERE answered_at IS NOT NULL AND {_WAIT} <= %s), "
        f"avg({_WAIT}) FILTER (WHERE answered_at IS NOT NULL) "
        "FROM call_records WHERE queue <> '' AND prefecture = %s "
        "AND started_at >= %s AND started_at < %s GROUP BY 1",
        (zone, sl_seconds, prefecture, since, until))
    got: dict[int, Kpis] = {}
    for hour, offered, answered, in_sl, asa in rows:
        assert isinstance(offered, int) and isinstance(answered, int)
        assert isinstance(in_sl, int)
        got[int(str(hour))] = Kpis(offered, answered, offered - answered, in_sl,
                                   float(str(asa)) if asa is not None else None)
    return [(h, got.get(h, Kpis(0, 0, 0, 0, None))) for h in range(24)]


@dataclass(frozen=True)
class OrderDay:
    opened: int   # created in the period
    closed: int   # moved to done in the period
    overdue: int  # open at the period's end and older than their SLA then


def order_day(store: Store, *, prefecture: str, since: datetime, until: datetime,
              sla_hours: dict[int, float]) -> OrderDay:
    """Work orders of the prefecture's counties for one period. ``sla_hours``: priority →
    hours an order may stay open (the console's SLA bands)."""
    opened = store.execute("SELECT count(*) FROM work_orders WHERE prefecture = %s AND "
                           "created_at >= %s AND created_at < %s", (prefecture, since, until))
    closed = store.execute(
        "SELECT count(DISTINCT e.order_id) FROM work_order_events e JOIN work_orders o ON "
        "o.id = e.order_id WHERE o.prefecture = %s AND e.to_status = 'done' AND e.at >= %s "
        "AND e.at < %s", (prefecture, since, until))
    # Open at the period's end: created before it, and not done by then.
    overdue = store.execute(
        "SELECT count(*) FROM work_orders o WHERE o.prefecture = %s AND o.created_at < %s "
        "AND NOT EXISTS (SELECT 1 FROM work_order_events e WHERE e.order_id = o.id AND "
        "e.to_status = 'done' AND e.at < %s) AND o.created_at + make_interval(secs => "
        "(%s::jsonb ->> o.priority::text)::float * 3600) < %s",
        (prefecture, until, until, json.dumps({str(k): v for k, v in sla_hours.items()}),
         until))
    return OrderDay(*(int(str(r[0][0])) for r in (opened, closed, overdue)))
