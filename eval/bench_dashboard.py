"""Benchmark: how long the admin dashboard takes to render from a large answer log (not a test).

    python -m eval.bench_dashboard --rows 100000 --days 90 --data-dir /tmp/bench-dash

Fills a fresh queue database (SQLite in the data dir, or --database-url) with ``--rows`` synthetic answer-log rows
spread over ``--days`` days (2 KBs, 1,000 distinct questions, 20% escalated, 10% cache hits, half with LLM
tokens, 5% rated, citations over 200 documents, 3 passages of 300 characters each as real rows carry), then
times what one dashboard refresh does on the server: the SELECT (``load_answers``), the figures
(``build_dashboard``), and Gradio's postprocessing of the six plots and six tables the page receives.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def fill(queue, rows: int, days: int, seed: int = 7) -> None:
    from sqlalchemy import insert

    from kb_assistant.queue.models import AnswerLog

    rnd = random.Random(seed)
    now = datetime.now(UTC)
    questions = [f"How does policy number {i} apply to part-time staff?" for i in range(1000)]
    docs = [f"handbook-{i:03d}.md" for i in range(200)]
    passage = {"n": 1, "source": "handbook-001.md", "section": "Leave", "score": 0.5, "text": "x" * 300}
    batch = []
    with queue._session() as s, s.begin():
        for i in range(rows):
            escalated = rnd.random() < 0.2
            cached = not escalated and rnd.random() < 0.125
            llm = not cached and rnd.random() < 0.5
            rated = rnd.random() < 0.05
            q = questions[min(int(rnd.paretovariate(1.2)) - 1, 999)]
            batch.append({
                "id": f"bench{i:08d}", "kb": "default" if i % 4 else "sales", "question": q, "standalone_question": q,
                "language": "en", "text": "answer text", "answered": not escalated, "confidence": 0.8,
                "reason": rnd.choice(["low_confidence", "not_in_context", "no_citation", "handoff"]) if escalated
                else None, "passages": [passage] * 3, "conversation": [], "embedding": None, "ticket_id": None,
                "rating": rnd.choice(["up", "down"]) if rated else None,
                "feedback_comment": "the answer was outdated" if rated and rnd.random() < 0.3 else None,
                "created_at": now - timedelta(seconds=rnd.uniform(0, days * 86400)), "cached": cached,
                "answer_ms": rnd.lognormvariate(4.0 if cached else 6.5, 0.5),
                "prompt_tokens": rnd.randint(800, 2500) if llm else 0, "completion_tokens": rnd.randint(50, 300) if llm
                else 0, "cited": [] if escalated else rnd.sample(docs[:150], 2),
            })  # fmt: skip
            if len(batch) == 5000:
                s.execute(insert(AnswerLog), batch)
                batch = []
        if batch:
            s.execute(insert(AnswerLog), batch)


def render_once(queue, settings, kb, days, documents) -> dict[str, float]:
    import gradio as gr

    from ui.dashboard import build_dashboard, load_answers, period

    t0 = time.perf_counter()
    since, until = period(days)
    df = load_answers(queue, kb, since, until)
    t1 = time.perf_counter()
    d = build_dashboard(df, settings, kb=kb, since=since, until=until, documents=documents)
    t2 = time.perf_counter()
    axis = {"x": "day", "x_label_angle": -45}
    plots = [
        (gr.LinePlot(y="questions", **axis), d.per_day), (gr.BarPlot(y="count", color="outcome", **axis), d.outcomes),
        (gr.BarPlot(y="llm_tokens", **axis), d.per_day), (gr.LinePlot(y="cost", **axis), d.per_day),
        (gr.BarPlot(y="cache_hits", **axis), d.per_day), (gr.BarPlot(x="reason", y="count"), d.reasons),
    ]  # fmt: skip
    for comp, frame in plots:
        comp.postprocess(frame)
    for frame in (d.top_questions, d.top_gaps, d.most_cited, d.never_cited, d.comments):
        gr.Dataframe().postprocess(frame)
    t3 = time.perf_counter()
    return {"rows": len(df), "select_s": t1 - t0, "figures_s": t2 - t1, "gradio_s": t3 - t2, "total_s": t3 - t0}


def main() -> None:
    from kb_assistant.queue.store import TicketQueue
    from kb_assistant.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=90, help="the log spans this many days")
    ap.add_argument("--data-dir", type=Path, required=True, help="a fresh folder (the queue database goes there)")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    settings = Settings(data_dir=args.data_dir, **({"database_url": args.database_url} if args.database_url else {}))
    queue = TicketQueue(settings)
    from ui.dashboard import load_answers, period

    have = len(load_answers(queue, None, *period(args.days + 1)))
    if have == 0:
        t = time.perf_counter()
        fill(queue, args.rows, args.days)
        print(f"filled {args.rows} answer-log rows over {args.days} days in {time.perf_counter() - t:.1f}s")
    else:
        print(f"reusing the {have} answer-log rows already in {settings.data_dir}")
    documents = [f"handbook-{i:03d}.md" for i in range(200)]
    for kb, days in ((None, args.days), ("default", args.days), (None, 30), (None, 7)):
        runs = [render_once(queue, settings, kb, days, documents) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"kb={kb or '(all)':8} last {days:3d} days: {int(med['rows']):6d} rows  select {med['select_s']:.2f}s  "
              f"figures {med['figures_s']:.2f}s  gradio {med['gradio_s']:.2f}s  total {med['total_s']:.2f}s "
              f"(median of {args.repeat})")  # fmt: skip


if __name__ == "__main__":
    main()
