"""Warm latency of Assistant.ask on the bundled sample KB (what `kb ask` spends after start-up).

    .venv/bin/python -m eval.bench_latency [--n 20]

Prints the median and p95 of N warm questions and the per-stage medians. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

QUESTIONS = [
    "公司几点上班？",
    "How many days of sick leave do I get?",
    "出差住酒店每晚能报销多少？",
    "What is the gym subsidy?",
    "工资几号发？",
]


def main() -> None:
    from ingest.pipeline import ensure_sample_kbs
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp()) / "data")
    t = time.perf_counter()
    ensure_sample_kbs(settings, say=lambda m: None)
    print(f"sample KB ingest: {time.perf_counter() - t:.1f}s")
    assistant = Assistant(settings)
    assistant.ask("warm-up")
    totals, stages = [], {}
    for i in range(args.n):
        t = time.perf_counter()
        answer = assistant.ask(QUESTIONS[i % len(QUESTIONS)])
        totals.append((time.perf_counter() - t) * 1000)
        for stage, ms in answer.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    totals.sort()
    p95 = totals[int(0.95 * (len(totals) - 1))]
    print(f"ask, warm, n={args.n}: median {statistics.median(totals):.1f} ms, p95 {p95:.1f} ms")
    print("per stage (median ms): " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in stages.items()))


if __name__ == "__main__":
    main()
