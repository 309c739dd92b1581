"""The one server: FastAPI with the HTTP API, the OpenAI-compatible endpoint, the widget and the Gradio UIs.

Handlers parse, call ``Assistant.ask()`` / ``Assistant.stream()`` (or the human-queue calls), render. Nothing
here retrieves or answers. Every error is JSON ``{"error": {"message", "type"}}`` (the OpenAI shape, so OpenAI
clients show the message); bad input is a 4xx, never a 500.

    POST /api/ask                 the Answer JSON; stream=true: server-sent events delta… citations, answer
    POST /api/feedback            👍/👎 (+ comment) on an answer
    GET  /api/tickets/{id}        a ticket's status and the agent's answer, for its asker (?token=ticket_token)
    GET  /v1/models               each knowledge base is a model
    POST /v1/chat/completions     OpenAI-compatible, streaming too; citations in the text and in `citations`
    GET  /healthz  /metrics       liveness (checks the vector store) and Prometheus metrics
    GET  /widget.js  /widget/demo the embeddable chat widget and a page that embeds it
    /admin  /admin/api            the admin pages and their HTTP API (admins only: ui/admin_app.py)
    /console  /                   the Gradio agent console (when present) and the Gradio chat
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from uuid import uuid4

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb_assistant.apikeys import ApiKey, ApiKeyStore
from kb_assistant.assistant import Assistant
from kb_assistant.errors import (
    KBError,
    QuestionError,
    QueueUnavailable,
    UnknownKnowledgeBase,
    UnknownTicket,
    public_message,
)
from kb_assistant.schema import Answer, Citation
from kb_assistant.settings import KB_NAME_RE, Settings, SettingsError
from ui.metrics import Metrics

WIDGET_DIR = Path(__file__).parent / "widget"
log = logging.getLogger("kb_assistant.server")
SOURCES_TITLE = {"zh": "来源：", "en": "Sources:"}


# --- request bodies --------------------------------------------------------------------------------------
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


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(max_length=50)
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """The OpenAI request; sampling parameters are accepted and ignored (answers come from the KB)."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(description="A knowledge base name (GET /v1/models).")
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = Field(None, max_length=200)


# --- errors ------------------------------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code


def error_body(message: str, type_: str, code: str | None = None) -> dict:
    err = {"message": message, "type": type_}
    if code:
        err["code"] = code
    return {"error": err}


def api_error_for(exc: Exception, settings: Settings, question: str | None = None) -> ApiError:
    """The HTTP status and error type for an error a user caused; the message without server paths or URLs
    (the full one is logged here)."""
    error = _api_error_for(exc, settings, question)
    shown = public_message(error.message)
    if shown != error.message or error.status >= 500:
        log.warning("%s %s: %s", error.status, type(exc).__name__, error.message)
    error.message = shown
    return error


def _api_error_for(exc: Exception, settings: Settings, question: str | None = None) -> ApiError:
    if isinstance(exc, QueueUnavailable):
        return ApiError(503, "the ticket database is busy or unavailable: try again in a minute", "server_error",
                        "queue_unavailable")  # fmt: skip
    if isinstance(exc, QuestionError):
        too_long = question is not None and len(question.strip()) > settings.max_question_chars
        return ApiError(413 if too_long else 400, str(exc), "invalid_request_error", "invalid_question")
    if isinstance(exc, UnknownKnowledgeBase):
        return ApiError(404, str(exc), "invalid_request_error", "unknown_kb")
    if isinstance(exc, SettingsError):  # e.g. a KB name that cannot exist
        return ApiError(400, str(exc), "invalid_request_error", "invalid_kb_name")
    if isinstance(exc, UnknownTicket):
        return ApiError(404, str(exc), "invalid_request_error", "unknown_ticket")
    if isinstance(exc, NotImplementedError):
        return ApiError(501, f"not available on this server yet: {exc}", "not_implemented")
    if isinstance(exc, KBError):
        return ApiError(400, str(exc), "invalid_request_error")
    raise exc


def _validation_message(errors: list[dict]) -> tuple[int, str, str]:
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "the request body is not valid JSON", "invalid_json"
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return 422, "invalid request: " + "; ".join(parts), "invalid_request"


