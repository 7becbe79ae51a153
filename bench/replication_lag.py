"""Replication lag of a prefecture's slice under a steady change load at the province.

    .venv/bin/python -m bench.replication_lag [--rates 10,100,500] [--seconds 10]

Two real PostgreSQL clusters (the province with wal_level=logical, HZ's IVR database), set up
with `pbxctl db replicas publish/subscribe` exactly as in production. At each rate, bills are
inserted at the province at N rows/s (half HZ, half NB: the row filter has to work for its
living) for the given seconds; a watcher on the replica notes when each HZ bill appears.
Lag = appearance at the replica − commit at the province, both read from this machine's
monotonic clock (the watcher polls every 2 ms, so lags below that are not resolved).
Printed side by side per rate: rows, p50, p95, max, and NB rows that leaked (must be 0).
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from pbxctl.cli.app import main as pbxctl
from pbxctl.lab.sandbox.postgres import PostgresCluster

SMALL = Path(__file__).parents[1] / "tests" / "data" / "small" / "province.yaml"


def _cli(dsn: str, *argv: str) -> None:
    err = io.StringIO()
    if pbxctl(list(argv), environ={"PBXCTL_DSN": dsn}, stdout=io.StringIO(), stderr=err):
        raise SystemExit(f"pbxctl {' '.join(argv[:3])} failed: {err.getvalue().strip()}")


def run_rate(prov: str, repl: str, accounts: dict[str, str], rate: int, seconds: float,
             tag: int) -> dict[str, float]:
    hz = [a for a, p in accounts.items() if p == "HZ"]
    nb = [a for a, p in accounts.items() if p == "NB"]
    committed: dict[tuple[str, str], float] = {}
    seen: dict[tuple[str, str], float] = {}
    done = threading.Event()

    done_at = [0.0]

    def watch() -> None:
        with psycopg.connect(repl, autocommit=True) as conn:
            while True:
                for acct, period in conn.execute(
                        "SELECT account_no, period FROM bills WHERE period LIKE %s",
                        (f"{tag:02d}%",)).fetchall():
                    seen.setdefault((acct, period), time.monotonic())
                if done.is_set() and (all(k in seen for k in committed if k[0] in hz)
                                      or time.monotonic() > done_at[0] + 30):
                    return
                time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    n = int(rate * seconds)
    start = time.monotonic()
    with psycopg.connect(prov, autocommit=True) as conn:
        for i in range(n):
            due = start + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            accts = hz if i % 2 == 0 else nb
            c = i // 2
            seq = c // len(accts)  # a period no sample bill has (years 10xx..): "TTss-ss"
            key = (accts[c % len(accts)], f"{tag:02d}{seq // 100 % 100:02d}-{seq % 100:02d}")
            conn.execute("INSERT INTO bills (account_no, period, kwh, amount, due_date) "
                         "VALUES (%s, %s, 1, 1, '2031-01-01') ON CONFLICT DO NOTHING", key)
            committed[key] = time.monotonic()
    done_at[0] = time.monotonic()
    done.set()
    watcher.join(timeout=60)
    lags = [seen[k] - t for k, t in committed.items() if k[0] in hz and k in seen]
    missing = sum(1 for k in committed if k[0] in hz and k not in seen)
    leaked = sum(1 for k in seen if k[0] in nb)
    lags.sort()
    return {"rows": float(len(committed)), "hz": float(len(lags)), "missing": float(missing),
            "p50": statistics.median(lags) * 1000 if lags else float("nan"),
            "p95": lags[int(0.95 * (len(lags) - 1))] * 1000 if lags else float("nan"),
            "max": lags[-1] * 1000 if lags else float("nan"), "leaked": float(leaked),
            "achieved": len(committed) / max(done_at[0] - start, 1e-9)}


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rates", default="10,100,500")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pbxbench-repl-", dir="/tmp"))
    root.chmod(0o755)
    province = PostgresCluster(root=root / "province", logical=True)
    replica = PostgresCluster(root=root / "hz")
    try:
        pe, re_ = province.start(), replica.start()
        prov, repl = pe.conninfo(), re_.conninfo()
        _cli(prov, "db", "migrate", "--sample-data", "--inventory", str(SMALL))
        _cli(repl, "db", "migrate")
        _cli(prov, "db", "replicas", "publish", "--inventory", str(SMALL))
        _cli(repl, "db", "replicas", "subscribe", "--inventory", str(SMALL), "--prefecture",
             "HZ", "--publisher-host", "127.0.0.1", "--publisher-port", str(pe.port))
        with psycopg.connect(prov, autocommit=True) as conn:
            accounts = {str(a): str(p) for a, p in conn.execute(
                "SELECT account_no, prefecture FROM accounts").fetchall()}
        # Wait for the initial copy: the replica has every HZ account.
        deadline = time.monotonic() + 60
        with psycopg.connect(repl, autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM accounts").fetchone() != (
                    sum(1 for p in accounts.values() if p == "HZ"),):
                if time.monotonic() > deadline:
                    raise SystemExit("the initial sync did not finish in 60 s")
                time.sleep(0.05)
        print(f"{'rows/s asked':>12} {'achieved':>9} {'rows':>6} {'HZ seen':>8} "
              f"{'missing':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'NB leaked':>9}")
        for tag, rate in enumerate(int(r) for r in args.rates.split(",")):
            r = run_rate(prov, repl, accounts, rate, args.seconds, 10 + tag)
            print(f"{rate:>12} {r['achieved']:>9.0f} {r['rows']:>6.0f} {r['hz']:>8.0f} "
                  f"{r['missing']:>8.0f} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['max']:>8.1f} "
                  f"{r['leaked']:>9.0f}")
    finally:
        replica.stop()
        province.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
