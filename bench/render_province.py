"""Benchmark: validate + render a synthetic province of 500 and 5,000 seats, side by side.

    .venv/bin/python -m bench.render_province [--repeat 5]

Both sizes have 11 prefectures and 90 counties; only the seat count differs. Prints the
median time of each phase and the ratio time(5,000)/time(500) (10x the seats: close to 10
means linear). Target from the issue: under 2 s for 5,000 seats on this box.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from provisioning.inventory import load_inventory
from provisioning.render_asterisk import render_all
from provisioning.secrets import ensure_secrets

PREFECTURES = 11
COUNTIES = 90


def province_yaml(seats: int) -> str:
    supervisors = max(5, seats // 500)
    terminals_per_county = max(1, seats // 1000)
    agents = seats - supervisors - COUNTIES * terminals_per_county
    lines = ["version: 1", "province:", "  code: ZJ", "  name: 基准省",
             "  networks: {a: 127.1.1.0/24, b: 127.1.2.0/24}",
             "  pbx: {name: zj-pbx, a: 127.1.1.10, b: 127.1.2.10}",
             "  cti: {name: zj-cti, a: 127.1.1.20, b: 127.1.2.20, port: 4573}",
             "  db: {dsn_secret: province_db}", "  supervisors:"]
    lines += [f'    - {{id: sup{i:03d}, name: 值班长{i}, extension: "8{i:04d}"}}'
              for i in range(supervisors)]
    lines.append("prefectures:")
    ext = 10000
    for p in range(PREFECTURES):
        n = 10 + p
        code = f"P{p:02d}"
        lines += [f"  - code: {code}", f"    name: 地市{p}", f'    area_codes: ["05{p + 60:02d}"]',
                  f'    dids: ["05{p + 60:02d}95598"]',
                  f"    networks: {{a: 127.{n}.1.0/24, b: 127.{n}.2.0/24}}",
                  f"    pstn_gateway: {{a: 127.{n}.1.5, b: 127.{n}.2.5}}",
                  f"    gateway: {{name: {code.lower()}-gw, a: 127.{n}.1.10, b: 127.{n}.2.10}}",
                  f"    lss: {{name: {code.lower()}-lss, a: 127.{n}.1.11, b: 127.{n}.2.11}}",
                  "    agents:"]
        share = agents // PREFECTURES + (1 if p < agents % PREFECTURES else 0)
        for a in range(share):
            lines.append(f'      - {{id: {code.lower()}-a{a:04d}, name: 坐席{a}, '
                         f'extension: "{ext}"}}')
            ext += 1
    lines.append("counties:")
    ext = 60000
    for c in range(COUNTIES):
        lines += [f"  - code: C{c:03d}", f"    name: 区县{c}",
                  f"    prefecture: P{c % PREFECTURES:02d}", "    seats:"]
        for t in range(terminals_per_county):
            lines.append(f'      - {{id: c{c:03d}-t{t:02d}, name: 终端{t}, extension: "{ext}"}}')
            ext += 1
    return "\n".join(lines) + "\n"


def measure(seats: int, repeat: int, tmp: Path) -> dict[str, float]:
    path = tmp / f"p{seats}.yaml"
    path.write_text(province_yaml(seats), encoding="utf-8")
    inv = load_inventory(path)
    assert len(inv.all_seats()) == seats, (len(inv.all_seats()), seats)
    t0 = time.perf_counter()
    secrets = ensure_secrets(inv, tmp / f"p{seats}.secrets.yaml")
    first_secrets = time.perf_counter() - t0
    loads, renders = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        inv = load_inventory(path)
        t1 = time.perf_counter()
        out = render_all(inv, secrets)
        t2 = time.perf_counter()
        loads.append(t1 - t0)
        renders.append(t2 - t1)
    size = sum(len(f.text) for files in out.values() for f in files.values())
    return {"load": statistics.median(loads), "render": statistics.median(renders),
            "total": statistics.median(a + b for a, b in zip(loads, renders, strict=True)),
            "secrets_once": first_secrets, "bytes": float(size)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = measure(500, args.repeat, Path(tmp))
        large = measure(5000, args.repeat, Path(tmp))
    print(f"{'phase':<14}{'500 seats':>12}{'5,000 seats':>14}{'ratio':>8}")
    for key in ("load", "render", "total"):
        print(f"{key + ' (s)':<14}{small[key]:>12.3f}{large[key]:>14.3f}"
              f"{large[key] / small[key]:>8.2f}")
    print(f"{'output (MB)':<14}{small['bytes'] / 1e6:>12.2f}{large['bytes'] / 1e6:>14.2f}"
          f"{large['bytes'] / small['bytes']:>8.2f}")
    print(f"secrets generated once: {small['secrets_once']:.3f} s / {large['secrets_once']:.3f} s")
    verdict = "meets" if large["total"] < 2.0 else "MISSES"
    print(f"5,000 seats validate+render: {large['total']:.3f} s ({verdict} the 2 s target); "
          f"time ratio {large['total'] / small['total']:.2f} for 10x seats")


if __name__ == "__main__":
    main()
