"""Errors as the HTTP API shows them: ``ApiError`` (status, message, type, code), the OpenAI-shaped JSON body
``{"error": {"message", "type", "code"}}``, the mapping from our exceptions to 4xx/5xx (messages without server
paths or URLs; the full one is logged), and the app's exception handlers, so bad input is a 4xx and never a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb_assistant.errors import (
    KBError,
    QuestionError,
    QueueUnavailable,
    UnknownKnowledgeBase,
    UnknownTicket,
    public_message,
)
from kb_assistant.settings import Settings, SettingsError

log = logging.getLogger("kb_assistant.server")


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
    from kb_assistant.embedding_service import EmbeddingServiceError
    from kb_assistant.embeddings import EmbeddingModelError

    if isinstance(exc, EmbeddingServiceError | EmbeddingModelError):  # the server's setup, not the question
        return ApiError(503, f"cannot embed the question: {exc}", "server_error", "embeddings_unavailable")
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


def in_band_error(exc: Exception, settings: Settings) -> ApiError:
    """The error to send inside a response whose headers are gone (a stream): a bug becomes a 500-type error."""
    try:
        return api_error_for(exc, settings)
    except Exception:
        return ApiError(500, f"internal error ({type(exc).__name__})", "server_error")


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app raises answers as the JSON error body: ours, validation, HTTP (404, 405) and bugs."""

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
