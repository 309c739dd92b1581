"""The /api routes: ask (JSON or server-sent events), feedback on an answer, a ticket for its asker, and the
local-only endpoint that runs a `kb ingest` handed to this server (``ingest.handoff``). Handlers parse, call the
Assistant, render; ``ui.server`` wires them into the app.

    POST /api/ask                 the Answer JSON; stream=true: server-sent events delta… citations, answer
    POST /api/feedback            👍/👎 (+ comment) on an answer
    GET  /api/tickets/{id}        a ticket's status and the agent's answer, for its asker (?token=ticket_token)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from kb_assistant.apikeys import ApiKey
from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError
from kb_assistant.schema import Answer
from kb_assistant.settings import Settings, SettingsError
from ui.answer_stream import SSE_HEADERS, chain, drain, first_event, sse
from ui.api_auth import check_scope
from ui.api_errors import ApiError, api_error_for, error_body, in_band_error
from ui.metrics import Metrics
from ui.principal import principal_of_request

_TICKET_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class HistoryMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class AskRequest(BaseModel):
    question: str = Field(description="The question, in Chinese or English.")
    kb: str = Field("default", description="Knowledge base name.")
    history: list[HistoryMessage] = Field([], max_length=50, description="Earlier turns, oldest first.")
    session_id: str | None = Field(None, max_length=200, description="Groups a user's turns (and tickets).")
    stream: bool = Field(False, description="Server-sent events: delta…, citations, answer.")


class FeedbackRequest(BaseModel):
    answer_id: str = Field(min_length=1, max_length=100, description="Answer.id of the answer rated.")
    rating: Literal["up", "down"]
    comment: str = Field("", max_length=4000)
    session_id: str | None = Field(None, max_length=200)


class LocalIngestRequest(BaseModel):
    """A `kb ingest` handed to this server by another process on the same machine (ingest/handoff.py)."""

    paths: list[str] = Field([], max_length=10_000)
    kb: str = "default"
    full: bool = False
    all: bool = False
    forget: bool = False


def add_api_routes(app: FastAPI, assistant: Assistant, settings: Settings, metrics: Metrics, api_key: Callable) -> None:
    """POST /api/ask, POST /api/feedback, GET /api/tickets/{id}; ``api_key`` is the API-key dependency."""
    sse_doc = {200: {"content": {"text/event-stream": {}}, "description": "The Answer, or events if stream"}}

    @app.post("/api/ask", tags=["api"], response_model=Answer, responses=sse_doc)
    def ask(body: AskRequest, request: Request, key: ApiKey | None = Depends(api_key)):
        """Ask a question. With ``stream: true`` the reply is server-sent events: ``delta`` ({text}) as the answer
        is written, then ``citations`` (the list), then ``answer`` (the whole Answer, with id and ticket_id)."""
        check_scope(key, body.kb)
        events = assistant.stream(
            body.question, history=[m.model_dump() for m in body.history], kb=body.kb,
            session_id=body.session_id, principal=principal_of_request(settings, request, key),
        )  # fmt: skip
        first = first_event(events, settings, body.question)  # question and KB errors surface here, as 4xx
        if not body.stream:
            answer = first.answer if first.type == "final" else drain(events)
            metrics.observe_answer(answer)
            return answer
        return StreamingResponse(_ask_events(first, events), media_type="text/event-stream", headers=SSE_HEADERS)

    def _ask_events(first, events) -> Iterator[str]:
        try:
            for event in chain(first, events):
                if event.type == "delta":
                    yield sse({"text": event.text}, "delta")
                else:
                    metrics.observe_answer(event.answer)
                    yield sse([c.model_dump() for c in event.answer.citations], "citations")
                    yield sse(event.answer.model_dump(mode="json"), "answer")
        except Exception as exc:  # headers are sent: report in-band
            err = in_band_error(exc, settings)
            yield sse(error_body(err.message, err.type, err.code), "error")

    @app.post("/api/feedback", tags=["api"])
    def feedback(body: FeedbackRequest, key: ApiKey | None = Depends(api_key)):
        """👍/👎 on an answer (its ``id``); a 👎 with a comment reaches the human queue."""
        try:
            result = assistant.feedback(body.answer_id, body.rating, body.comment, session_id=body.session_id)
        except (KBError, NotImplementedError) as exc:
            raise api_error_for(exc, settings) from None
        return result.model_dump(mode="json")

    @app.get("/api/tickets/{ticket_id}", tags=["api"])
    def ticket(
        request: Request,
        ticket_id: str,
        token: str = Query("", max_length=200, description="The ticket_token of the answer that opened it."),
        key: ApiKey | None = Depends(api_key),
    ):
        """A ticket's status and, once an agent has answered, the answer: for its asker only, who sends the
        ``ticket_token`` that came with the answer (or 👎) that opened it, as ``?token=`` or ``X-Ticket-Token``.
        Without it, or with another's, the ticket reads as unknown (404)."""
        if not _TICKET_ID.match(ticket_id):
            raise ApiError(404, "no such ticket", "invalid_request_error", "unknown_ticket")
        token = token or request.headers.get("x-ticket-token", "")
        try:
            view = assistant.ticket(ticket_id, token)
        except (KBError, NotImplementedError) as exc:
            raise api_error_for(exc, settings) from None
        check_scope(key, view.kb)
        return view.model_dump(mode="json")


def add_local_ingest_route(app: FastAPI, assistant: Assistant, settings: Settings) -> None:
    """POST /api/local/ingest: only from this machine, with the token ``serve()`` put in ``app.state.local_token``."""

    @app.post("/api/local/ingest", include_in_schema=False)
    def local_ingest(request: Request, body: LocalIngestRequest):
        """`kb ingest` from another process on this machine: run it here, the one writer of embedded Chroma."""
        from ingest.handoff import TOKEN_HEADER, token_ok
        from ingest.pipeline import run_handed_off

        client = request.client.host if request.client else ""
        if client not in ("127.0.0.1", "::1") or not token_ok(app.state.local_token, request.headers.get(TOKEN_HEADER)):
            raise ApiError(403, "only `kb ingest` on this machine, with the server's local token, may ingest here",
                           "permission_error", "not_local")  # fmt: skip
        try:
            reports = run_handed_off(settings, body.model_dump(), embeddings=assistant.embeddings)
        except (KBError, SettingsError) as exc:
            raise ApiError(400, str(exc), "invalid_request_error", "ingest_refused") from None
        return {"reports": [r.model_dump(mode="json") for r in reports]}
