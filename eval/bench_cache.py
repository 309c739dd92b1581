"""Cache hits vs the full path on the bundled sample KB, extractive and with an LLM: speed, hit rate, wrong hits.

    python -m eval.bench_cache [--n 12] [--llm-delay-ms 1000] [--no-extractive]

Full path: the question answered with the cache switched off. Exact hit: the same question again (no retrieval).
Reworded hit: the same content words in other function words ("can I get" / "do I get", 上班是几点 / 几点上班),
found by the wording key. Similar hit: a paraphrase found by embedding similarity. Both paraphrase kinds are served
only when the question's own retrieval (retrieve + rerank, tens of ms) tops a passage the cached answer cited; on
a miss that retrieval answers the question. Near misses: a different question after a cached one (a wrong hit
if served). With ``--llm-delay-ms`` the answers come from the fake OpenAI-compatible server (eval/fake_llm.py) on
127.0.0.1 answering after that fixed latency, the case the cache is for. Medians of N warm runs, one process; the
time saved is the sum over the hits of (median full path − the hit). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

CASES = [  # (cached question, reworded, similar: a paraphrase only the embedding finds, or None[, KB])
    (
        "How many days of paid sick leave do I get per year?",
        "How many days of paid sick leave can I get per year?",
        "What is the number of paid sick leave days per year?",
    ),
    ("How many days of annual leave do I get?", "How many annual leave days do I get?", None),
    ("公司几点上班？", "公司上班是几点？", None),  # Chinese has no embedding layer by default
    # an answer drawn from one FAQ entry: served at cache_threshold_faq_en when the paraphrase tops that entry
    ("How long is the free trial?", None, "What is the length of the free trial?", "sales"),
]
NEAR_MISSES = [  # (cached question, a different question asked next)
    ("How many days of paid sick leave do I get per year?", "How many days of unpaid leave can I take per year?"),
    ("Can I carry over unused annual leave?", "Can I cash out unused annual leave?"),
    ("How many days of annual leave do I get?", "How many days of annual leave do new joiners get?"),
    ("公司几点上班？", "公司几点下班？"),
]


def bench(n: int, llm_delay_ms: float | None, say=print) -> dict:
    from eval.fake_llm import FakeLLM
    from ingest.pipeline import ensure_sample_kbs
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings

    server = FakeLLM(delay_ms=llm_delay_ms).start() if llm_delay_ms is not None else None
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-cache-")) / "data")
    if server is not None:
        settings = settings.model_copy(update={"llm_base_url": server.base_url, "llm_api_key": "fake"})
    ensure_sample_kbs(settings, say=lambda m: None)
    assistant = Assistant(settings)
    assistant.ask("warm-up")

    def timed(question: str, kb: str = "default"):
        # The model remembers recent query vectors; a fresh question each time is what users send, so forget them
        # (within one ask the cache, retrieval and rerank still share one vector).
        getattr(assistant.embeddings, "_memo", {}).clear()
        t = time.perf_counter()
        answer = assistant.ask(question, kb=kb)
        return (time.perf_counter() - t) * 1000, answer

    full, times, asked = [], {"exact": [], "reworded": [], "similar": []}, {"reworded": 0, "similar": 0}
    for i in range(n):
        cached_q, reworded, similar, kb = (*CASES[i % len(CASES)], "default")[:4]
        settings.cache_enabled = False
        full.append(timed(cached_q, kb)[0])
        settings.cache_enabled = True
        assistant.cache.clear()
        timed(cached_q, kb)  # stores it
        ms, answer = timed(cached_q, kb)
        assert answer.cached, f"exact repeat was not served from the cache: {cached_q}"
        times["exact"].append(ms)
        for kind, question in (("reworded", reworded), ("similar", similar)):
            if question is not None:
                asked[kind] += 1
                ms, answer = timed(question, kb)
                if answer.cached:
                    times[kind].append(ms)
    wrong = 0
    for cached_q, other in NEAR_MISSES:
        assistant.cache.clear()
        timed(cached_q)
        wrong += timed(other)[1].cached
    if server is not None:
        server.shutdown()
    f = statistics.median(full)
    mode = f"LLM answering after {llm_delay_ms:.0f} ms (fake server)" if server else "extractive answers"
    say(f"\n{mode}: full path (cache off), median of {len(full)}: {f:.1f} ms end to end")
    result = {"mode": mode, "full_ms": f, "kinds": {}}
    hits = sum(len(v) for v in times.values())
    for kind, ms in times.items():
        served = f"{len(ms)}/{asked[kind]} served" if kind in asked else f"{len(ms)}/{len(ms)} served"
        if ms:
            m = statistics.median(ms)
            say(f"  {kind} hit ({served}): {m:.1f} ms -> {f / m:.1f}x faster")
            result["kinds"][kind] = {"median_ms": m, "speedup": f / m, "served": len(ms)}
        else:
            say(f"  {kind} hit: none of {asked.get(kind, 0)} served")
    saved = sum(max(0.0, f - ms) for v in times.values() for ms in v) / 1000
    tried = n + sum(asked.values())
    say(f"  hit rate {hits}/{tried} of repeats and paraphrases; wrong hits {wrong} of {len(NEAR_MISSES)} near "
        f"misses asked after their cached question; time saved {saved:.1f} s over {hits} hits")  # fmt: skip
    result.update(hits=hits, tried=tried, wrong=wrong, near_misses=len(NEAR_MISSES), saved_s=saved)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12, help="Runs per case kind (cycling through the cases).")
    parser.add_argument("--llm-delay-ms", type=float, default=1000.0, help="The fake LLM's latency; -1 = no LLM run.")
    parser.add_argument("--no-extractive", action="store_true", help="Only the LLM run.")
    args = parser.parse_args()
    if not args.no_extractive:
        bench(args.n, None)
    if args.llm_delay_ms >= 0:
        bench(args.n, args.llm_delay_ms)


if __name__ == "__main__":
    main()
