"""The admin dashboard: what the answer log records for it, and the figures of a KB and period built from it."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.queue.store import AnswerRecord, TicketQueue
from kb_assistant.settings import Settings
from ui.dashboard import build_dashboard, dashboard_for, gap_rows, period, write_csv
from ui.dashboard_sql import read_figures

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_every_answer_is_logged_with_its_cache_hit_answer_time_tokens_and_cited_documents(tmp_path, embeddings):
    from ingest.pipeline import ingest_paths

    doc = tmp_path / "bike.md"
    doc.write_text("# Cycle to work\n\nThe cycle-to-work scheme lends employees up to 1200 euros for a bicycle.\n")
    assistant = Assistant(Settings(data_dir=tmp_path / "data"), embeddings=embeddings)
    assert ingest_paths(assistant.settings, [doc], "hr").ok
    question = "How much does the cycle-to-work scheme lend for a bicycle?"
    fresh, hit = assistant.ask(question, kb="hr"), assistant.ask(question, kb="hr")
    unanswered = assistant.ask("Can I bring my dog to the office?", kb="hr")
    assert fresh.answered and hit.cached and not unanswered.answered
    log = {a.id: assistant.queue.answer_log(a.id) for a in (fresh, hit, unanswered)}
    assert log[fresh.id].cited == ["bike.md"] and not log[fresh.id].cached and log[fresh.id].answer_ms > 0
    assert log[hit.id].cached and log[hit.id].cited == ["bike.md"]
    assert log[unanswered.id].reason == "low_confidence" and log[unanswered.id].cited == []
    d = dashboard_for(assistant, "hr", days=7)
    assert d.totals["questions"] == 3 and d.totals["cache_hits"] == 1 and d.totals["escalated"] == 1
    assert d.most_cited.to_dict(orient="records") == [{"document": "bike.md", "citations": 2}]


def _log(queue: TicketQueue, n: int, question: str, *, answered=True, reason=None, cached=False, ms=100.0,
         tokens=(0, 0), cited=(), days_ago=0, kb="hr", rating=None, comment="") -> list[str]:  # fmt: skip
    from sqlalchemy import update

    from kb_assistant.queue.models import AnswerLog

    ids = []
    for i in range(n):
        aid = f"{question[:8]}-{days_ago}-{i}-{kb}".replace(" ", "_")
        queue.record(AnswerRecord(
            id=aid, kb=kb, question=question, standalone_question=question, language="en", text="t",
            answered=answered, confidence=0.9 if answered else 0.1, reason=reason, cached=cached, answer_ms=ms,
            prompt_tokens=tokens[0], completion_tokens=tokens[1], cited=list(cited),
        ))  # fmt: skip
        if rating:
            queue.feedback(aid, rating, comment)
        ids.append(aid)
    with queue._session() as s, s.begin():
        s.execute(update(AnswerLog).where(AnswerLog.id.in_(ids)).values(created_at=NOW - timedelta(days=days_ago)))
    return ids


@pytest.fixture
def queue(tmp_path):
    return TicketQueue(Settings(data_dir=tmp_path / "d"))


def test_the_dashboard_counts_a_kb_and_period_from_the_answer_log(queue, tmp_path, embeddings):
    from kb_assistant.queue.gaps import gap_clusters

    q_leave, q_bike, q_dog = "How many days of leave?", "What does the bike scheme lend?", "Can I bring my dog?"
    _log(queue, 3, q_leave, ms=100, tokens=(1000, 200), cited=["leave.md"], days_ago=2)
    _log(queue, 1, q_leave, ms=10, cached=True, cited=["leave.md"], days_ago=1, rating="up")
    _log(queue, 2, q_bike, ms=300, tokens=(2000, 400), cited=["bike.md", "leave.md"], days_ago=1)
    _log(queue, 2, q_dog, answered=False, reason="low_confidence", ms=50, days_ago=0)
    _log(queue, 1, "Am I allowed to bring my dog to work?", answered=False, reason="no_citation", ms=50)
    _log(queue, 1, "Who signs off overtime?", answered=False, reason="low_confidence", ms=50)
    _log(queue, 1, "The answer was wrong", answered=True, ms=100, tokens=(500, 100), cited=["bike.md"],
         rating="down", comment="It says 1000, not 1200")  # fmt: skip
    _log(queue, 5, q_leave, days_ago=40)  # outside the period
    _log(queue, 4, q_leave, kb="sales")  # another KB
    settings = Settings(data_dir=tmp_path / "d", llm_price_prompt_per_1m=1.0, llm_price_completion_per_1m=2.0)
    since, until = period(7, NOW)
    gaps = gap_rows(gap_clusters(queue, embeddings, kb="hr", since=since))  # as `kb gaps` groups them
    d = build_dashboard(read_figures(queue, "hr", since, until), settings, kb="hr", since=since, until=until,
                        documents=["leave.md", "bike.md", "holidays.md"], gaps=gaps)  # fmt: skip

    t = d.totals
    assert (t["questions"], t["answered"], t["escalated"], t["cache_hits"]) == (11, 7, 4, 1)
    assert (t["thumbs_up"], t["thumbs_down"]) == (1, 1)
    assert t["median_ms"] == 100.0 and t["p95_ms"] == pytest.approx(300.0)  # 10, 4×50, 4×100, 2×300
    assert t["llm_tokens"] == 3 * 1200 + 2 * 2400 + 600
    # cost: prompt 1$/1M, completion 2$/1M; the cache hit spent nothing
    assert t["cost"] == pytest.approx((3 * 1000 + 2 * 2000 + 500) * 1e-6 + (3 * 200 + 2 * 400 + 100) * 2e-6)
    assert t["cache_saved_s"] == pytest.approx((100 - 10) / 1000, abs=0.1)
    days = d.per_day.set_index("day")
    assert len(days) == 8 and days["questions"].sum() == 11  # every day of the period, empty ones as 0
    assert days.loc["2026-12-01", "questions"] == 3 and days.loc["2026-12-02", "cache_hits"] == 1
    assert days.loc["2026-12-03", "escalated"] == 4
    assert d.reasons.to_dict(orient="records") == [{"reason": "low_confidence", "count": 3},
                                                   {"reason": "no_citation", "count": 1}]  # fmt: skip
    outcomes = d.outcomes.set_index(["day", "outcome"])["count"]
    assert outcomes[("2026-12-03", "escalated: low_confidence")] == 3
    assert d.top_questions.iloc[0].to_dict() == {"question": q_leave, "asked": 4, "answered": 4}
    # unanswered questions grouped by meaning: two wordings of the dog question are one gap, asked 3 times
    # (a 👎 is a gap too, as in `kb gaps`)
    gaps = d.top_gaps[["question", "asked", "wordings"]].values.tolist()
    assert gaps[0] == [q_dog, 3, "Am I allowed to bring my dog to work?"]
    assert d.top_gaps.loc[0, "reasons"] == "low_confidence 2, no_citation 1"
    assert sorted(gaps[1:]) == [["The answer was wrong", 1, ""], ["Who signs off overtime?", 1, ""]]
    assert d.most_cited.to_dict(orient="records") == [{"document": "leave.md", "citations": 6},
                                                      {"document": "bike.md", "citations": 3}]  # fmt: skip
    assert d.never_cited["document"].tolist() == ["holidays.md"]
    assert d.comments[["rating", "comment"]].values.tolist() == [["👎 down", "It says 1000, not 1200"]]

    rows = list(csv.reader(write_csv(d, tmp_path / "dash.csv").open(encoding="utf-8")))
    sections = {r[0] for r in rows}
    assert {"totals", "per_day", "top_questions", "top_gaps", "most_cited", "never_cited", "comments"} <= sections
    assert ["never_cited", "holidays.md"] in rows


def test_an_empty_period_gives_zeros_not_an_error(queue, tmp_path):
    since, until = period(3, NOW)
    d = build_dashboard(read_figures(queue, None, since, until), Settings(data_dir=tmp_path / "d"), kb=None,
                        since=since, until=until, documents=["a.md"])  # fmt: skip
    assert d.totals["questions"] == 0 and d.totals["median_ms"] == 0.0 and len(d.per_day) == 4
    assert d.never_cited["document"].tolist() == ["a.md"] and d.top_questions.empty and d.top_gaps.empty
    assert d.reasons.empty and d.comments.empty and d.most_cited.empty


def test_answers_logged_before_the_dashboard_migration_count_with_zeros(tmp_path):
    from alembic import command

    from kb_assistant.queue.database import MIGRATIONS, make_engine

    settings = Settings(data_dir=tmp_path / "d")
    settings.data_dir.mkdir(parents=True)
    queue = TicketQueue(settings)
    engine = make_engine(queue.url)
    with engine.begin() as conn:  # a database as the release before this one left it
        command.upgrade(MIGRATIONS.config(conn), "0003")
        conn.exec_driver_sql(
            "INSERT INTO answer_log (id, kb, question, standalone_question, language, text, answered, confidence,"
            " passages, conversation, created_at) VALUES ('old1', 'hr', 'Old question?', 'Old question?', 'en', 't',"
            " 1, 0.9, '[]', '[]', ?)", (NOW.strftime("%Y-%m-%d %H:%M:%S.%f"),),
        )  # fmt: skip
    since, until = period(7, NOW)
    figures = read_figures(queue, "hr", since, until)  # migrates to the newest revision first
    d = build_dashboard(figures, settings, kb="hr", since=since, until=until)
    assert d.totals["questions"] == 1 and d.totals["median_ms"] == 0.0 and d.totals["cache_hits"] == 0
    assert d.top_questions.values.tolist() == [["Old question?", 1, 1]] and d.most_cited.empty
