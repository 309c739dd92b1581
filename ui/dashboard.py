"""The admin dashboard's figures, from the answer log (one row per question asked; ``queue.models.AnswerLog``).

The database does the counting (``ui.dashboard_sql``: GROUP BY per day and outcome, per wording, per cited list;
only the columns each needs), pandas shapes the small results: questions per day, answered vs escalated by reason,
cache hits and what they saved, 👍/👎 and their comments, median / p95 answer time, LLM tokens and estimated cost
per day (prices: ``KB_LLM_PRICE_PROMPT_PER_1M`` / ``KB_LLM_PRICE_COMPLETION_PER_1M``), top questions, the top
unanswered gaps grouped by meaning (the gap log of ``kb gaps`` and the console's Gaps tab), documents most cited
and never cited. ``write_csv`` exports all of it. The Gradio page (``ui.admin_app``) plots these frames with
Gradio's own plot components.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from kb_assistant.settings import Settings
from ui.dashboard_sql import AnswerLogFigures, read_figures


@dataclass
class Dashboard:
    kb: str | None
    since: datetime
    until: datetime
    totals: dict = field(default_factory=dict)
    per_day: pd.DataFrame = field(default_factory=pd.DataFrame)  # day, questions, answered, escalated, cache_hits…
    outcomes: pd.DataFrame = field(default_factory=pd.DataFrame)  # day, outcome, count (long form, for a bar plot)
    reasons: pd.DataFrame = field(default_factory=pd.DataFrame)  # reason, count
    comments: pd.DataFrame = field(default_factory=pd.DataFrame)  # asked, rating, question, comment
    top_questions: pd.DataFrame = field(default_factory=pd.DataFrame)  # question, asked, answered
    top_gaps: pd.DataFrame = field(default_factory=pd.DataFrame)  # kb, question, asked, wordings, reasons, tickets
    most_cited: pd.DataFrame = field(default_factory=pd.DataFrame)  # document, citations
    never_cited: pd.DataFrame = field(default_factory=pd.DataFrame)  # document


def period(days: float, now: datetime | None = None) -> tuple[datetime, datetime]:
    until = (now or datetime.now(UTC)) + timedelta(seconds=1)
    return until - timedelta(days=float(days or 30)), until


def gap_rows(clusters, top: int = 10) -> pd.DataFrame:
    """The gap log's clusters (``queue.gaps.gap_clusters``: unanswered questions grouped by meaning) as a table."""
    return pd.DataFrame(
        [{"kb": c.kb, "question": c.question, "asked": c.count, "wordings": " | ".join(c.examples[1:]),
          "reasons": ", ".join(f"{k} {v}" for k, v in sorted(c.reasons.items(), key=lambda kv: -kv[1])),
          "tickets": " ".join(c.tickets)} for c in clusters[:top]],
        columns=["kb", "question", "asked", "wordings", "reasons", "tickets"],
    )  # fmt: skip


