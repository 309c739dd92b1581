"""The queue database: tickets, the requests that opened or joined them, the answer log, agents, API keys;
and how tickets are named (``T-000123``, a provisional ``P-…`` ref while the database is down).

SQLAlchemy 2 typed models. The schema changes only through Alembic migrations (``migrations/versions``),
append-only; ``TicketQueue`` runs them on start.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from kb_assistant.errors import UnknownTicket

OPEN_STATUSES = ("open", "claimed")
_TICKET_ID = re.compile(r"^\s*#?\s*(?:T-?)?0*(\d{1,12})\s*$", re.IGNORECASE)
_REF = re.compile(r"^\s*P-[0-9a-f]{10}\s*$")
# Python None is SQL NULL, not the JSON text 'null' (which ``IS NOT NULL`` admits): for optional JSON columns
NULLABLE_JSON = JSON(none_as_null=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict: JSON, list: JSON}


class Ticket(Base):
    """One question for a person. Near-identical open questions join it as further requests."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kb: Mapped[str] = mapped_column(String(63), index=True)
    question: Mapped[str] = mapped_column(Text)
    standalone_question: Mapped[str] = mapped_column(Text, default="")
    normalized: Mapped[str] = mapped_column(String(500), index=True)  # for grouping identical questions
    language: Mapped[str] = mapped_column(String(8), default="en")
    reason: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="open")  # open|claimed|answered|closed
    resolution: Mapped[str | None] = mapped_column(String(32))  # answered | not_ours
    conversation: Mapped[list] = mapped_column(default=list)
    passages: Mapped[list] = mapped_column(default=list)
    embedding: Mapped[list | None] = mapped_column(NULLABLE_JSON)
    bad_answer: Mapped[str | None] = mapped_column(Text)  # the answer a 👎 complained about
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(100))
    promoted_source: Mapped[str | None] = mapped_column(String(200))
    # the askers' access groups, "a,b" ("": none): only questions of one scope share a ticket (migration 0006)
    scope: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_at: Mapped[datetime | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    promoted_at: Mapped[datetime | None] = mapped_column()

    requests: Mapped[list[TicketRequest]] = relationship(
        back_populates="ticket", order_by="TicketRequest.id", cascade="all, delete-orphan"
    )


class TicketRequest(Base):
    """One escalation: who asked, in which session, in their words. Several may share a ticket."""

    __tablename__ = "ticket_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    ref: Mapped[str | None] = mapped_column(String(40), unique=True)  # provisional id given while the DB was down
    question: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(32))
    session_id: Mapped[str | None] = mapped_column(String(100), index=True)
    user: Mapped[str | None] = mapped_column(String(100))
    answer_id: Mapped[str | None] = mapped_column(String(32), index=True)
    comment: Mapped[str | None] = mapped_column(Text)
    access_hash: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the asker's token (queue/access.py)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="requests")


class AnswerLog(Base):
    """Every answer given (one insert per question): what 👍/👎 and the gap log read."""

    __tablename__ = "answer_log"
    # what the dashboard counts, in one index (migration 0007): its GROUP BYs never read the rows, whose passages
    # and embeddings make them long (in SQLite the later columns sit behind them, in overflow pages)
    __table_args__ = (Index("ix_answer_log_dashboard", "created_at", "kb", "answered", "reason", "cached", "rating",
                            "answer_ms", "prompt_tokens", "completion_tokens"),)  # fmt: skip

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # Answer.id
    kb: Mapped[str] = mapped_column(String(63), index=True)
    session_id: Mapped[str | None] = mapped_column(String(100), index=True)
    user: Mapped[str | None] = mapped_column(String(100))
    question: Mapped[str] = mapped_column(Text)
    standalone_question: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    text: Mapped[str] = mapped_column(Text, default="")
    answered: Mapped[bool] = mapped_column(Boolean, index=True)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str | None] = mapped_column(String(32))
    passages: Mapped[list] = mapped_column(default=list)
    conversation: Mapped[list] = mapped_column(default=list)
    embedding: Mapped[list | None] = mapped_column(NULLABLE_JSON)
    ticket_id: Mapped[int | None] = mapped_column(Integer)
    rating: Mapped[str | None] = mapped_column(String(8))
    feedback_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # for the admin dashboard (migration 0004)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    answer_ms: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cited: Mapped[list | None] = mapped_column()  # the sources its citations name
    scope: Mapped[str] = mapped_column(String(1000), default="", server_default="")  # the asker's groups (0006)


class AgentUser(Base):
    __tablename__ = "agent_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="agent")
    password_hash: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QueueLock(Base):
    """One row; escalations update it first, so grouping a question and opening its ticket is serialised
    across threads, processes and database servers alike."""

    __tablename__ = "queue_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counter: Mapped[int] = mapped_column(Integer, default=0)


class ApiKeyRow(Base):
    """One API key of the HTTP API (``kb_assistant/apikeys.py``): only its SHA-256 and first characters are kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public id, for `kb apikey revoke`
    name: Mapped[str] = mapped_column(Text, default="")
    kbs: Mapped[list] = mapped_column()  # knowledge bases it may use; ["*"] = all
    hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)  # sha256 hex of the key
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(40))  # ISO 8601 text, as apikeys.json kept it
    groups: Mapped[list | None] = mapped_column(nullable=True)  # the access groups its callers ask as (0006)


def format_ticket_id(number: int) -> str:
    return f"T-{number:06d}"


def parse_ticket_id(ticket_id: str) -> int | str:
    """'T-000123', 'T123', '#123' or '123' → 123; a provisional 'P-…' ref is returned as is."""
    if isinstance(ticket_id, str) and _REF.match(ticket_id):
        return ticket_id.strip()
    m = _TICKET_ID.match(str(ticket_id))
    if not m:
        raise UnknownTicket(f"{ticket_id!r} is not a ticket id: ticket ids look like T-000123 (or P-… while pending)")
    return int(m.group(1))
