"""The survivability watcher under a day of AMI events, fast-forwarded: 10^6 events (one in ten
a ContactStatus it acts on) through the AMI stand-in; RSS before and after, and the rate.

    .venv/bin/python -m bench.ami_soak [--events 1000000]
"""

from __future__ import annotations

import argparse
import time

from tests.integration.test_watcher_soak import soak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    args = ap.parse_args()
    started = time.monotonic()
    before, after, seen = soak(args.events)
    took = time.monotonic() - started
    print(f"{args.events:,} AMI events ({seen:,} ContactStatus acted on) in {took:.1f} s "
          f"({args.events / took:,.0f}/s); watcher RSS {before:.1f} MB → {after:.1f} MB "
          f"({after - before:+.1f} MB)")


if __name__ == "__main__":
    main()
