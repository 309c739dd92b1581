"""The queue store against a real Postgres: a throw-away cluster the test run starts (tests/engines.py), or the
server KB_TEST_POSTGRES_URL names. Each test works in a schema of its own, dropped afterwards."""

from __future__ import annotations

import threading

import pytest

from kb_assistant.queue.store import AnswerRecord, TicketQueue
from kb_assistant.settings import Settings


@pytest.fixture
def pg_queue(tmp_path, pg_url):
    return TicketQueue(Settings(data_dir=tmp_path / "d", database_url=pg_url))


def _record(i: int | str, question: str, session: str = "s", embedding=None) -> AnswerRecord:
    return AnswerRecord(
        id=f"a{i}", kb="default", question=question, standalone_question=question, language="en", text="hold",
        answered=False, confidence=0.1, reason="low_confidence", session_id=session, embedding=embedding,
    )  # fmt: skip


def test_the_queue_works_on_postgres_migrations_tickets_grouping_answers_agents(pg_queue):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from kb_assistant.queue.models import Base

    assert pg_queue.available() and pg_queue.engine.dialect.name == "postgresql"
    with pg_queue.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    vec = [0.6, 0.8, 0.0]
    t1 = pg_queue.record(_record(1, "Can I bring my dog to the office?", "s1", vec))
    t2 = pg_queue.record(_record(2, "can I bring my dog to the office", "s2", vec))
    t3 = pg_queue.record(_record(3, "Is there a choir?", "s1"))
    assert t1 == t2 == "T-000001" and t3 == "T-000002"
    pg_queue.claim(t1, "anna")
    pg_queue.answer(t1, "Dogs are welcome on Fridays.", "anna")
    assert [(v.id, v.status, v.answer) for v in pg_queue.session_replies("s2")] == [
        ("T-000001", "answered", "Dogs are welcome on Fridays.")
    ]
    assert pg_queue.feedback("a3", "down", "still waiting") == "T-000002"  # joins the open ticket
    pg_queue.add_user("anna", "correct horse battery")
    assert pg_queue.check_password("anna", "correct horse battery")
    assert [t.id for t in pg_queue.list_tickets(status="open")] == [2]


def test_concurrent_escalations_on_postgres_are_neither_lost_nor_doubled(pg_queue):
    pg_queue.available()
    barrier, ids = threading.Barrier(30), []

    def escalate(i: int) -> None:
        barrier.wait()
        question = "Where is the visa form?" if i % 2 else f"distinct question {i}"
        ids.append(pg_queue.record(_record(i, question, f"s{i}")))

    threads = [threading.Thread(target=escalate, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 30 and all(i.startswith("T-") for i in ids)
    assert pg_queue.count_tickets() == 16  # 15 distinct + the one the 15 identical questions share
    assert len(set(ids)) == 16


def test_the_dashboard_counts_and_the_gap_log_read_postgres_the_same_way(pg_queue, tmp_path):
    from dataclasses import replace

    from kb_assistant.queue.gaps import gap_clusters
    from ui.dashboard import build_dashboard, period
    from ui.dashboard_sql import read_figures

    vec = [0.6, 0.8, 0.0]
    pg_queue.record(_record(1, "Can I bring my dog to the office?", "s1", vec))
    pg_queue.record(_record(2, "can I bring my dog to the office", "s2", vec))
    answered = replace(_record(3, "How many days of leave?"), answered=True, reason=None, cached=True, answer_ms=12.0,
                       cited=["leave.md"], prompt_tokens=0)  # fmt: skip
    pg_queue.record(answered)
    pg_queue.feedback("a3", "up", "clear answer")
    since, until = period(1)
    d = build_dashboard(read_figures(pg_queue, "default", since, until), pg_queue.settings, kb="default",
                        since=since, until=until, documents=["leave.md", "visa.md"])  # fmt: skip
    t = d.totals
    assert (t["questions"], t["answered"], t["escalated"], t["cache_hits"], t["thumbs_up"]) == (3, 1, 2, 1, 1)
    assert d.per_day["questions"].sum() == 3 and d.reasons.to_dict(orient="records") == [
        {"reason": "low_confidence", "count": 2}]  # fmt: skip
    assert d.most_cited.values.tolist() == [["leave.md", 1]] and d.never_cited["document"].tolist() == ["visa.md"]
    assert d.comments[["rating", "comment"]].values.tolist() == [["👍 up", "clear answer"]]
    [gap] = gap_clusters(pg_queue, None, kb="default")  # stored embeddings: no model needed
    assert gap.count == 2 and gap.question.lower().startswith("can i bring my dog")
