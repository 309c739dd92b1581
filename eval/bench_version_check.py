"""Benchmark: what a replica's check for a newer KB version costs (not a test).

    python -m eval.bench_version_check --data-dir /tmp/bench-version [--database-url postgresql+psycopg://…]
                                       [--questions 20]

Before, a process noticed a newer version by one stat of ``state.json``; now it reads the KB's stamp from the
published state (``PublishedStore.stamp``, by primary key): once per question, at most every
``KB_VERSION_CHECK_S`` between, and whenever ``KnowledgeBase.version`` is read. Times, in the
same run: the stat (the baseline), the read on the data dir's SQLite, and the read on ``--database-url`` when given
(Postgres: one round trip). With ``--questions N`` it also asks the bundled sample KB N questions (ingested into
the data dir on first use, real model), the cache off and then on (4 questions in turn: hits after the first round),
and counts the checks a question makes and the share of its time they take.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

QUESTIONS = ["How many days of annual leave do I get?", "What is the wifi password for guests?",
             "Who approves travel expenses?", "How do I reset my password?"]  # fmt: skip


def per_call_us(fn, n: int) -> float:
    """Median of 5 rounds of ``n`` calls, in microseconds per call."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(rounds)


def through_sqlalchemy(store, kb: str):
    """The same read through a SQLAlchemy connection (what ``stamp`` avoids)."""
    from sqlalchemy import select

    from kb_assistant.store.published import PublishedKB

    with store.engine.connect() as conn:
        return conn.execute(select(PublishedKB.stamp).where(PublishedKB.kb == kb)).scalar()


def store_with_a_version(settings, kb: str):
    from kb_assistant.store.published import PublishedStore

    store = PublishedStore(settings)
    if store.head(kb) is None:
        store.write(kb, 1, {"c1": ["visitors", "park"]}, "bench", {"version": 1, "published_at": time.time()})
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--database-url", default=None, help="also time the read on this database (Postgres)")
    parser.add_argument("-n", type=int, default=2000, help="calls per round")
    parser.add_argument("--questions", type=int, default=0, help="also ask the sample KB this many questions")
    args = parser.parse_args()
    from kb_assistant.settings import Settings

    settings = Settings(data_dir=args.data_dir)
    marker = settings.path("bench-state.json")
    marker.write_text("{}")
    stat_us = per_call_us(lambda: os.stat(marker), args.n)
    sqlite_store = store_with_a_version(settings, "bench")
    sqlite_us = per_call_us(lambda: sqlite_store.stamp("bench"), args.n)
    via_sa = per_call_us(lambda: through_sqlalchemy(sqlite_store, "bench"), args.n)
    print(f"stat of state.json (before, baseline): {stat_us:8.1f} µs per check")
    print(f"stamp on SQLite:                       {sqlite_us:8.1f} µs per check  ({sqlite_us / stat_us:.0f}x stat; "
          f"through SQLAlchemy {via_sa:.1f} µs)")  # fmt: skip
    if args.database_url:
        remote = store_with_a_version(Settings(data_dir=args.data_dir, database_url=args.database_url), "bench")
        n = max(args.n // 4, 100)
        remote_us = per_call_us(lambda: remote.stamp("bench"), n)
        remote_sa = per_call_us(lambda: through_sqlalchemy(remote, "bench"), n)
        print(f"stamp on {remote.engine.dialect.name}:                   {remote_us:8.1f} µs per check  "
              f"({remote_us / stat_us:.0f}x stat; through SQLAlchemy {remote_sa:.1f} µs)")  # fmt: skip
    if args.questions:
        for cache in ("off", "on"):
            per_question(settings, args.questions, cache)


def per_question(settings, n: int, cache: str) -> None:
    """Version checks per question, and their share of the question's time."""
    from ingest.pipeline import ensure_sample_kbs
    from kb_assistant.assistant import Assistant
    from kb_assistant.store.published import PublishedStore

    ensure_sample_kbs(settings, say=print)
    assistant = Assistant(settings.model_copy(update={"cache_enabled": cache == "on"}))
    assistant.ask("warm-up question about leave", kb="default")
    reads, spent = [0], [0.0]
    real_stamp = PublishedStore.stamp

    def counted(self, kb):
        started = time.perf_counter()
        try:
            return real_stamp(self, kb)
        finally:
            reads[0] += 1
            spent[0] += time.perf_counter() - started

    PublishedStore.stamp = counted
    try:
        started = time.perf_counter()
        for i in range(n):
            assistant.ask(QUESTIONS[i % len(QUESTIONS)], kb="default")
        total = time.perf_counter() - started
    finally:
        PublishedStore.stamp = real_stamp
    print(f"{n} questions (extractive, cache {cache}): {reads[0] / n:.1f} version checks per question, "
          f"{spent[0] / n * 1e3:.2f} ms of {total / n * 1e3:.1f} ms per question ({spent[0] / total:.2%})")  # fmt: skip


if __name__ == "__main__":
    main()
