"""Cache hit vs full path on the bundled sample KB: exact hits and semantic (paraphrase) hits measured apart.

    python -m eval.bench_cache [--n 20]

Full path: the question answered with the cache switched off. Exact hit: the same question again. Semantic hit:
a paraphrase of a cached question, which costs one query embedding (on a miss that embedding is handed on to
retrieval, so the full path does not pay it twice). Medians of N warm runs, one process. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

PAIRS = [  # (cached question, paraphrase that the cache serves)
    ("How many days of paid sick leave do I get per year?", "How many days of paid sick leave can I get per year?"),
    ("How many days of annual leave do I get?", "How many annual leave days do I get?"),
    ("公司几点上班？", "公司上班是几点？"),
]


def main() -> None:
    from ingest.pipeline import ensure_sample_kbs
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp()) / "data")
    ensure_sample_kbs(settings, say=lambda m: None)
    assistant = Assistant(settings)
    assistant.ask("warm-up")

    def timed(question: str) -> tuple[float, bool]:
        t = time.perf_counter()
        answer = assistant.ask(question)
        return (time.perf_counter() - t) * 1000, answer.cached

    full, exact, semantic = [], [], []
    for i in range(args.n):
        cached_q, paraphrase = PAIRS[i % len(PAIRS)]
        settings.cache_enabled = False
        full.append(timed(cached_q)[0])
        settings.cache_enabled = True
        assistant.cache.clear()
        timed(cached_q)  # stores it
        ms, hit = timed(cached_q)
        assert hit, f"exact repeat was not served from the cache: {cached_q}"
        exact.append(ms)
        ms, hit = timed(paraphrase)
        if hit:
            semantic.append(ms)
    f, e = statistics.median(full), statistics.median(exact)
    print(f"full path (cache off), median of {len(full)}: {f:.1f} ms")
    print(f"exact hit, median of {len(exact)}: {e:.2f} ms  -> {f / e:.0f}x faster")
    if semantic:
        s = statistics.median(semantic)
        print(f"semantic hit, median of {len(semantic)}: {s:.1f} ms  -> {f / s:.1f}x faster")
    print(f"paraphrases served: {len(semantic)}/{args.n}")


if __name__ == "__main__":
    main()
