"""The HTTP API (ui/server.py) in-process: answers, SSE streaming, JSON errors for bad input, API keys, CORS,
metrics, feedback and tickets (against the in-memory FAKE queue until issue 5 lands)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST
from sse import sse_events

from kb_assistant.apikeys import ApiKeyStore
from kb_assistant.db import sqlite_url
from ui.server import build_app


@pytest.fixture
def client(sample_assistant):
    with TestClient(build_app(sample_assistant, mount_ui=False)) as c:
        yield c


@pytest.fixture
def keyed(sample_assistant, tmp_path):
    """The sample server with its API keys in a database of this test's own."""
    settings = sample_assistant.settings.model_copy(update={"database_url": sqlite_url(tmp_path / "keys.db")})
    store = ApiKeyStore.for_settings(settings)
    with TestClient(build_app(sample_assistant, settings, mount_ui=False)) as c:
        yield c, store


# --- answers -----------------------------------------------------------------------------------------------------
def test_ask_returns_the_cited_answer_json(client):
    r = client.post("/api/ask", json={"question": "公司几点上班？", "kb": "default"})

    assert r.status_code == 200
    answer = r.json()
    assert answer["answered"] is True
    assert "10:00" in answer["text"]
    assert answer["citations"] and answer["citations"][0]["source"] == "员工手册-考勤与工时.md"
    assert f"[{answer['citations'][0]['n']}]" in answer["text"]
    assert len(answer["id"]) == 32 and answer["timings_ms"]["total"] > 0


def test_ask_stream_sends_text_deltas_then_citations_then_the_answer(client):
    r = client.post("/api/ask", json={"question": "How many days of sick leave do I get?", "stream": True})

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    names = [n for n, _ in events]
    assert names[-2:] == ["citations", "answer"] and set(names[:-2]) == {"delta"}
    answer = events[-1][1]
    assert "".join(d["text"] for n, d in events if n == "delta") == answer["text"]
    assert "12 days" in answer["text"]
    assert events[-2][1] == answer["citations"] and answer["citations"]


def test_ask_passes_history_so_a_follow_up_is_understood(client):
    history = [
        {"role": "user", "content": "How many days of annual leave do I get?"},
        {"role": "assistant", "content": "10 days [1]"},
    ]
    r = client.post("/api/ask", json={"question": "and sick leave?", "history": history})

    assert r.status_code == 200 and "12" in r.json()["text"]


def test_off_topic_question_gets_the_holding_reply_not_an_error(client, sample_assistant):
    r = client.post("/api/ask", json={"question": "What is the boiling point of tungsten on Mars?"})

    assert r.status_code == 200
    answer = r.json()
    assert answer["answered"] is False
    assert answer["text"].startswith(sample_assistant.settings.holding_reply_en)
    assert answer["ticket_id"] and answer["ticket_id"] in answer["text"]  # the ticket number is in the reply
    assert answer["citations"] == []


