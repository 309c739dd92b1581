"""Benchmark: how long the admin dashboard takes to render from a large answer log (not a test).

    python -m eval.bench_dashboard --rows 100000 --days 90 --data-dir /tmp/bench-dash

Fills a fresh queue database (SQLite in the data dir, or --database-url) with ``--rows`` synthetic answer-log rows
spread over ``--days`` days (2 KBs, 1,000 distinct questions, 20% escalated, 10% cache hits, half with LLM
tokens, 5% rated, citations over 200 documents, 3 passages of 300 characters each as real rows carry, and the
question's 384-dimension embedding on escalated rows, as the pipeline keeps it for the gap log), then times what
one dashboard refresh does on the server, before and after in the same run:

- before (``eval.dashboard_before``): every needed column of every row read into pandas, grouped there;
- after (``ui.dashboard``): GROUP BY in the database (``ui.dashboard_sql``), the figures from the small results,
  plus the top gaps grouped by meaning (``queue.gaps``; the "before" grouped only identical wordings);

and Gradio's postprocessing of the six plots and seven tables the page receives. Each line prints the ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def fill(
    queue, rows: int, days: int, seed: int = 7, *, questions: list[str] | None = None, embed=None,
    docs: list[str] | None = None,
) -> None:  # fmt: skip
    """``questions``: the wordings asked (most often the first); ``embed``: a text's stored embedding (default: a
    random unit vector per wording, so each one is a gap of its own); ``docs``: the documents cited."""
    from sqlalchemy import insert

    from kb_assistant.queue.models import AnswerLog

    rnd = random.Random(seed)
    now = datetime.now(UTC)
    questions = questions or [f"How does policy number {i} apply to part-time staff?" for i in range(1000)]
    docs = docs or [f"handbook-{i:03d}.md" for i in range(200)]
    passage = {"n": 1, "source": "handbook-001.md", "section": "Leave", "score": 0.5, "text": "x" * 300}
    vectors = {}  # one stored query embedding per question (random unit vectors: each question its own gap)

    def vector(q: str) -> list[float]:
        if q not in vectors and embed is not None:
            vectors[q] = list(embed(q))
        if q not in vectors:
            v = [rnd.gauss(0, 1) for _ in range(384)]
            norm = sum(x * x for x in v) ** 0.5
            vectors[q] = [round(x / norm, 6) for x in v]
        return vectors[q]

    batch = []
    with queue._session() as s, s.begin():
        for i in range(rows):
            escalated = rnd.random() < 0.2
            cached = not escalated and rnd.random() < 0.125
            llm = not cached and rnd.random() < 0.5
            rated = rnd.random() < 0.05
            q = questions[min(int(rnd.paretovariate(1.2)) - 1, len(questions) - 1)]
            batch.append({
                "id": f"bench{i:08d}", "kb": "default" if i % 4 else "sales", "question": q, "standalone_question": q,
                "language": "en", "text": "answer text", "answered": not escalated, "confidence": 0.8,
                "reason": rnd.choice(["low_confidence", "not_in_context", "no_citation", "handoff"]) if escalated
                else None, "passages": [passage] * 3, "conversation": [], "ticket_id": None,
                "embedding": vector(q) if escalated else None,
                "rating": rnd.choice(["up", "down"]) if rated else None,
                "feedback_comment": "the answer was outdated" if rated and rnd.random() < 0.3 else None,
                "created_at": now - timedelta(seconds=rnd.uniform(0, days * 86400)), "cached": cached,
                "answer_ms": rnd.lognormvariate(4.0 if cached else 6.5, 0.5),
                "prompt_tokens": rnd.randint(800, 2500) if llm else 0, "completion_tokens": rnd.randint(50, 300) if llm
                else 0, "cited": [] if escalated else rnd.sample(docs[: max(2, len(docs) * 3 // 4)], 2),
            })  # fmt: skip
            if len(batch) == 5000:
                s.execute(insert(AnswerLog), batch)
                batch = []
        if batch:
            s.execute(insert(AnswerLog), batch)


def render_once(queue, settings, kb, days, documents, *, before: bool, embeddings=None) -> dict[str, float]:
    """One refresh of the page's server side: read, figures (and gaps), Gradio's postprocessing."""
    from eval import dashboard_before
    from ui.dashboard import build_dashboard, gap_rows, period
    from ui.dashboard_sql import read_figures

    t0 = time.perf_counter()
    since, until = period(days)
    gaps_s = 0.0
    if before:
        df = dashboard_before.load_answers(queue, kb, since, until)
        t1 = time.perf_counter()
        d = dashboard_before.build_dashboard(df, settings, kb=kb, since=since, until=until, documents=documents)
        rows = len(df)
    else:
        from kb_assistant.queue.gaps import gap_clusters

        figures = read_figures(queue, kb, since, until)
        t1 = time.perf_counter()
        g = time.perf_counter()
        gaps = gap_rows(gap_clusters(queue, embeddings, kb=kb, since=since))
        gaps_s = time.perf_counter() - g
        d = build_dashboard(figures, settings, kb=kb, since=since, until=until, documents=documents, gaps=gaps)
        rows = d.totals["questions"]
    t2 = time.perf_counter()
    _postprocess(d)
    t3 = time.perf_counter()
    return {"rows": rows, "read_s": t1 - t0, "figures_s": t2 - t1 - gaps_s, "gaps_s": gaps_s, "gradio_s": t3 - t2,
            "total_s": t3 - t0}  # fmt: skip


def _postprocess(d) -> None:
    import gradio as gr

    axis = {"x": "day", "x_label_angle": -45, "y_lim": [0, None]}
    plots = [
        (gr.LinePlot(y="questions", **axis), d.per_day), (gr.BarPlot(y="count", color="outcome", **axis), d.outcomes),
        (gr.BarPlot(y="llm_tokens", **axis), d.per_day), (gr.LinePlot(y="cost", **axis), d.per_day),
        (gr.BarPlot(y="cache_hits", **axis), d.per_day), (gr.BarPlot(x="reason", y="count"), d.reasons),
    ]  # fmt: skip
    for comp, frame in plots:
        comp.postprocess(frame)
    for frame in (d.top_questions, d.top_gaps, d.most_cited, d.never_cited, d.comments):
        gr.Dataframe().postprocess(frame)


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
    from ui.dashboard import period
    from ui.dashboard_sql import read_figures

    have = sum(int(n) for n in read_figures(queue, None, *period(args.days + 1)).outcomes["n"])
    if have == 0:
        t = time.perf_counter()
        fill(queue, args.rows, args.days)
        print(f"filled {args.rows} answer-log rows over {args.days} days in {time.perf_counter() - t:.1f}s")
    else:
        print(f"reusing the {have} answer-log rows already in {settings.data_dir}")
    documents = [f"handbook-{i:03d}.md" for i in range(200)]
    from kb_assistant.embeddings import make_embeddings

    embeddings = make_embeddings(settings)  # loaded before timing, as the server has it: a 👎 on an answered
    embeddings.embed_query("warm up")  # question has no stored embedding, so the gap log embeds its wording once
    import gradio  # noqa: F401 (imported before timing, as in the server)

    for kb, days in ((None, args.days), ("default", args.days), (None, 30), (None, 7)):
        med = {}
        for before in (True, False):  # interleaved, so both see the same machine load and page cache
            runs = [render_once(queue, settings, kb, days, documents, before=before, embeddings=embeddings)
                    for _ in range(args.repeat)]  # fmt: skip
            med[before] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for before, label in ((True, "before"), (False, "after ")):
            m = med[before]
            print(f"kb={kb or '(all)':8} last {days:3d} days {label}: {int(m['rows']):6d} rows  "
                  f"read {m['read_s']:.2f}s  figures {m['figures_s']:.2f}s  gaps {m['gaps_s']:.2f}s  "
                  f"gradio {m['gradio_s']:.2f}s  total {m['total_s']:.2f}s")  # fmt: skip
        print(f"  after/before total: {med[False]['total_s'] / med[True]['total_s']:.2f} "
              f"(median of {args.repeat} each)")  # fmt: skip


if __name__ == "__main__":
    main()
