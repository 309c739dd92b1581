"""An answer stream as the HTTP endpoints serve it: its first event (where question and KB errors surface, as
4xx, before any header is sent), the rest drained or chained after it, and server-sent-event framing.
"""

from __future__ import annotations

import json
from typing import Any

from kb_assistant.errors import KBError
from kb_assistant.schema import Answer
from kb_assistant.settings import Settings, SettingsError
from ui.api_errors import api_error_for

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: Any, event: str | None = None) -> str:
    payload = json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


def first_event(events, settings: Settings, question: str):
    try:
        return next(events)
    except (KBError, SettingsError, NotImplementedError) as exc:
        raise api_error_for(exc, settings, question) from None


def drain(events) -> Answer:
    for event in events:
        if event.type == "final":
            return event.answer
    raise AssertionError("stream() ended without a final answer")


def chain(first, events):
    yield first
    yield from events
