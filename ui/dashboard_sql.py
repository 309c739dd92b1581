"""What the admin dashboard reads from the answer log (``queue.models.AnswerLog``): a few GROUP BY queries that
return small frames — counts and sums per day and outcome, per wording of a question, per list of cited sources —
plus the one column percentiles need (answer times) and the newest comments. The counts per day and outcome and the
answer times come from one index (``ix_answer_log_dashboard``, queue migration 0007) without reading a row; the
wordings and cited sources take one pass over the rows. No query reads a row's answer text, passages, conversation
or embedding, and nothing scales with the rows in Python but the answer times.

Plain SQLAlchemy Core, so SQLite and Postgres run the same queries; ``ui.dashboard`` turns the frames into figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd


@dataclass
class AnswerLogFigures:
    # day, answered, reason, cached, rating → n, prompt_tokens, completion_tokens, answer_ms, llm_answers (with tokens)
    outcomes: pd.DataFrame
    times: pd.DataFrame  # answer_ms, cached (answers with a recorded time)
    questions: pd.DataFrame  # asked (the standalone wording, else the question), n, answered
    cited: pd.DataFrame  # cited (a JSON list, as stored), n
    comments: pd.DataFrame  # created_at, rating, question, comment (newest first)


def read_figures(queue, kb: str | None, since: datetime, until: datetime, comments: int = 50) -> AnswerLogFigures:
    from sqlalchemy import Integer, String, case, cast, func, select

    from kb_assistant.queue.models import AnswerLog as A

    def period(query):
        query = query.where(A.created_at >= since, A.created_at < until)
        return query.where(A.kb == kb) if kb else query

    def ones(condition):
        return func.sum(case((condition, 1), else_=0))

    day = func.date(A.created_at)  # SQLite: 'YYYY-MM-DD'; Postgres: a date (the log's times are UTC)
    answered = cast(A.answered, Integer)
    cached = cast(func.coalesce(A.cached, False), Integer)
    outcome_cols = [day.label("day"), answered.label("answered"), A.reason, cached.label("cached"), A.rating]
    outcomes = period(select(
        *outcome_cols, func.count().label("n"), func.sum(A.prompt_tokens).label("prompt_tokens"),
        func.sum(A.completion_tokens).label("completion_tokens"), func.sum(A.answer_ms).label("answer_ms"),
        ones(A.prompt_tokens + A.completion_tokens > 0).label("llm_answers"),
    )).group_by(day, answered, A.reason, cached, A.rating)  # fmt: skip
    times = period(select(A.answer_ms, cached.label("cached")).where(A.answer_ms > 0))
    asked = func.coalesce(func.nullif(A.standalone_question, ""), A.question)
    cited_text = cast(A.cited, String)
    # one pass over the rows for both (the wording and the cited sources are read from the rows themselves)
    questions = period(select(asked.label("asked"), answered.label("answered"), cited_text.label("cited"),
                              func.count().label("n"))).group_by(asked, answered, cited_text)  # fmt: skip
    newest = period(select(A.created_at, A.rating, A.question, A.feedback_comment.label("comment")))
    newest = newest.where(func.trim(func.coalesce(A.feedback_comment, "")) != "")
    newest = newest.order_by(A.created_at.desc()).limit(comments)

    with queue.reading() as conn:

        def frame(query) -> pd.DataFrame:
            result = conn.execute(query)
            return pd.DataFrame.from_records(result.fetchall(), columns=list(result.keys()))

        per_outcome, answer_times, newest_comments, per_wording = (frame(q) for q in (outcomes, times, newest,
                                                                                      questions))  # fmt: skip
    per_wording["answered"] = per_wording["answered"].fillna(0).astype(int) * per_wording["n"]
    by_question = per_wording.groupby("asked", as_index=False)[["n", "answered"]].sum()
    by_cited = per_wording.dropna(subset=["cited"]).groupby("cited", as_index=False)["n"].sum()
    return AnswerLogFigures(per_outcome, answer_times, by_question, by_cited, newest_comments)
