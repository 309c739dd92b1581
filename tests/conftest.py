"""Shared fixtures: every test gets a temporary data dir; the real model and real Chroma are loaded once.

Network beyond 127.0.0.1 is blocked for the whole run: a test that tries to reach a model hub fails loudly.
"""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")
for var in [v for v in os.environ if v.startswith("KB_") and not v.startswith("KB_TEST_")]:  # no leaks from a shell
    del os.environ[var]


@pytest.fixture(autouse=True, scope="session")
def _block_outbound_network():
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        inet = sock.family in (socket.AF_INET, socket.AF_INET6)
        if inet and isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")):
            raise ConnectionRefusedError(f"test tried to reach {address}: only 127.0.0.1 is allowed")
        return real_connect(sock, address)

    socket.socket.connect = guarded
    yield
    socket.socket.connect = real_connect


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from kb_assistant.settings import Settings

    monkeypatch.chdir(tmp_path)  # no stray ./data or .env from the developer's folder
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def embeddings():
    from kb_assistant.embeddings import make_embeddings
    from kb_assistant.settings import Settings

    return make_embeddings(Settings())


@pytest.fixture(scope="session")
def sample_data_dir(tmp_path_factory, embeddings):
    """The bundled sample KBs, ingested once for the session into their own data dir."""
    from ingest.pipeline import ensure_sample_kbs
    from kb_assistant.settings import Settings

    data_dir = tmp_path_factory.mktemp("sample") / "data"
    reports = ensure_sample_kbs(Settings(data_dir=data_dir), say=lambda m: None)
    assert {r.kb for r in reports} == {"default", "sales"}
    assert all(r.ok for r in reports), [r.failed for r in reports]
    return data_dir


@pytest.fixture(scope="session")
def sample_assistant(sample_data_dir, embeddings):
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings

    # Shared by many tests: the semantic cache would serve one test's answer to the next (tests/test_cache.py
    # tests it on KBs of its own).
    return Assistant(Settings(data_dir=sample_data_dir, cache_enabled=False), embeddings=embeddings)


# --- serving -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live_server():
    """Runs apps with uvicorn on 127.0.0.1 (a free port) in a background thread: ``base_url = live_server(app)``.
    Servers stop at the end of the module."""
    from contextlib import ExitStack

    from ui.server import running

    with ExitStack() as stack:
        yield lambda app: stack.enter_context(running(app))


class InMemoryQueueAssistant:
    """A FAKE over the human-queue contract (Assistant.feedback/ticket and Answer.ticket_id), kept in memory.

    Issue 5 implements the queue for real; until then this lets the HTTP API and the widget be tested against
    the contract: an unanswered question opens a ticket, 👎 with a comment opens one, an agent answer is set with
    ``answer_ticket``. Everything else is the real Assistant (built by ``make_queue_fake`` below)."""

    def _init_queue(self):
        import threading

        self.tickets: dict = {}
        self.feedbacks: list = []
        self.answers: dict = {}
        self._queue_lock = threading.Lock()

    def stream(self, question, **kwargs):
        for event in super().stream(question, **kwargs):
            if event.type == "final":
                answer = event.answer
                self.answers[answer.id] = answer
                if not answer.answered:
                    answer.ticket_id = self._open(answer.kb, answer.question, answer.escalation_reason or "")
            yield event

    def feedback(self, answer_id, rating, comment="", session_id=None):
        from kb_assistant.errors import KBError
        from kb_assistant.schema import Feedback

        answer = self.answers.get(answer_id)
        if answer is None:
            raise KBError(f"no answer with id {answer_id!r}")
        ticket_id = None
        if rating == "down" and comment:
            ticket_id = self._open(answer.kb, answer.question, f"thumbs_down: {comment}")
        fb = Feedback(answer_id=answer_id, rating=rating, comment=comment, ticket_id=ticket_id)
        self.feedbacks.append(fb)
        return fb

    def ticket(self, ticket_id):
        from kb_assistant.errors import UnknownTicket

        if ticket_id not in self.tickets:
            raise UnknownTicket(f"no ticket {ticket_id!r}")
        return self.tickets[ticket_id]

    def answer_ticket(self, ticket_id, text):
        view = self.tickets[ticket_id]
        self.tickets[ticket_id] = view.model_copy(
            update={"status": "answered", "answer": text, "answered_at": "2026-11-01T10:00:00+00:00"}
        )

    def _open(self, kb, question, reason):
        from kb_assistant.schema import TicketView

        with self._queue_lock:
            ticket_id = str(1000 + len(self.tickets))
            self.tickets[ticket_id] = TicketView(
                id=ticket_id, kb=kb, question=question, status="open", reason=reason,
                created_at="2026-11-01T09:00:00+00:00",
            )  # fmt: skip
        return ticket_id


@pytest.fixture
def queue_fake_assistant(sample_assistant):
    """A real Assistant over the sample KBs with the in-memory FAKE human queue above."""
    from kb_assistant.assistant import Assistant

    cls = type("InMemoryQueueFakeAssistant", (InMemoryQueueAssistant, Assistant), {})
    fake = cls(sample_assistant.settings, embeddings=sample_assistant.embeddings)
    fake._init_queue()
    return fake
