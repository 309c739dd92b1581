"""The HTTP API under hostile or unlucky input: invalid text, huge bodies, huge histories, invisible questions,
a locked database, and error messages that give away nothing of the server."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient

from kb_assistant.assistant import Assistant
from kb_assistant.queue.spool import Spool
from kb_assistant.settings import Settings
from ui.server import build_app


@pytest.fixture
def assistant(sample_data_dir, embeddings, tmp_path):
    settings = Settings(
        data_dir=sample_data_dir, database_url=f"sqlite:///{tmp_path / 'queue.db'}", cache_enabled=False,
        max_request_bytes=20_000, database_busy_timeout_s=0.2,
    )  # fmt: skip
    a = Assistant(settings, embeddings=embeddings)
    a.queue.spool = Spool(tmp_path / "spool.jsonl")
    return a


@pytest.fixture
def client(assistant):
    with TestClient(build_app(assistant, mount_ui=False)) as c:
        yield c


def post_raw(client, path: str, raw: str, **kwargs):
    return client.post(path, content=raw.encode(), headers={"content-type": "application/json"}, **kwargs)


def test_a_lone_surrogate_in_a_question_is_a_400_on_ask_v1_and_handoff(client, assistant):
    for path, raw in (
        ("/api/ask", '{"question": "How many days of sick leave \\ud800?"}'),
        ("/api/ask", '{"question": "\\u8f6c\\u4eba\\u5de5 \\ud800"}'),  # 转人工: the handoff path
        ("/api/ask", '{"question": "\\ud800", "stream": true}'),
        ("/v1/chat/completions", '{"model": "default", "messages": [{"role": "user", "content": "hi \\udc00"}]}'),
    ):
        r = post_raw(client, path, raw)
        assert r.status_code == 400, (path, raw, r.text)
        assert "surrogate" in r.json()["error"]["message"]
    for raw in ('{"question": "And sick leave?", "history": [{"role": "user", "content": "leave \\ud800"}]}',
                '{"question": "hello", "session_id": "\\ud800"}'):  # fmt: skip
        assert post_raw(client, "/api/ask", raw).status_code == 422
    assert assistant.queue.count_tickets() == 0
    # in Python, a bad character in the history is replaced, not fatal
    answer = assistant.ask("I want to talk to a human", history=[{"role": "user", "content": "my dog \ud800"}])
    assert "\ufffd" in assistant.queue.get(answer.ticket_id).conversation[0]["content"]


def test_request_bodies_over_KB_MAX_REQUEST_BYTES_are_refused_with_413(client):
    big = json.dumps({"question": "x", "history": [{"role": "user", "content": "y" * 19_000}] * 2})
    r = post_raw(client, "/api/ask", big)
    assert r.status_code == 413
    assert "KB_MAX_REQUEST_BYTES" in r.json()["error"]["message"]

    def chunked():  # no Content-Length: counted while it is read
        for _ in range(30):
            yield b" " * 1000

    r = client.post("/api/ask", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.post("/api/ask", json={"question": "公司几点上班？"}).status_code == 200


def test_history_is_not_folded_into_the_question_past_KB_MAX_QUESTION_CHARS(assistant):
    history = [{"role": "user", "content": "How many days of annual leave " + "w" * 20_000}] * 50
    answer = assistant.ask("and sick leave?", history=history)
    assert len(answer.standalone_question) <= assistant.settings.max_question_chars
    handoff = assistant.ask("转人工", history=history)  # the ticket keeps a bounded conversation
    ticket = assistant.queue.get(handoff.ticket_id)
    assert len(ticket.question) <= assistant.settings.max_question_chars
    assert len(ticket.conversation) <= assistant.settings.max_history_messages
    assert all(len(m["content"]) <= assistant.settings.max_question_chars for m in ticket.conversation)


@pytest.mark.parametrize("question", ["\u200b\u200b\u200b", "\x00\x00", "\ufeff \u200d\u2060", " \x00\u200b\n"])
def test_a_question_of_only_invisible_characters_is_an_empty_question_and_opens_no_ticket(client, assistant, question):
    r = client.post("/api/ask", json={"question": question})
    assert r.status_code == 400 and "empty" in r.json()["error"]["message"]
    r = client.post("/v1/chat/completions", json={"model": "default", "messages": [{"role": "user",
                    "content": question}]})  # fmt: skip
    assert r.status_code == 400
    assert assistant.queue.count_tickets() == 0


def test_reading_a_ticket_while_the_database_is_locked_is_503_without_the_database_url(client, assistant, tmp_path):
    answer = client.post("/api/ask", json={"question": "Can I bring my dog to the office?"}).json()
    blocker = sqlite3.connect(tmp_path / "queue.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the lock
    try:
        r = client.get(f"/api/tickets/{answer['ticket_id']}", params={"token": answer.get("ticket_token") or ""})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert r.status_code == 503 and r.json()["error"]["code"] == "queue_unavailable"
    assert "sqlite" not in r.text and str(tmp_path) not in r.text


def test_error_messages_name_no_server_paths_or_database_urls(client, assistant):
    data_dir = str(assistant.settings.data_dir)
    for r in (
        client.post("/api/ask", json={"question": "hi", "kb": "nosuchkb"}),
        client.get("/api/tickets/T-999999"),
        client.post("/v1/chat/completions", json={"model": "nosuchkb", "messages": [{"role": "user", "content": "x"}]}),
        client.post("/api/feedback", json={"answer_id": "0" * 32, "rating": "down", "comment": "x"}),
    ):
        assert 400 <= r.status_code < 500, r.text
        message = r.json()["error"]["message"]
        assert data_dir not in message and "sqlite:" not in message and "/tmp" not in message, message
    assert "nosuchkb" in client.post("/api/ask", json={"question": "hi", "kb": "nosuchkb"}).json()["error"]["message"]
