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
