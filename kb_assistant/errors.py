"""Errors a user can cause: each message names the file, field or setting and says what to do."""

from __future__ import annotations

import re


class KBError(Exception):
    """Base class; the CLI and servers show the message without a traceback."""


class QuestionError(KBError):
    pass


class UnknownKnowledgeBase(KBError):
    pass


class UnknownTicket(KBError):
    """No ticket with that id."""


class QueueUnavailable(KBError):
    """The queue database cannot be reached right now (the server answers 503: try again later)."""


_SERVER_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\")]+", re.IGNORECASE)
_SERVER_PATH = re.compile(r"(?<![\w/.:])(?:~|[A-Za-z]:)?(?:[/\\][\w.@+-]+){2,}[/\\]?")


def public_message(message: str) -> str:
    """``message`` without what only the server's operator should see: database and server URLs, file paths.
    Servers log the full message and show users this."""
    message = _SERVER_URL.sub("<server>", message)
    return _SERVER_PATH.sub("<server path>", message)
