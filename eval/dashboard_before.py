"""The admin dashboard as it was before the answer log was aggregated in SQL (every needed column of every row
read into pandas, then grouped there) — kept only as ``eval.bench_dashboard``'s baseline, measured in the same run
as ``ui.dashboard``. Not used by the product.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from kb_assistant.settings import Settings

COLUMNS = ["id", "kb", "question", "standalone_question", "answered", "reason", "rating", "feedback_comment",
           "created_at", "cached", "answer_ms", "prompt_tokens", "completion_tokens", "cited"]  # fmt: skip


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
    top_gaps: pd.DataFrame = field(default_factory=pd.DataFrame)  # question, asked, last reason
    most_cited: pd.DataFrame = field(default_factory=pd.DataFrame)  # document, citations
    never_cited: pd.DataFrame = field(default_factory=pd.DataFrame)  # document


def load_answers(queue, kb: str | None, since: datetime, until: datetime) -> pd.DataFrame:
    """The answer-log rows of ``kb`` (None: every KB) asked in [since, until)."""
    from sqlalchemy import String, cast, select

    from kb_assistant.queue.models import AnswerLog

    # timestamps and JSON come back as their text: pandas parses a column at once, far faster than row by row
    raw = {"created_at", "cited"}
    cols = [cast(getattr(AnswerLog, c), String).label(c) if c in raw else getattr(AnswerLog, c) for c in COLUMNS]
    query = select(*cols).where(AnswerLog.created_at >= since, AnswerLog.created_at < until)
    if kb:
        query = query.where(AnswerLog.kb == kb)
    with queue._session() as s:  # a session on the migrated database
        # the driver's rows as they are (ints for booleans, text for the casts): converted per column below, which
        # at 100,000 rows takes a fraction of what SQLAlchemy's per-row result processing does
        rows = s.connection().execute(query).cursor.fetchall()
    df = pd.DataFrame.from_records(rows, columns=COLUMNS)
    for c in ("answered", "cached"):
        df[c] = df[c].fillna(False).astype(bool)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
    df["cited"] = [json.loads(v) if v else [] for v in df["cited"]]
    return df


def period(days: float, now: datetime | None = None) -> tuple[datetime, datetime]:
    until = (now or datetime.now(UTC)) + timedelta(seconds=1)
    return until - timedelta(days=float(days or 30)), until


def build_dashboard(
    df: pd.DataFrame, settings: Settings, *, kb: str | None, since: datetime, until: datetime,
    documents: list[str] | None = None, top: int = 10,
) -> Dashboard:  # fmt: skip
    """The figures of a period from its answer-log rows; ``documents``: the KB's live documents (never cited)."""
    from kb_assistant.queue.store import normalize_question

    d = Dashboard(kb, since, until)
    days = pd.date_range(since.date(), (until - timedelta(microseconds=1)).date(), freq="D", tz="UTC")
    if df.empty:
        df = pd.DataFrame(columns=COLUMNS)
    df = df.copy()
    df["day"] = pd.to_datetime(df["created_at"], utc=True).dt.floor("D")  # formatted once per day, below
    df["answered"] = df["answered"].astype(bool)
    df["cached"] = df["cached"].fillna(False).astype(bool)
    for c in ("answer_ms", "prompt_tokens", "completion_tokens"):
        df[c] = pd.to_numeric(df[c]).fillna(0)
    price_p, price_c = settings.llm_price_prompt_per_1m / 1e6, settings.llm_price_completion_per_1m / 1e6
    spent = df[~df["cached"]]
    df["cost"] = 0.0
    df.loc[~df["cached"], "cost"] = spent["prompt_tokens"] * price_p + spent["completion_tokens"] * price_c
    df["escalated"] = ~df["answered"]
    df["up"], df["down"] = df["rating"] == "up", df["rating"] == "down"

    g = df.groupby("day")
    per_day = pd.DataFrame({
        "questions": g.size(), "answered": g["answered"].sum(), "escalated": g["escalated"].sum(),
        "cache_hits": g["cached"].sum(), "thumbs_up": g["up"].sum(), "thumbs_down": g["down"].sum(),
        "prompt_tokens": g["prompt_tokens"].sum(), "completion_tokens": g["completion_tokens"].sum(),
        "cost": g["cost"].sum(),
    }).reindex(days, fill_value=0)  # fmt: skip
    per_day.index = per_day.index.strftime("%Y-%m-%d").rename("day")
    d.per_day = per_day.reset_index().astype({"questions": int, "answered": int, "escalated": int,
                                              "cache_hits": int, "thumbs_up": int, "thumbs_down": int})  # fmt: skip
    d.per_day["llm_tokens"] = (d.per_day["prompt_tokens"] + d.per_day["completion_tokens"]).astype(int)
    d.per_day["cost"] = d.per_day["cost"].round(6)

    outcome = ("escalated: " + df["reason"].fillna("low_confidence").astype(str)).where(df["escalated"], "answered")
    d.outcomes = (
        df.assign(outcome=outcome).groupby(["day", "outcome"]).size().rename("count").reset_index()
        .assign(day=lambda x: x["day"].dt.strftime("%Y-%m-%d"))
        if len(df) else pd.DataFrame({"day": list(days[:1].strftime("%Y-%m-%d")), "outcome": ["answered"],
                                      "count": [0]})
    )  # fmt: skip
    d.reasons = (
        df[df["escalated"]]["reason"].fillna("low_confidence").value_counts().rename_axis("reason")
        .rename("count").reset_index()
    )  # fmt: skip

    fresh = df[~df["cached"]]
    times = fresh["answer_ms"][fresh["answer_ms"] > 0]
    median_fresh = float(times.median()) if len(times) else 0.0
    hits = df[df["cached"]]
    llm_rows = fresh[(fresh["prompt_tokens"] + fresh["completion_tokens"]) > 0]
    tokens_per_llm_answer = float((llm_rows["prompt_tokens"] + llm_rows["completion_tokens"]).mean()) if len(
        llm_rows) else 0.0  # fmt: skip
    all_times = df["answer_ms"][df["answer_ms"] > 0]
    d.totals = {
        "questions": len(df),
        "answered": int(df["answered"].sum()),
        "escalated": int(df["escalated"].sum()),
        "answered_share": round(float(df["answered"].mean()), 3) if len(df) else 0.0,
        "cache_hits": len(hits),
        "cache_saved_s": round(max(0.0, median_fresh * len(hits) - float(hits["answer_ms"].sum())) / 1000, 1),
        "cache_saved_tokens_est": int(tokens_per_llm_answer * len(hits)),
        "thumbs_up": int(df["up"].sum()),
        "thumbs_down": int(df["down"].sum()),
        "median_ms": round(float(all_times.median()), 1) if len(all_times) else 0.0,
        "p95_ms": round(float(all_times.quantile(0.95)), 1) if len(all_times) else 0.0,
        "llm_tokens": int(d.per_day["llm_tokens"].sum()),
        "cost": round(float(df["cost"].sum()), 4),
    }

    rated = df[df["feedback_comment"].fillna("").str.strip() != ""]
    d.comments = (
        rated.sort_values("created_at", ascending=False)
        .assign(asked=lambda x: pd.to_datetime(x["created_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M"))
        .rename(columns={"feedback_comment": "comment"})[["asked", "rating", "question", "comment"]]
        .head(50).reset_index(drop=True)
    )  # fmt: skip

    asked = df["standalone_question"].where(df["standalone_question"].fillna("") != "", df["question"]).fillna("")
    keys = {q: normalize_question(q) for q in asked.unique()}  # each distinct wording once
    df["key"] = asked.map(keys)
    grouped = df.groupby("key")
    first = grouped["question"].first()
    d.top_questions = (
        pd.DataFrame({"question": first, "asked": grouped.size(), "answered": grouped["answered"].sum().astype(int)})
        .sort_values(["asked", "question"], ascending=[False, True]).head(top).reset_index(drop=True)
    )  # fmt: skip
    esc = df[df["escalated"]]
    eg = esc.groupby("key")
    d.top_gaps = (
        pd.DataFrame({"question": eg["question"].first(), "asked": eg.size(), "reason": eg["reason"].last()})
        .sort_values(["asked", "question"], ascending=[False, True]).head(top).reset_index(drop=True)
    )  # fmt: skip

    counts = df["cited"].explode().dropna().value_counts()  # load_answers gives each row a list
    d.most_cited = counts.rename_axis("document").rename("citations").reset_index().head(top)
    never = sorted(set(documents or []) - set(counts.index))
    d.never_cited = pd.DataFrame({"document": never})
    return d
