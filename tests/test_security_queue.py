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
    from alembic import command
    from sqlalchemy import text

    from kb_assistant.queue.database import MIGRATIONS, migrate

    queue = assistant.queue
    answer = assistant.ask("How many days of sick leave do I get?", session_id="s-1")
    assistant.feedback(answer.id, "down", "wrong")
    with queue.engine.begin() as conn:  # back to the first schema, with what the old code left behind
        command.downgrade(MIGRATIONS.config(conn), "0001")
        conn.execute(text("UPDATE tickets SET embedding = 'null'"))
        conn.execute(text("UPDATE answer_log SET embedding = 'null' WHERE answered"))
    migrate(queue.engine)
    with sqlite3.connect(tmp_path / "queue.db") as db:
        assert db.execute("SELECT count(*) FROM tickets WHERE embedding = 'null'").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM answer_log WHERE embedding = 'null'").fetchone() == (0,)
    with queue.engine.begin() as conn:  # a row no migration can guess: grouping must step over it
        conn.execute(text("UPDATE tickets SET embedding = '[1.0, 2.0]'"))

    assert assistant.ask(DOG).ticket_id.startswith("T-")


# --- defect 3: a ticket is read only by its asker ---------------------------------------------------------------
@pytest.fixture
def client(assistant):
    from fastapi.testclient import TestClient

    from ui.server import build_app

    with TestClient(build_app(assistant, mount_ui=False)) as c:
        yield c


def test_a_ticket_is_readable_only_with_the_token_given_to_its_asker(client, assistant):
    alice = client.post("/api/ask", json={"question": DOG, "session_id": "s-alice"}).json()
    bob = client.post("/api/ask", json={"question": "can i bring my DOG to the office"}).json()  # joins the ticket
    assert alice["ticket_id"] == bob["ticket_id"] == "T-000001"
    assert alice["ticket_token"] and bob["ticket_token"] and alice["ticket_token"] != bob["ticket_token"]
    assistant.queue.answer("T-000001", "Dogs are welcome on Fridays.", "anna")
    url = "/api/tickets/T-000001"

    for params in ({}, {"token": ""}, {"token": "T-000001"}, {"token": alice["ticket_token"][:-1] + "x"}):
        r = client.get(url, params=params)
        assert r.status_code == 404 and "Dogs" not in r.text, params
    assert client.get("/api/tickets/T-000002", params={"token": alice["ticket_token"]}).status_code == 404

    mine = client.get(url, params={"token": alice["ticket_token"]}).json()
    theirs = client.get(url, headers={"X-Ticket-Token": bob["ticket_token"]}).json()
    assert mine["answer"] == theirs["answer"] == "Dogs are welcome on Fridays."
    assert mine["question"] == DOG and theirs["question"] == "can i bring my DOG to the office"  # own words only
    with sqlite3.connect(assistant.settings.database_url.removeprefix("sqlite:///")) as db:  # only a hash is kept
        stored = [h for (h,) in db.execute("SELECT access_hash FROM ticket_requests")]
    assert len(stored) == 2 and alice["ticket_token"] not in stored and all(len(h) == 64 for h in stored)


def test_the_v1_answer_and_a_downvote_give_their_asker_the_token_of_the_ticket(client, assistant):
    from kb_assistant.errors import UnknownTicket

    v1 = client.post("/v1/chat/completions", json={"model": "default", "messages": [{"role": "user",
                     "content": SKI}]}).json()["kb_answer"]  # fmt: skip
    assert client.get(f"/api/tickets/{v1['ticket_id']}", params={"token": v1["ticket_token"]}).status_code == 200
    answered = assistant.ask("How many days of sick leave do I get?")
    assert answered.answered and answered.ticket_token is None
    fb = assistant.feedback(answered.id, "down", "it is 15 days now")
    assert assistant.ticket(fb.ticket_id, fb.ticket_token).reason == "downvote"
    with pytest.raises(UnknownTicket):
        assistant.ticket(fb.ticket_id, v1["ticket_token"])
    assert assistant.feedback(answered.id, "up").ticket_token is None


def test_the_chat_reads_replies_with_its_browser_secret_never_a_session_id_the_caller_supplies(assistant):
    from ui.chat import build_chat_app, session_id, unseen_replies

    chat = build_chat_app(assistant)
    text, state = list(chat.fn(DOG, [], "default", None))[-1]  # a new browser
    assistant.queue.answer("T-000001", "Dogs are welcome on Fridays.", "anna")
    victim = session_id(state)
    assert assistant.queue.get("T-000001").requests[0].session_id == victim

    for forged in ({"session_id": victim, "shown": []}, {"secret": victim, "shown": []}, {"secret": "x" * 40}, "x"):
        assert unseen_replies(assistant, forged)[1] == []  # what Gradio's /show_replies is handed, as sent
    assert [v.answer for v in unseen_replies(assistant, state)[1]] == ["Dogs are welcome on Fridays."]


# --- kb queue list pages --------------------------------------------------------------------------------------
def test_kb_queue_list_pages_through_tickets_and_says_how_many_there_are(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from kb_assistant.cli import app
    from kb_assistant.queue.store import AnswerRecord, TicketQueue

    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "d"))
    queue = TicketQueue(Settings(data_dir=tmp_path / "d"))
    for i in range(510):
        queue.record(AnswerRecord(id=f"a{i}", kb="default", question=f"Question number {i}?",
                                  standalone_question=f"Question number {i}?", language="en", text="", answered=False,
                                  confidence=0.0, reason="low_confidence"))  # fmt: skip
    runner = CliRunner()
    first = runner.invoke(app, ["queue", "list"])
    assert first.exit_code == 0 and first.stdout.count("\nT-") + first.stdout.startswith("T-") == 100
    assert "open tickets 1–100 of 510; next: --page 2" in first.stdout
    last = runner.invoke(app, ["queue", "list", "--page", "6"])
    assert "T-000510" in last.stdout and "open tickets 501–510 of 510" in last.stdout and "next" not in last.stdout
    everything = runner.invoke(app, ["queue", "list", "--limit", "0", "--json"])
    assert len(__import__("json").loads(everything.stdout)) == 510
    assert "open tickets 1–510 of 510" in everything.stderr


def test_the_console_pages_through_tickets_and_says_how_many_there_are(tmp_path):
    from kb_assistant.queue.store import AnswerRecord, TicketQueue
    from ui.console import PAGE_SIZE, ticket_page

    queue = TicketQueue(Settings(data_dir=tmp_path / "d"))
    for i in range(PAGE_SIZE + 5):
        queue.record(AnswerRecord(id=f"c{i}", kb="default", question=f"Console question {i}?",
                                  standalone_question=f"Console question {i}?", language="en", text="",
                                  answered=False, confidence=0.0, reason="low_confidence"))  # fmt: skip
    rows, summary = ticket_page(queue)
    assert len(rows) == PAGE_SIZE and summary == f"{PAGE_SIZE + 5} tickets · 1–{PAGE_SIZE} shown · page 1 of 2"
    rows, summary = ticket_page(queue, page=2)
    assert [r[0] for r in rows][-1] == f"T-{PAGE_SIZE + 5:06d}" and summary.endswith("page 2 of 2")
