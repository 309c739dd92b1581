"""The OpenAI-compatible endpoint: each knowledge base is a model; chat completions (streaming too) answer the last
user message from the KB, with the numbered sources in the text, ``citations`` as data and ``kb_answer`` (answer id,
whether the KB answered, the ticket). ``ui.server`` wires the routes into the app.

    GET  /v1/models               each knowledge base is a model
    POST /v1/chat/completions     OpenAI-compatible, streaming too; citations in the text and in `citations`
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from kb_assistant.apikeys import ApiKey
from kb_assistant.assistant import Assistant
from kb_assistant.schema import Answer, Citation
from kb_assistant.settings import Settings
from ui.answer_stream import SSE_HEADERS, chain, drain, first_event
from ui.api_auth import check_scope, visible_kbs
from ui.api_errors import ApiError, error_body, in_band_error
from ui.metrics import Metrics
from ui.principal import principal_of_request

SOURCES_TITLE = {"zh": "来源：", "en": "Sources:"}


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


def add_openai_routes(
    app: FastAPI, assistant: Assistant, settings: Settings, metrics: Metrics, api_key: Callable
) -> None:
    """GET /v1/models and POST /v1/chat/completions; ``api_key`` is the API-key dependency."""

    @app.get("/v1/models", tags=["openai"])
    def models(request: Request, key: ApiKey | None = Depends(api_key)):
        """Each knowledge base the caller may use is a model."""
        data = [
            {"id": kb, "object": "model", "created": 0, "owned_by": "kb-assistant"}
            for kb in visible_kbs(assistant, key, principal_of_request(settings, request, key))
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", tags=["openai"])
    def chat_completions(body: ChatCompletionRequest, request: Request, key: ApiKey | None = Depends(api_key)):
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
        principal = principal_of_request(settings, request, key, user=body.user)
        events = assistant.stream(question, history=history, kb=kb, principal=principal)
        first = first_event(events, settings, question)
        created = int(time.time())
        if not body.stream:
            answer = first.answer if first.type == "final" else drain(events)
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
        return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)

    def _completion_chunks(first, events, kb: str, created: int, include_usage: bool) -> Iterator[str]:
        base = {"id": f"chatcmpl-{uuid4().hex}", "object": "chat.completion.chunk", "created": created, "model": kb}

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, **extra}
            return "data: " + json.dumps({**base, "choices": [choice]}, ensure_ascii=False) + "\n\n"

        yield chunk({"role": "assistant", "content": ""})
        try:
            for event in chain(first, events):
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
            err = in_band_error(exc, settings)
            yield "data: " + json.dumps(error_body(err.message, err.type, err.code), ensure_ascii=False) + "\n\n"
        yield "data: [DONE]\n\n"


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