# --- bad input is a 4xx with a JSON message, never a 500 -------------------------------------------------------
def test_bad_requests_get_clear_json_errors(client):
    cases = {
        "empty question": ({"question": "   "}, 400, "empty"),
        "over-long question": ({"question": "x" * 5000}, 413, "KB_MAX_QUESTION_CHARS"),
        "unknown KB": ({"question": "hi", "kb": "nope"}, 404, "no knowledge base named 'nope'"),
        "impossible KB name": ({"question": "hi", "kb": "../etc"}, 400, "invalid knowledge-base name"),
        "question not a string": ({"question": 42}, 422, "question"),
        "missing question": ({"kb": "default"}, 422, "question"),
        "bad history role": ({"question": "hi", "history": [{"role": "system", "content": "x"}]}, 422, "history"),
    }
    for name, (body, status, fragment) in cases.items():
        r = client.post("/api/ask", json=body)
        assert r.status_code == status, (name, r.text)
        assert fragment in r.json()["error"]["message"], (name, r.text)
        assert r.json()["error"]["type"]

    r = client.post("/api/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


MALFORMED = [
    ("POST", "/api/ask", b""),
    ("POST", "/api/ask", b"null"),
    ("POST", "/api/ask", b"[1, 2]"),
    ("POST", "/api/ask", b'"just a string"'),
    ("POST", "/api/ask", b"\xff\xfe\x00garbage"),
    ("POST", "/api/ask", b'{"question": "hi", "stream": "maybe"}'),
    ("POST", "/api/ask", b'{"question": "hi", "history": "not a list"}'),
    ("POST", "/api/ask", b'{"question": "hi", "history": [1, 2]}'),
    ("POST", "/api/ask", b'{"question": "hi", "kb": null}'),
    ("POST", "/api/ask", b'{"question": "hi", "kb": "' + b"k" * 5000 + b'"}'),
    ("POST", "/api/ask", json.dumps({"question": {"nested": ["x"]}}).encode()),
    ("POST", "/api/ask", json.dumps({"question": "hi", "session_id": "s" * 1000}).encode()),
    ("POST", "/api/feedback", b"{}"),
    ("POST", "/api/feedback", b'{"answer_id": "x", "rating": "meh"}'),
    ("POST", "/api/feedback", b'{"answer_id": "", "rating": "up"}'),
    ("GET", "/api/tickets/" + "9" * 500, b""),
    ("GET", "/api/tickets/%00", b""),
    ("POST", "/v1/chat/completions", b"{}"),
    ("POST", "/v1/chat/completions", b'{"model": "default", "messages": []}'),
    ("POST", "/v1/chat/completions", b'{"model": "default", "messages": "hi"}'),
    ("POST", "/v1/chat/completions", b'{"model": "default", "messages": [{"role": "system", "content": "x"}]}'),
    ("POST", "/v1/chat/completions", b'{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}'),
    ("POST", "/v1/chat/completions", b'{"model": 7, "messages": [{"role": "user", "content": 7}]}'),
    ("POST", "/v1/chat/completions", b'{"model": "default", "messages": [{"role": "user", "content": ""}]}'),
    ("POST", "/v1/chat/completions", b'{"model": "default", "messages": [{"role": "user"}], "stream": true}'),
    ("GET", "/api/ask", b""),
    ("POST", "/api/nothing-here", b"{}"),
    ("GET", "/widget/demo?kb=<script>", b""),
    ("GET", "/widget/demo?lang=fr", b""),
]


def test_a_batch_of_malformed_requests_never_gets_a_500(client):
    for method, path, body in MALFORMED:
        r = client.request(method, path, content=body, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (method, path, body[:60], r.status_code, r.text[:200])
        assert r.json()["error"]["message"], (path, r.text[:200])

    # odd but valid input gets an answer (or the holding reply), not an error
    r = client.post("/api/ask", json={"question": "\u0000\u0000 ??? \ud7ff"})
    assert r.status_code == 200 and r.json()["text"]


# --- feedback and tickets, through the real human queue ------------------------------------------------------
def test_feedback_and_ticket_endpoints_reach_the_human_queue(sample_assistant, tmp_path):
    from kb_assistant.assistant import Assistant

    settings = sample_assistant.settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'queue.db'}"})
    assistant = Assistant(settings, embeddings=sample_assistant.embeddings)  # a queue of this test's own
    with TestClient(build_app(assistant, mount_ui=False)) as client:
        off_topic = client.post("/api/ask", json={"question": "Who won the 1998 chess olympiad?"}).json()
        assert off_topic["answered"] is False and off_topic["ticket_id"]

        view = client.get(f"/api/tickets/{off_topic['ticket_id']}", params={"token": off_topic["ticket_token"]})
        assert view.status_code == 200
        assert view.json()["status"] == "open" and view.json()["answer"] is None
        assistant.queue.answer(off_topic["ticket_id"], "GM Example won it.", agent="anna")
        token = {"X-Ticket-Token": off_topic["ticket_token"]}
        view = client.get(f"/api/tickets/{off_topic['ticket_id']}", headers=token).json()
        assert view["status"] == "answered" and view["answer"] == "GM Example won it."

        answered = client.post("/api/ask", json={"question": "公司几点上班？"}).json()
        up = client.post("/api/feedback", json={"answer_id": answered["id"], "rating": "up"})
        assert up.status_code == 200 and up.json()["ticket_id"] is None
        assert assistant.queue.answer_log(answered["id"]).rating == "up"
        down = client.post(
            "/api/feedback", json={"answer_id": answered["id"], "rating": "down", "comment": "we start at 9 now"}
        )
        assert down.status_code == 200 and down.json()["ticket_id"]
        ticket = assistant.queue.get(down.json()["ticket_id"])
        assert ticket.reason == "downvote" and ticket.question == "公司几点上班？"

        missing = client.get("/api/tickets/424242")
        assert missing.status_code == 404 and "424242" in missing.json()["error"]["message"]
        unknown = client.post("/api/feedback", json={"answer_id": "f" * 32, "rating": "up"})
        assert 400 <= unknown.status_code < 500 and unknown.json()["error"]["message"]


# --- API keys -------------------------------------------------------------------------------------------------------
def test_without_keys_the_api_is_open_and_with_one_it_needs_a_valid_key_scoped_to_kbs(keyed):
    client, store = keyed
    question = {"question": "How long is the LumenDesk free trial?", "kb": "sales"}
    assert client.post("/api/ask", json=question).status_code == 200  # no keys yet: open

    key, record = store.create(["sales"], name="intranet")
    r = client.post("/api/ask", json=question)
    assert r.status_code == 401 and "kb apikey create" in r.json()["error"]["message"]
    r = client.post("/api/ask", json=question, headers={"Authorization": "Bearer kb_wrong"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"

    auth = {"Authorization": f"Bearer {key}"}
    assert client.post("/api/ask", json=question, headers=auth).json()["answered"] is True
    r = client.post("/api/ask", json={"question": "公司几点上班？", "kb": "default"}, headers=auth)
    assert r.status_code == 403 and "'default'" in r.json()["error"]["message"]
    assert [m["id"] for m in client.get("/v1/models", headers=auth).json()["data"]] == ["sales"]
    chat = {"model": "default", "messages": [{"role": "user", "content": "公司几点上班？"}]}
    assert client.post("/v1/chat/completions", json=chat, headers=auth).status_code == 403

    store.revoke(record.id)  # the running server reads the table on every request
    assert client.post("/api/ask", json=question, headers=auth).status_code == 200  # no keys left: open again
    other, _ = store.create(["*"])
    assert client.post("/api/ask", json=question, headers=auth).status_code == 401
    assert client.post("/api/ask", json=question, headers={"Authorization": f"Bearer {other}"}).status_code == 200
    assert client.get("/healthz").status_code == 200  # operations endpoints stay open


def test_keys_are_stored_hashed_and_shown_once(tmp_path):
    import sqlite3

    store = ApiKeyStore(sqlite_url(tmp_path / "queue.db"))
    key, record = store.create(["hr", "sales"], name="portal")

    with sqlite3.connect(tmp_path / "queue.db") as conn:
        rows = conn.execute("SELECT id, name, kbs, hash, hint, created_at FROM api_keys").fetchall()
    assert rows == [(record.id, "portal", '["hr", "sales"]', record.hash, key[:8], record.created_at)]
    assert record.hash == hashlib.sha256(key.encode()).hexdigest() and record.kbs == ["hr", "sales"]
    assert store.check(key) == record and store.check(key + "x") is None and store.check("") is None
    for name in os.listdir(tmp_path):  # the key is nowhere in the database (its file, WAL, shared memory)
        content = (tmp_path / name).read_bytes()
        assert key.encode() not in content and key[8:20].encode() not in content, name


def test_an_unreadable_legacy_key_file_closes_the_api_instead_of_opening_it(sample_assistant, tmp_path):
    legacy = tmp_path / "apikeys.json"
    legacy.write_text('{"keys": [')  # an earlier release's keys, cut short
    settings = sample_assistant.settings.model_copy(
        update={"database_url": sqlite_url(tmp_path / "keys.db"), "api_keys_file": legacy}
    )
    with TestClient(build_app(sample_assistant, settings, mount_ui=False)) as client:
        r = client.post("/api/ask", json={"question": "How long is the LumenDesk free trial?", "kb": "sales"})
    assert r.status_code == 500 and "API keys cannot be read" in r.json()["error"]["message"]
    assert str(tmp_path) not in r.text and legacy.exists()


def test_kb_apikey_cli_creates_lists_and_revokes(settings, monkeypatch):
    from typer.testing import CliRunner

    from kb_assistant.cli import app

    monkeypatch.setenv("KB_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    created = runner.invoke(app, ["apikey", "create", "--kb", "hr", "--name", "portal"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith("kb_") and len(key) > 40
    listed = runner.invoke(app, ["apikey", "list"])
    assert "portal" in listed.stdout and "hr" in listed.stdout and key not in listed.stdout
    assert runner.invoke(app, ["apikey", "revoke", "portal"]).exit_code == 0
    assert ApiKeyStore.for_settings(settings).keys() == []
    bad = runner.invoke(app, ["apikey", "create", "--kb", "no/such"])
    assert bad.exit_code == 2 and "invalid knowledge-base name" in bad.output
    (settings.data_dir / "apikeys.json").write_text("{oops")
    broken = runner.invoke(app, ["apikey", "list"])
    assert broken.exit_code != 0 and str(settings.data_dir / "apikeys.json") in broken.output


# --- CORS, metrics, health, docs ----------------------------------------------------------------------------------
def test_cors_allows_only_the_configured_origins(sample_assistant):
    settings = sample_assistant.settings.model_copy(update={"allowed_origins": ["https://intranet.example"]})
    with TestClient(build_app(sample_assistant, settings, mount_ui=False)) as client:
        pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,authorization"}
        ok = client.options("/api/ask", headers={"Origin": "https://intranet.example", **pre})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://intranet.example"
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        evil = client.options("/api/ask", headers={"Origin": "https://evil.example", **pre})
        assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers


def test_metrics_count_requests_stages_escalations_in_prometheus_format(client):
    client.post("/api/ask", json={"question": "公司几点上班？"})
    client.post("/api/ask", json={"question": "What is the boiling point of tungsten on Mars?"})
    client.post("/api/ask", json={"question": ""})

    r = client.get("/metrics")
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    text = r.text
    assert 'kb_http_requests_total{endpoint="/api/ask",method="POST",status="200"} 2' in text
    assert 'kb_http_requests_total{endpoint="/api/ask",method="POST",status="400"} 1' in text
    assert 'kb_stage_duration_seconds_count{stage="retrieve"} 2' in text
    assert 'kb_answers_total{answered="true",kb="default"} 1' in text  # prometheus-client sorts the labels
    assert 'kb_escalations_total{kb="default",reason="low_confidence"} 1' in text
    assert "# TYPE kb_stage_duration_seconds histogram" in text and "# TYPE kb_cache_hits_total counter" in text


def test_healthz_and_openapi_document_the_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok", "knowledge_bases": ["default", "sales"]}
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ["/api/ask", "/api/feedback", "/api/tickets/{ticket_id}", "/v1/chat/completions", "/v1/models"]:
        assert path in paths
    assert "/healthz" in paths and "/metrics" in paths


def test_the_gradio_chat_is_mounted_at_the_root_beside_the_api(sample_assistant):
    with TestClient(build_app(sample_assistant)) as client:
        page = client.get("/")
        assert page.status_code == 200 and "gradio" in page.text.lower()
        assert client.get("/config").json()["title"] == "kb-assistant"
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/nothing").json()["error"]["code"] == "not_found"


def test_widget_is_served_small_with_a_demo_page(client):
    js = client.get("/widget.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert len(js.content) < 30 * 1024
    assert "innerHTML" not in js.text  # every text is set with textContent
    demo = client.get("/widget/demo?kb=sales&lang=en").text
    assert '<html lang="en">' in demo and 'data-kb="sales"' in demo and 'src="/widget.js"' in demo


def test_the_mounted_agent_console_requires_an_agent_login(sample_assistant):
    with TestClient(build_app(sample_assistant)) as client:
        for path in ("/console/config", "/console/gradio_api/info"):
            r = client.get(path)
            assert r.status_code == 401, path
            assert "kb user add" in r.text