# --- rendering -----------------------------------------------------------------------------------------------
def sources_footer(answer: Answer) -> str:
    """'Sources:' and one line per citation, for clients that only show text."""
    if not answer.citations:
        return ""
    lines = [f"\n\n{SOURCES_TITLE[answer.language]}"]
    for c in answer.citations:
        lines.append(f"[{c.n}] {citation_label(c)}")
    return "\n".join(lines)


def citation_label(c: Citation) -> str:
    where = " · ".join(x for x in (c.section, f"p. {c.page}" if c.page else "") if x)
    return c.source + (f" — {where}" if where else "")


def strip_sources(text: str) -> str:
    for title in SOURCES_TITLE.values():
        text = text.split(f"\n\n{title}\n", 1)[0]
    return text


def message_text(content) -> str:
    """OpenAI message content (a string or a list of typed parts) as plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def sse(data: Any, event: str | None = None) -> str:
    payload = json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


# --- the app ---------------------------------------------------------------------------------------------------
def build_app(assistant: Assistant, settings: Settings | None = None, *, mount_ui: bool = True) -> FastAPI:
    settings = settings or assistant.settings
    keys = ApiKeyStore.for_settings(settings)
    metrics = Metrics(getattr(assistant, "llm_health", None))
    app = FastAPI(
        title="kb-assistant",
        version="0.1.0",
        description='Cited answers from your handbooks and FAQs. Errors: {"error": {"message", "type"}}. '
        "When API keys exist (kb apikey create), /api and /v1 need `Authorization: Bearer KEY`.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.assistant, app.state.metrics, app.state.keys = assistant, metrics, keys
    app.state.local_token = None  # set by serve(): lets `kb ingest` on this data dir hand its job to us

    # --- errors as JSON ---------------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse(error_body(exc.message, exc.type, exc.code), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        status, message, code = _validation_message(exc.errors())
        return JSONResponse(error_body(message, "invalid_request_error", code), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse(error_body(str(exc.detail), "invalid_request_error"), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):  # our bug: say so without a traceback to the client
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body(f"internal error ({type(exc).__name__})", "server_error"), status_code=500)

    # --- API keys -----------------------------------------------------------------------------------------------
    def api_key(request: Request) -> ApiKey | None:
        try:
            return _authenticate(request)
        except QueueUnavailable as exc:
            log.warning("API keys cannot be checked: %s", exc)
            raise ApiError(503, "the API key database is busy or unavailable: try again in a minute", "server_error",
                           "queue_unavailable") from None  # fmt: skip
        except KBError as exc:  # e.g. a legacy apikeys.json that cannot be imported: refuse rather than go open
            log.error("API keys cannot be checked: %s", exc)
            raise ApiError(500, "the server's API keys cannot be read: see its log", "server_error") from None

    def _authenticate(request: Request) -> ApiKey | None:
        if not keys.enabled():
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "this server needs an API key: send 'Authorization: Bearer KEY' "
                           "(an operator creates one with: kb apikey create --kb NAME)", "authentication_error",
                           "missing_api_key")  # fmt: skip
        key = keys.check(token)
        if key is None:
            raise ApiError(401, "invalid or revoked API key", "authentication_error", "invalid_api_key")
        return key

    def check_scope(key: ApiKey | None, kb: str) -> None:
        if key is not None and not key.allows(kb):
            raise ApiError(403, f"this API key may not use knowledge base {kb!r} (it may use: {', '.join(key.kbs)})",
                           "permission_error", "kb_not_allowed")  # fmt: skip

    def visible_kbs(key: ApiKey | None) -> list[str]:
        return [kb for kb in assistant.knowledge_bases() if key is None or key.allows(kb)]

    # --- /api -----------------------------------------------------------------------------------------------------
    sse_doc = {200: {"content": {"text/event-stream": {}}, "description": "The Answer, or events if stream"}}

    @app.post("/api/ask", tags=["api"], response_model=Answer, responses=sse_doc)
    def ask(body: AskRequest, key: ApiKey | None = Depends(api_key)):
        """Ask a question. With ``stream: true`` the reply is server-sent events: ``delta`` ({text}) as the answer
        is written, then ``citations`` (the list), then ``answer`` (the whole Answer, with id and ticket_id)."""
        check_scope(key, body.kb)
        events = assistant.stream(
            body.question, history=[m.model_dump() for m in body.history], kb=body.kb,
            session_id=body.session_id, user=key.id if key else None,
        )  # fmt: skip
        first = _first_event(events, settings, body.question)  # question and KB errors surface here, as 4xx
        if not body.stream:
            answer = first.answer if first.type == "final" else _drain(events)
            metrics.observe_answer(answer)
            return answer
        return StreamingResponse(_ask_events(first, events), media_type="text/event-stream", headers=_SSE_HEADERS)

    def _ask_events(first, events) -> Iterator[str]:
        try:
            for event in _chain(first, events):
                if event.type == "delta":
                    yield sse({"text": event.text}, "delta")
                else:
                    metrics.observe_answer(event.answer)
                    yield sse([c.model_dump() for c in event.answer.citations], "citations")
                    yield sse(event.answer.model_dump(mode="json"), "answer")
        except Exception as exc:  # headers are sent: report in-band
            err = _in_band_error(exc, settings)
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

    # --- /v1: OpenAI-compatible ------------------------------------------------------------------------------------
    @app.get("/v1/models", tags=["openai"])
    def models(key: ApiKey | None = Depends(api_key)):
        """Each knowledge base is a model."""
        data = [{"id": kb, "object": "model", "created": 0, "owned_by": "kb-assistant"} for kb in visible_kbs(key)]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", tags=["openai"])
    def chat_completions(body: ChatCompletionRequest, key: ApiKey | None = Depends(api_key)):
        """The last user message is the question, earlier user/assistant messages the history. The reply text
        ends with the numbered sources; ``choices[0].message.citations`` carries them as data, ``kb_answer`` the
        answer id (for /api/feedback), whether the KB answered, and the ticket."""
        kb = body.model
        check_scope(key, kb)
        turns = [(m.role, message_text(m.content)) for m in body.messages]
        last_user = max((i for i, (role, _) in enumerate(turns) if role == "user"), default=None)
        if last_user is None:
            raise ApiError(400, "messages has no 'user' message: the last one is the question",
                           "invalid_request_error", "no_question")  # fmt: skip
        question = turns[last_user][1]
        history = [{"role": r, "content": strip_sources(t)} for r, t in turns[:last_user] if r in ("user", "assistant")]
        events = assistant.stream(question, history=history, kb=kb, user=body.user or (key.id if key else None))
        first = _first_event(events, settings, question)
        created = int(time.time())
        if not body.stream:
            answer = first.answer if first.type == "final" else _drain(events)
            metrics.observe_answer(answer)
            message = {"role": "assistant", "content": answer.text + sources_footer(answer),
                       "citations": [c.model_dump() for c in answer.citations]}  # fmt: skip
            return {
                "id": f"chatcmpl-{answer.id}", "object": "chat.completion", "created": created, "model": kb,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": _usage(answer), "kb_answer": _kb_answer(answer),
            }  # fmt: skip
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        chunks = _completion_chunks(first, events, kb, created, include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=_SSE_HEADERS)

    def _completion_chunks(first, events, kb: str, created: int, include_usage: bool) -> Iterator[str]:
        base = {"id": f"chatcmpl-{uuid4().hex}", "object": "chat.completion.chunk", "created": created, "model": kb}

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, **extra}
            return "data: " + json.dumps({**base, "choices": [choice]}, ensure_ascii=False) + "\n\n"

        yield chunk({"role": "assistant", "content": ""})
        try:
            for event in _chain(first, events):
                if event.type == "delta":
                    yield chunk({"content": event.text})
                    continue
                answer = event.answer
                metrics.observe_answer(answer)
                citations = [c.model_dump() for c in answer.citations]
                if answer.citations:
                    yield chunk({"content": sources_footer(answer)})
                final = {**base, "kb_answer": _kb_answer(answer),
                         "choices": [{"index": 0, "delta": {"citations": citations}, "finish_reason": "stop",
                                      "citations": citations}]}  # fmt: skip
                yield "data: " + json.dumps(final, ensure_ascii=False) + "\n\n"
                if include_usage:
                    yield "data: " + json.dumps({**base, "choices": [], "usage": _usage(answer)}) + "\n\n"
        except Exception as exc:
            err = _in_band_error(exc, settings)
            yield "data: " + json.dumps(error_body(err.message, err.type, err.code), ensure_ascii=False) + "\n\n"
        yield "data: [DONE]\n\n"

    # --- operations ---------------------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["operations"])
    def healthz():
        """200 when every knowledge base answers a real (cheap) vector-store probe, 503 otherwise, naming it."""
        try:
            kbs = assistant.knowledge_bases()
            for kb in kbs:
                probe_kb(assistant, kb)
        except Exception as exc:  # the store is down, or a KB would fail its questions: that is what this is for
            log.warning("healthz: %s: %s", type(exc).__name__, exc)
            return JSONResponse({"status": "error", "error": public_message(f"{type(exc).__name__}: {exc}")},
                                status_code=503)  # fmt: skip
        return {"status": "ok", "knowledge_bases": kbs}

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus_metrics():
        """Prometheus text format."""
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # --- the widget -------------------------------------------------------------------------------------------------
    @app.get("/widget.js", tags=["widget"], include_in_schema=False)
    def widget_js():
        return FileResponse(WIDGET_DIR / "widget.js", media_type="text/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})  # fmt: skip

    @app.get("/widget/demo", tags=["widget"], response_class=HTMLResponse)
    def widget_demo(
        kb: str = "default",
        lang: Literal["zh", "en"] = "zh",
        key: str = Query("", max_length=200),
        poll_ms: int = Query(10000, ge=1000, le=600_000),
    ):
        """A page that embeds the widget with one script tag (``?kb=sales&lang=en``)."""
        if not KB_NAME_RE.match(kb):
            raise ApiError(400, f"invalid knowledge-base name {kb!r}", "invalid_request_error", "invalid_kb_name")
        page = (WIDGET_DIR / "demo.html").read_text(encoding="utf-8")
        for name, value in (("LANG", lang), ("KB", kb), ("KEY", key), ("POLL_MS", str(poll_ms))):
            page = page.replace("{{" + name + "}}", html.escape(value, quote=True))
        return HTMLResponse(page)

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

    # registered last, so the routes above match first
    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    def _no_such_endpoint(rest: str):  # JSON, not the chat UI's HTML 404
        raise ApiError(404, "no such endpoint: see /api/docs", "invalid_request_error", "not_found")

    # --- middleware: metrics inside, CORS outside (it answers pre-flight requests) ------------------------------
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    uploads = max(settings.max_request_bytes, int(settings.max_file_mb * 1e6) * ADMIN_UPLOAD_FILES)
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_request_bytes,
                       larger={p: uploads for p in ADMIN_UPLOAD_PATHS})  # fmt: skip
    origins = settings.allowed_origins
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"] if "*" in origins else origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Ticket-Token"],
        max_age=600,
    )

    if mount_ui:
        mount_gradio_uis(app, assistant)
    return app


_TICKET_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _first_event(events, settings: Settings, question: str):
    try:
        return next(events)
    except (KBError, SettingsError, NotImplementedError) as exc:
        raise api_error_for(exc, settings, question) from None


def _drain(events) -> Answer:
    for event in events:
        if event.type == "final":
            return event.answer
    raise AssertionError("stream() ended without a final answer")


def _chain(first, events):
    yield first
    yield from events


def _in_band_error(exc: Exception, settings: Settings) -> ApiError:
    try:
        return api_error_for(exc, settings)
    except Exception:
        return ApiError(500, f"internal error ({type(exc).__name__})", "server_error")


def _usage(answer: Answer) -> dict:
    p = answer.usage.prompt_tokens if answer.usage else 0
    c = answer.usage.completion_tokens if answer.usage else 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _kb_answer(answer: Answer) -> dict:
    return {
        "answer_id": answer.id, "answered": answer.answered, "confidence": answer.confidence,
        "ticket_id": answer.ticket_id, "ticket_token": answer.ticket_token,
        "escalation_reason": answer.escalation_reason, "cached": answer.cached,
        "language": answer.language,
    }  # fmt: skip


# the admin's document uploads (signed-in admins only) may carry files up to KB_MAX_FILE_MB, several per request
ADMIN_UPLOAD_PATHS = ("/admin/gradio_api/upload", "/admin/api/kbs/")
ADMIN_UPLOAD_FILES = 10


class BodySizeLimitMiddleware:
    """Refuses request bodies over ``KB_MAX_REQUEST_BYTES`` with 413: by Content-Length before reading, else
    (a chunked body) by counting while it is read here, before the app sees any of it."""

    def __init__(self, app, limit: int, larger: dict[str, int] | None = None):
        self.app, self.limit, self.larger = app, limit, larger or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next((n for prefix, n in self.larger.items() if path.startswith(prefix)), self.limit)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(send, limit)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await self._refuse(send, limit)
                return
            if not message.get("more_body"):
                break
        replayed = [False]

        async def replay():
            if not replayed[0]:
                replayed[0] = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # later calls wait for the disconnect, as streaming responses do

        await self.app(scope, replay, send)

    async def _refuse(self, send, limit: int) -> None:
        setting = "KB_MAX_REQUEST_BYTES" if limit == self.limit else f"{ADMIN_UPLOAD_FILES} × KB_MAX_FILE_MB"
        body = json.dumps(error_body(
            f"the request body is over the limit of {limit} bytes ({setting}): send less",
            "invalid_request_error", "request_too_large",
        )).encode()  # fmt: skip
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class RequestMetricsMiddleware:
    """Counts requests by route template (not raw path: ticket ids must not become label values)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None)
            if path is None or "{rest:path}" in path:
                endpoint = "other"
            elif path in ("", "/") or not path.startswith(("/api", "/v1", "/healthz", "/metrics", "/widget")):
                endpoint = "ui"
            else:
                endpoint = path
            self.metrics.observe_request(endpoint, scope.get("method", ""), status[0], time.perf_counter() - start)


