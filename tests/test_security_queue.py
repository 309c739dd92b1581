"""Reliability and security of the human queue: stored data that must not break escalation, ticket reads only by
their asker, paging, and the questions that must not open a ticket."""

from __future__ import annotations

import sqlite3

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.queue.spool import Spool
from kb_assistant.settings import Settings

DOG = "Can I bring my dog to the office?"
SKI = "Does the company sponsor an annual ski trip?"


@pytest.fixture
def assistant(sample_data_dir, embeddings, tmp_path):
    """The sample KBs with a queue database (and spool) of its own."""
    settings = Settings(data_dir=sample_data_dir, database_url=f"sqlite:///{tmp_path / 'queue.db'}")
    a = Assistant(settings, embeddings=embeddings)
    a.queue.spool = Spool(tmp_path / "spool.jsonl")
    return a


# --- defect 1: a 👎 with a comment broke escalation for its whole KB ------------------------------------------
def test_a_downvote_with_a_comment_leaves_escalation_working_for_the_kb(assistant, tmp_path):
    answer = assistant.ask("How many days of sick leave do I get?", session_id="s-1")
    assert answer.answered
    fb = assistant.feedback(answer.id, "down", "wrong", session_id="s-1")
    assert fb.ticket_id.startswith("T-")

    unanswerable = assistant.ask(DOG, session_id="s-2")
    handoff = assistant.ask("转人工", history=[{"role": "user", "content": SKI}], session_id="s-3")

    assert not unanswerable.answered and unanswerable.ticket_id.startswith("T-")
    assert handoff.escalation_reason == "handoff" and handoff.ticket_id.startswith("T-")
    with sqlite3.connect(tmp_path / "queue.db") as db:  # no embedding is stored as the JSON text 'null'
        assert db.execute("SELECT count(*) FROM tickets WHERE embedding = 'null'").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM answer_log WHERE embedding = 'null'").fetchone() == (0,)


def test_tickets_stored_with_a_null_embedding_before_the_fix_are_repaired_by_the_migration(
    assistant, tmp_path, embeddings
):
    """A database written by the old code holds 'null' embeddings: the next start turns them into SQL NULL, and
    grouping skips any embedding that is not a vector of the model's size."""
    from sqlalchemy import text

    from kb_assistant.queue.store import migrate

    queue = assistant.queue
    answer = assistant.ask("How many days of sick leave do I get?", session_id="s-1")
    assistant.feedback(answer.id, "down", "wrong")
    with queue.engine.begin() as conn:  # what the old code left behind, and worse
        conn.execute(text("UPDATE tickets SET embedding = 'null'"))
        conn.execute(text("UPDATE answer_log SET embedding = 'null' WHERE answered"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    migrate(queue.engine)
    with sqlite3.connect(tmp_path / "queue.db") as db:
        assert db.execute("SELECT count(*) FROM tickets WHERE embedding = 'null'").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM answer_log WHERE embedding = 'null'").fetchone() == (0,)
    with queue.engine.begin() as conn:  # a row no migration can guess: grouping must step over it
        conn.execute(text("UPDATE tickets SET embedding = '[1.0, 2.0]'"))

    assert assistant.ask(DOG).ticket_id.startswith("T-")
