"""API keys on /api and /v1: the FastAPI dependency that checks ``Authorization: Bearer KEY`` (open while no key
exists; 401 without or with a bad key; 503/500 when the key database cannot be read, never open), and a key's
knowledge-base scope.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import Request

from kb_assistant.apikeys import ApiKey, ApiKeyStore
from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError, QueueUnavailable
from kb_assistant.schema import Principal
from ui.api_errors import ApiError

log = logging.getLogger("kb_assistant.server")


def api_key_dependency(keys: ApiKeyStore) -> Callable[[Request], ApiKey | None]:
    """The dependency the /api and /v1 routes take: the request's API key, or None when the server has none."""

    def api_key(request: Request) -> ApiKey | None:
        try:
            return _authenticate(keys, request)
        except QueueUnavailable as exc:
            log.warning("API keys cannot be checked: %s", exc)
            raise ApiError(503, "the API key database is busy or unavailable: try again in a minute", "server_error",
                           "queue_unavailable") from None  # fmt: skip
        except KBError as exc:  # e.g. a legacy apikeys.json that cannot be imported: refuse rather than go open
            log.error("API keys cannot be checked: %s", exc)
            raise ApiError(500, "the server's API keys cannot be read: see its log", "server_error") from None

    return api_key


def _authenticate(keys: ApiKeyStore, request: Request) -> ApiKey | None:
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


def visible_kbs(assistant: Assistant, key: ApiKey | None, principal: Principal | None = None) -> list[str]:
    """The KBs offered: those the principal may use (``kb access``; None: every KB) that the key allows."""
    return [kb for kb in assistant.knowledge_bases(principal) if key is None or key.allows(kb)]