def build_dashboard(
    figures: AnswerLogFigures, settings: Settings, *, kb: str | None, since: datetime, until: datetime,
    documents: list[str] | None = None, gaps: pd.DataFrame | None = None, top: int = 10,
) -> Dashboard:  # fmt: skip
    """The figures of a period from the answer log's aggregates; ``documents``: the KB's live documents (for
    never cited); ``gaps``: ``gap_rows`` of the period."""
    from kb_assistant.queue.store import normalize_question

    d = Dashboard(kb, since, until)
    days = pd.date_range(since.date(), (until - timedelta(microseconds=1)).date(), freq="D", tz="UTC")
    day_index = days.strftime("%Y-%m-%d")
    o = figures.outcomes.copy()
    o["day"] = o["day"].astype(str).str[:10]
    o["answered"] = o["answered"].fillna(0).astype(int).astype(bool)
    o["cached"] = o["cached"].fillna(0).astype(int).astype(bool)
    for c in ("n", "prompt_tokens", "completion_tokens", "answer_ms", "llm_answers"):
        o[c] = pd.to_numeric(o[c]).fillna(0)
    price_p, price_c = settings.llm_price_prompt_per_1m / 1e6, settings.llm_price_completion_per_1m / 1e6
    o["cost"] = (o["prompt_tokens"] * price_p + o["completion_tokens"] * price_c).where(~o["cached"], 0.0)
    o["escalated"] = o["n"].where(~o["answered"], 0)
    o["answered_n"] = o["n"].where(o["answered"], 0)
    o["cache_hits"] = o["n"].where(o["cached"], 0)
    o["thumbs_up"] = o["n"].where(o["rating"] == "up", 0)
    o["thumbs_down"] = o["n"].where(o["rating"] == "down", 0)

    sums = ["n", "answered_n", "escalated", "cache_hits", "thumbs_up", "thumbs_down", "prompt_tokens",
            "completion_tokens", "cost"]  # fmt: skip
    per_day = o.groupby("day")[sums].sum().reindex(day_index, fill_value=0)
    per_day = per_day.rename(columns={"n": "questions", "answered_n": "answered"}).rename_axis("day").reset_index()
    counts = ["questions", "answered", "escalated", "cache_hits", "thumbs_up", "thumbs_down"]
    per_day[counts] = per_day[counts].astype(int)
    per_day["llm_tokens"] = (per_day["prompt_tokens"] + per_day["completion_tokens"]).astype(int)
    per_day["cost"] = per_day["cost"].round(6)
    d.per_day = per_day

    outcome = ("escalated: " + o["reason"].fillna("low_confidence").astype(str)).where(~o["answered"], "answered")
    d.outcomes = (
        o.assign(outcome=outcome).groupby(["day", "outcome"])["n"].sum().astype(int).rename("count").reset_index()
        if len(o) else pd.DataFrame({"day": list(day_index[:1]), "outcome": ["answered"], "count": [0]})
    )  # fmt: skip
    esc = o[~o["answered"]].assign(reason=lambda x: x["reason"].fillna("low_confidence"))
    d.reasons = (
        esc.groupby("reason")["n"].sum().astype(int).rename("count").sort_values(ascending=False).reset_index()
        if len(esc) else pd.DataFrame({"reason": [], "count": []})
    )  # fmt: skip

    t = figures.times
    ms = pd.to_numeric(t["answer_ms"]).astype(float) if len(t) else pd.Series(dtype=float)
    fresh_ms = ms[~t["cached"].astype(int).astype(bool)] if len(t) else ms
    hits = o[o["cached"]]
    n_hits = int(hits["n"].sum())
    llm = o[~o["cached"]]
    n_llm = float(llm["llm_answers"].sum())
    tokens_per_llm_answer = float((llm["prompt_tokens"] + llm["completion_tokens"]).sum()) / n_llm if n_llm else 0.0
    median_fresh = float(fresh_ms.median()) if len(fresh_ms) else 0.0
    total = int(o["n"].sum())
    d.totals = {
        "questions": total,
        "answered": int(o["answered_n"].sum()),
        "escalated": int(o["escalated"].sum()),
        "answered_share": round(float(o["answered_n"].sum()) / total, 3) if total else 0.0,
        "cache_hits": n_hits,
        "cache_saved_s": round(max(0.0, median_fresh * n_hits - float(hits["answer_ms"].sum())) / 1000, 1),
        "cache_saved_tokens_est": int(tokens_per_llm_answer * n_hits),
        "thumbs_up": int(o["thumbs_up"].sum()),
        "thumbs_down": int(o["thumbs_down"].sum()),
        "median_ms": round(float(ms.median()), 1) if len(ms) else 0.0,
        "p95_ms": round(float(ms.quantile(0.95)), 1) if len(ms) else 0.0,
        "llm_tokens": int(d.per_day["llm_tokens"].sum()),
        "cost": round(float(o["cost"].sum()), 4),
    }

    c = figures.comments
    d.comments = pd.DataFrame({
        "asked": pd.to_datetime(c["created_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M") if len(c) else [],
        "rating": c["rating"].map({"up": "👍 up", "down": "👎 down"}).fillna("") if len(c) else [],
        "question": c["question"] if len(c) else [], "comment": c["comment"] if len(c) else [],
    })  # fmt: skip

    q = figures.questions.copy()
    if len(q):
        q["key"] = q["asked"].fillna("").map(normalize_question)  # each distinct wording once
        q["answered"] = pd.to_numeric(q["answered"]).fillna(0).astype(int)
        q = q.sort_values("n", ascending=False, kind="stable")
        g = q.groupby("key", sort=False)
        d.top_questions = (
            pd.DataFrame({"question": g["asked"].first(), "asked": g["n"].sum(), "answered": g["answered"].sum()})
            .sort_values(["asked", "question"], ascending=[False, True]).head(top).reset_index(drop=True)
        )  # fmt: skip
    else:
        d.top_questions = pd.DataFrame(columns=["question", "asked", "answered"])
    d.top_gaps = gaps if gaps is not None else gap_rows([])

    cited: Counter[str] = Counter()
    for text, n in zip(figures.cited["cited"], figures.cited["n"], strict=True) if len(figures.cited) else ():
        for doc in set(json.loads(text) or []):
            cited[doc] += int(n)
    d.most_cited = pd.DataFrame(cited.most_common(top), columns=["document", "citations"])
    d.never_cited = pd.DataFrame({"document": sorted(set(documents or []) - set(cited))})
    return d


def dashboard_for(assistant, kb: str | None, days: float = 30, now: datetime | None = None) -> Dashboard:
    """The dashboard of ``kb`` (None: all KBs) over the last ``days`` days."""
    from ingest.ledger import Ledger
    from kb_assistant.queue.gaps import gap_clusters

    since, until = period(days, now)
    figures = read_figures(assistant.queue, kb, since, until)
    gaps = gap_rows(gap_clusters(assistant.queue, assistant.embeddings, kb=kb, since=since))
    ledger = Ledger(assistant.settings)
    kbs = [kb] if kb else assistant.knowledge_bases()
    documents = [d.path for k in kbs for d in ledger.documents(k) if d.status == "done"]
    return build_dashboard(figures, assistant.settings, kb=kb, since=since, until=until, documents=documents,
                           gaps=gaps)  # fmt: skip


def write_csv(d: Dashboard, path: Path) -> Path:
    """Every table of the dashboard in one CSV file, one section per table (a 'section' column first)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["section", "kb", d.kb or "(all)", "since", d.since.isoformat(), "until", d.until.isoformat()])
        w.writerow(["totals", *d.totals.keys()])
        w.writerow(["totals", *d.totals.values()])
        for name in ("per_day", "reasons", "top_questions", "top_gaps", "most_cited", "never_cited", "comments"):
            frame: pd.DataFrame = getattr(d, name)
            w.writerow([name, *frame.columns])
            for row in frame.itertuples(index=False):
                w.writerow([name, *row])
    return path