def mount_gradio_uis(app, assistant: Assistant) -> None:
    """The admin pages at /admin, the agent console at /console (agents log in) and the chat at /."""
    import gradio as gr

    from ui.admin_app import mount_admin
    from ui.chat import build_chat_app
    from ui.console import build_console_app, console_auth

    mount_admin(app, assistant)  # /admin/api and the admin pages at /admin
    gr.mount_gradio_app(
        app, build_console_app(assistant), path="/console", footer_links=[], auth=console_auth(assistant.queue),
        auth_message="kb-assistant agent console: sign in as an agent (kb user add NAME --role agent)",
    )  # fmt: skip
    chat = build_chat_app(assistant).queue(default_concurrency_limit=8)
    gr.mount_gradio_app(app, chat, path="/", footer_links=[])


class KnowledgeBaseUnhealthy(Exception):
    pass


_STARTED_AT = time.time()


def probe_kb(assistant: Assistant, kb: str) -> None:
    """What a question does, cheaply: the collection answers a nearest-neighbour query with one of its own
    vectors. With embedded Chroma, a KB version published by another process is refused too: this process's
    Chroma cannot see what that process wrote, so questions reaching it would fail."""
    index = assistant.index(kb)
    state = index.state()
    writer = state.get("writer_pid")
    if (
        not assistant.settings.chroma_url
        and writer not in (None, os.getpid())
        and float(state.get("published_at", 0)) > _STARTED_AT
    ):
        raise KnowledgeBaseUnhealthy(
            f"knowledge base {kb!r} was changed by another process (pid {writer}) while this server runs on "
            "embedded Chroma: restart the server; ingest through it (kb ingest does while it runs) or use "
            "KB_CHROMA_URL"
        )
    index.vectors.probe()


def warm_up(assistant: Assistant) -> None:
    """Load the model and every KB's indexes before the first user waits (and before threads race to)."""
    assistant.embeddings  # noqa: B018
    assistant.chat_model  # noqa: B018 - the LLM client, when one is configured
    for kb in assistant.knowledge_bases():
        assistant.index(kb)


def serve(settings: Settings) -> None:
    """`kb serve`: everything on one port."""
    import uvicorn

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ingest.handoff import registered_server

    assistant = Assistant(settings)
    with registered_server(settings, settings.port) as local_token:  # `kb ingest` elsewhere hands its job to us
        warm_up(assistant)
        app = build_app(assistant, settings)
        app.state.local_token = local_token
        print(f"kb-assistant on http://{settings.host}:{settings.port}  (API docs: /api/docs, widget demo: "
              "/widget/demo)", flush=True)  # fmt: skip
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5)


@contextmanager
def running(app, host: str = "127.0.0.1"):
    """Run ``app`` with uvicorn in a background thread on a free port; yields the base URL. For tests and
    benchmark scripts that need a real HTTP server in-process."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
