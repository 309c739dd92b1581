"""Who may read a ticket: its asker, by a secret only they were given. Agents' surfaces (console, `kb queue`)
are trusted and read the queue directly.

Ticket numbers are sequential (agents and the holding reply use them), so the number is never the credential:
each escalation gets an unguessable token, returned once with the answer (or 👎) that opened it; the queue keeps
only its SHA-256. A chat session's replies are read with the session id, so a surface that shows replies must
use session ids nobody can guess or pick for someone else: the Gradio chat derives its from a random secret kept
in the browser (``chat_session_id``), and a session id a client supplies over HTTP reads nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_ticket_token() -> str:
    """A fresh token for one escalation (144 random bits, URL-safe)."""
    return secrets.token_urlsafe(18)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def token_matches(token: str | None, stored_hash: str | None) -> bool:
    """Constant-time: does ``token`` hash to ``stored_hash``?"""
    if not token or not stored_hash:
        return False
    return hmac.compare_digest(token_hash(token), stored_hash)


def new_session_secret() -> str:
    return secrets.token_urlsafe(24)


def chat_session_id(secret: str) -> str:
    """The session id the chat asks and reads replies with: derived from the browser's secret, so knowing the id
    (agents see it on tickets) does not give the secret, and ids clients pick over HTTP never collide with it."""
    return "chat-" + hashlib.sha256(("kb-assistant chat session:" + secret).encode()).hexdigest()[:32]
