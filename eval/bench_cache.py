"""Cache hits vs the full path on the bundled sample KB: exact, reworded and similar hits measured apart.

    python -m eval.bench_cache [--n 20]

Full path: the question answered with the cache switched off. Exact hit: the same question again. Reworded hit:
the same content words in other function words ("can I get" / "do I get", 上班是几点 / 几点上班), found by the
wording key without the embedding model. Similar hit: a paraphrase found by embedding similarity, which costs one
query embedding (on a miss that embedding is handed on to retrieval, so the full path does not pay it twice).
Medians of N warm runs, one process. A measurement, not a test. Two ratios each: end to end (``ask()``, which
on a hit and a miss alike also writes the answer log that feedback needs), and stage against stage (the cache
lookup against the retrieve + rerank + answer stages it replaces, from ``Answer.timings_ms``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

PIPELINE_STAGES = ("retrieve", "rerank", "answer")
CASES = [  # (cached question, reworded, similar: a paraphrase only the embedding finds, or None)
    (
        "How many days of paid sick leave do I get per year?",
        "How many days of paid sick leave can I get per year?",
        "What is the number of paid sick leave days per year?",
    ),
    ("How many days of annual leave do I get?", "How many annual leave days do I get?", None),
    ("公司几点上班？", "公司上班是几点？", None),  # Chinese has no embedding layer by default
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
        # The model remembers recent query vectors; a fresh question each time is what users send, so forget them
        # (within one ask the cache, retrieval and rerank still share one vector).
        getattr(assistant.embeddings, "_memo", {}).clear()
        t = time.perf_counter()
        answer = assistant.ask(question)
        ms = (time.perf_counter() - t) * 1000
        work = answer.timings_ms.get("cache", 0.0) + sum(answer.timings_ms.get(k, 0.0) for k in PIPELINE_STAGES)
        stages.append(work)
        return ms, answer.cached

    stages: list[float] = []
    full, times, asked = [], {"exact": [], "reworded": [], "similar": []}, {"reworded": 0, "similar": 0}
    stage_times = {"full": [], "exact": [], "reworded": [], "similar": []}
    for i in range(args.n):
        cached_q, reworded, similar = CASES[i % len(CASES)]
        settings.cache_enabled = False
        full.append(timed(cached_q)[0])
        stage_times["full"].append(stages[-1])
        settings.cache_enabled = True
        assistant.cache.clear()
        timed(cached_q)  # stores it
        ms, hit = timed(cached_q)
        assert hit, f"exact repeat was not served from the cache: {cached_q}"
        times["exact"].append(ms)
        stage_times["exact"].append(stages[-1])
        for kind, question in (("reworded", reworded), ("similar", similar)):
            if question is None:
                continue
            asked[kind] += 1
            ms, hit = timed(question)
            if hit:
                times[kind].append(ms)
                stage_times[kind].append(stages[-1])
    f, fs = statistics.median(full), statistics.median(stage_times["full"])
    print(f"full path (cache off), median of {len(full)}: {f:.1f} ms end to end; retrieve+rerank+answer {fs:.1f} ms")
    for kind, ms in times.items():
        if ms:
            m, ms_stage = statistics.median(ms), statistics.median(stage_times[kind])
            served = f"{len(ms)}/{asked[kind]} served" if kind in asked else f"{len(ms)} runs"
            print(
                f"{kind} hit ({served}): {m:.2f} ms end to end -> {f / m:.1f}x faster; "
                f"cache lookup {ms_stage:.2f} ms -> {fs / ms_stage:.1f}x faster than the stages it replaces"
            )
        else:
            print(f"{kind} hit: none of {asked.get(kind, 0)} served")


if __name__ == "__main__":
    main()
