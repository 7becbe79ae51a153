"""The web console under load: wallboards open by the hundred while calls arrive, and a county
inbox with 10,000 orders.

    .venv/bin/python -m bench.console_load [--clients 1,200] [--rate 20] [--seconds 20]

A private PostgreSQL (the example province's sample data) and `pbxctl console serve` as its own
process (its CPU and RSS read from /proc). No PBX runs: calls "arrive" as call records inserted
at --rate per second, as the collector writes them, and the live queue state is absent (the
board shows it unavailable) — the figures are the console's own cost.

* Wallboard: N clients (httpx, one event stream each, reading the pushed board as the page's
  script does). Update lag = when a client first sees the board count a call − when that
  call's record was committed. Printed side by side per N: lag p50/p95/max, boards received
  per second (all clients), console CPU (% of one core) and RSS.
* Inbox: /inbox of a county seat whose county has 10,000 orders (the page lists the newest
  200), 200 sequential requests: p50/p95 render time (request → full body).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from pbxctl.console.passwords import hash_password
from pbxctl.core.net import free_port, tcp_accepts
from pbxctl.core.procs import wait_until
from pbxctl.data.console_auth import set_password
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store, StoreConfig
from pbxctl.lab.sandbox.postgres import PostgresCluster
from provisioning.inventory import load_inventory
from provisioning.sample import seed_input

EXAMPLE = Path(__file__).parents[1] / "examples" / "zhejiang" / "province.yaml"
PASSWORD = "bench-console-pw"
OFFERED = re.compile(r'id="kpi-HZ" data-offered="(\d+)"')


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _sign_in(url: str, seat: str) -> httpx.Cookies:
    with httpx.Client(base_url=url, timeout=10) as c:
        page = c.get("/login").text
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        r = c.post("/login", data={"login": seat, "password": PASSWORD, "csrf": csrf})
        assert r.status_code == 303, r.text[:200]
        return c.cookies


async def _wallboards(url: str, cookies: httpx.Cookies, clients: int, dsn: str, rate: float,
                      seconds: float) -> dict[str, float]:
    committed: dict[int, float] = {}
    seen: dict[tuple[int, int], float] = {}
    fetches = [0]
    stop = asyncio.Event()
    with psycopg.connect(dsn, autocommit=True) as conn:
        base = int(str(conn.execute("SELECT count(*) FROM call_records WHERE queue <> '' "
                                    "AND prefecture = 'HZ' AND started_at >= "
                                    "date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai') "
                                    "AT TIME ZONE 'Asia/Shanghai'").fetchone()[0]))  # type: ignore[index]

    async def client(i: int, http: httpx.AsyncClient) -> None:
        async with http.stream("GET", "/wallboard/events") as events:
            board = False
            async for line in events.aiter_lines():
                if stop.is_set():
                    return
                if line == "event: board":
                    board = True
                    continue
                if not board or not line.startswith("data: "):
                    continue
                board = False
                body = json.loads(line[6:])["html"]
                fetches[0] += 1
                m = OFFERED.search(body)
                if m:
                    now = time.monotonic()
                    for n in range(base + 1, int(m.group(1)) + 1):
                        seen.setdefault((i, n), now)

    async def calls() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            n, t0 = base, time.monotonic()
            while time.monotonic() - t0 < seconds:
                n += 1
                uid = f"bench-{time.time_ns()}"
                conn.execute("INSERT INTO call_records (site, uniqueid, linkedid, prefecture, "
                             "queue, started_at, answered_at, ended_at) VALUES ('zj-pbx', %s, "
                             "%s, 'HZ', 'acd-HZ', now(), now() + interval '3 s', now() + "
                             "interval '90 s')", (uid, uid))
                committed[n] = time.monotonic()
                await asyncio.sleep(max(0.0, t0 + (n - base) / rate - time.monotonic()))
        await asyncio.sleep(3.0)  # let the last refreshes land
        stop.set()

    limits = httpx.Limits(max_connections=clients * 2 + 10)
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30,
                                 limits=limits) as http:
        tasks = [asyncio.create_task(client(i, http)) for i in range(clients)]
        await calls()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    lags = sorted(seen[(i, n)] - committed[n] for (i, n) in seen if n in committed)
    missed = clients * len(committed) - len(lags)
    return {"p50": statistics.median(lags) if lags else float("nan"),
            "p95": lags[int(len(lags) * 0.95) - 1] if lags else float("nan"),
            "max": lags[-1] if lags else float("nan"), "missed": float(missed),
            "fetches": fetches[0] / seconds}


def _inbox(url: str, cookies: httpx.Cookies, requests: int) -> tuple[float, float]:
    times = []
    with httpx.Client(base_url=url, cookies=cookies, timeout=30) as c:
        c.get("/inbox")  # warm
        for _ in range(requests):
            t0 = time.perf_counter()
            r = c.get("/inbox")
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="1,200")
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--orders", type=int, default=10_000)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pbxbench-console-", dir="/tmp"))
    root.chmod(0o755)
    cluster = PostgresCluster(root=root / "pg")
    cluster.start()
    proc = None
    try:
        assert cluster.endpoint is not None
        dsn = cluster.endpoint.conninfo()
        inv = load_inventory(EXAMPLE)
        with Store(config=StoreConfig(conninfo=dsn)) as store:
            store.migrate()
            seed_sample_data(store, seed_input(inv))
            for seat in ("zj-sup01", "hzxs-t01"):
                set_password(store, login=seat, password_hash=hash_password(PASSWORD),
                             admin=False)
            acct = str(store.execute("SELECT account_no FROM accounts WHERE county = 'HZXS' "
                                     "LIMIT 1")[0][0])
            store.execute(
                "INSERT INTO work_orders (type, account_no, description, prefecture, county, "
                "seat, status, created_by, created_at) SELECT 'repair', %s, '第' || g || "
                "'号工单：线路故障', 'HZ', 'HZXS', 'hzxs-t01', 'dispatched', 'hz-a001', now() - "
                "g * interval '1 min' FROM generate_series(1, %s) g", (acct, args.orders))
        port = free_port("127.0.0.1")
        cfg = root / "pbxctl.yaml"
        cfg.write_text(f'database: {{dsn: "{dsn}"}}\nconsole: {{inventory: {EXAMPLE}, '
                       f"port: {port}, cookie_secure: false}}\n")
        log = (root / "console.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "pbxctl", "console", "serve",
                                 "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: tcp_accepts("127.0.0.1", port), timeout=30, what="the console")
        url = f"http://127.0.0.1:{port}"
        sup = _sign_in(url, "zj-sup01")
        print(f"wallboard, calls arriving at {args.rate:g}/s for {args.seconds:g} s "
              "(lag: call record committed → a client's board counts it)")
        print(f"{'clients':>8} {'lag p50':>9} {'lag p95':>9} {'lag max':>9} {'missed':>7} "
              f"{'boards/s':>9} {'CPU %':>6} {'RSS MiB':>8}")
        for n in (int(x) for x in args.clients.split(",")):
            cpu0, t0 = _cpu_s(proc.pid), time.monotonic()
            r = asyncio.run(_wallboards(url, sup, n, dsn, args.rate, args.seconds))
            cpu = (_cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0) * 100
            print(f"{n:>8} {r['p50'] * 1000:>7.0f}ms {r['p95'] * 1000:>7.0f}ms "
                  f"{r['max'] * 1000:>7.0f}ms {r['missed']:>7.0f} {r['fetches']:>9.0f} "
                  f"{cpu:>6.0f} {_rss_mib(proc.pid):>8.1f}")
        county_seat = _sign_in(url, "hzxs-t01")
        p50, p95 = _inbox(url, county_seat, 200)
        print(f"inbox of a county with {args.orders:,} orders (newest 200 listed), 200 "
              f"requests: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
