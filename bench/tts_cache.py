"""Benchmark: TTS cache hit vs synthesis (espeak-ng + sox), side by side in one run.

    .venv/bin/python -m bench.tts_cache [--texts 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pbxctl.services.tts import TtsCache, TtsRequest

TEXTS = ["您的账期为二零二六年十一月", "应缴电费一百二十三元四角五分", "缴费截止日期为十二月五日",
         "您所在区域当前有停电", "感谢您的来电，再见"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--texts", type=int, default=20)
    args = ap.parse_args()
    texts = [f"{TEXTS[i % len(TEXTS)]}{i}" for i in range(args.texts)]
    with tempfile.TemporaryDirectory() as tmp:
        cache = TtsCache(root=Path(tmp))
        synth, hits = [], []
        for text in texts:
            req = TtsRequest(text, fmt="alaw")
            t0 = time.perf_counter()
            cache.get(req)
            synth.append(time.perf_counter() - t0)
        for text in texts:
            req = TtsRequest(text, fmt="alaw")
            t0 = time.perf_counter()
            cache.get(req)
            hits.append(time.perf_counter() - t0)
    s, h = statistics.median(synth) * 1000, statistics.median(hits) * 1000
    print(f"{args.texts} texts, alaw 8 kHz: synthesis median {s:.1f} ms, cache hit median "
          f"{h:.3f} ms, ratio {s / h:.0f}x (stats {cache.stats})")


if __name__ == "__main__":
    main()
