"""``TicketQueue``: the human queue's store — answer log, escalation into tickets, the agent's actions, agents.

Any SQLAlchemy URL (``KB_DATABASE_URL``); by default a SQLite file in the data dir with WAL and a busy timeout,
so the chat, the console, the CLI and other processes share it. Migrations run on first use. When the database
cannot be reached, escalations (and answer-log rows) go to the spool and the user gets a provisional ticket
ref ``P-…``; the next successful access replays the spool and the ref keeps resolving to the real ticket.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from kb_assistant import db
from kb_assistant.db import sqlite_url
from kb_assistant.errors import KBError, QuestionError, QueueUnavailable, UnknownTicket
from kb_assistant.language import normalise
from kb_assistant.queue.models import (
    OPEN_STATUSES,
    AgentUser,
    AnswerLog,
    QueueLock,
    Ticket,
    TicketRequest,
    utcnow,
)
from kb_assistant.queue.spool import Spool
from kb_assistant.schema import TicketView
from kb_assistant.settings import Settings

MIGRATIONS = db.Migrations(db.MIGRATIONS_HOME / "queue")  # version table "alembic_version", as it always was
_TICKET_ID = re.compile(r"^\s*#?\s*(?:T-?)?0*(\d{1,12})\s*$", re.IGNORECASE)
_REF = re.compile(r"^\s*P-[0-9a-f]{10}\s*$")
_NUMBER = re.compile(r"\d+")
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


@dataclass
class AnswerRecord:
    """What the pipeline hands the queue for one answer: the answer-log row, and the ticket's context."""

    id: str
    kb: str
    question: str
    standalone_question: str
    language: str
    text: str
    answered: bool
    confidence: float
    reason: str | None = None
    session_id: str | None = None
    user: str | None = None
    passages: list[dict] = field(default_factory=list)
    conversation: list[dict] = field(default_factory=list)
    embedding: list[float] | None = None
    cached: bool = False
    answer_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cited: list[str] = field(default_factory=list)
    access_hash: str | None = None  # SHA-256 of the token the asker reads the ticket with (queue/access.py)


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


def normalize_question(text: str) -> str:
    """Case, width, spaces and punctuation removed: two questions equal here are the same question."""
    return normalise(text)[:500]


def database_url(settings: Settings) -> str:
    if settings.database_url and settings.database_url.strip():
        return settings.database_url.strip()
    return sqlite_url(settings.path("queue.db"))


def make_engine(url: str, busy_timeout_s: float = 10.0):
    """The queue's engine: on SQLite every transaction takes the write lock when it begins."""
    return db.engine(url, busy_timeout_s=busy_timeout_s, immediate=True)


def migrate(engine) -> None:
    """Bring the schema to the newest revision (append-only migrations, run on start)."""
    MIGRATIONS.upgrade(engine)


def unavailable_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import InterfaceError, OperationalError

    return (OperationalError, InterfaceError, QueueUnavailable)


class TicketQueue:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.url = database_url(settings)
        self.spool = Spool(settings.data_dir / "queue-spool.jsonl")
        self._migrated = False
        self._lock = threading.Lock()
        self._replaying = threading.local()

    # --- plumbing ----------------------------------------------------------------------------------
    @property
    def engine(self):
        return make_engine(self.url, self.settings.database_busy_timeout_s)

    def _session(self):
        """A session on a migrated database, the spool replayed first."""
        from sqlalchemy.orm import Session

        if not self._migrated:
            with self._lock:
                if not self._migrated:
                    migrate(self.engine)
                    self._migrated = True
        if self.spool.pending() and not getattr(self._replaying, "on", False):
            self.replay_spool()
        return Session(self.engine, expire_on_commit=False)

    def replay_spool(self) -> int:
        self._replaying.on = True
        try:
            return self.spool.replay(self._apply_spooled, unavailable_errors())
        finally:
            self._replaying.on = False

    def _apply_spooled(self, record: dict) -> None:
        kind = record.get("kind")
        if kind == "answer":
            self._write_answer(AnswerRecord(**record["answer"]), ref=record.get("ref"), replay=True)
        elif kind == "feedback":
            self._write_feedback(
                record["answer_id"], record["rating"], record.get("comment", ""), record.get("session_id"),
                ref=record.get("ref"), access_hash=record.get("access_hash"),
            )  # fmt: skip
        else:
            raise ValueError(f"unknown spool record kind {kind!r}")

    def available(self) -> bool:
        try:
            with self._session() as s:
                s.get(QueueLock, 1)
            return True
        except unavailable_errors():
            return False

    # --- what the pipeline calls -------------------------------------------------------------------
    def record(self, entry: AnswerRecord) -> str | None:
        """Log an answer; an unanswered one opens (or joins) a ticket, whose id is returned. Never raises for an
        unreachable database: the record is spooled and a provisional ref returned (None for answered ones)."""
        ref = None if entry.answered else "P-" + uuid.uuid4().hex[:10]
        try:
            return self._write_answer(entry)
        except unavailable_errors():
            self.spool.append({"kind": "answer", "ref": ref, "answer": asdict(entry)})
            return ref

    def feedback(
        self, answer_id: str, rating: str, comment: str = "", session_id: str | None = None,
        access_hash: str | None = None,
    ) -> str | None:  # fmt: skip
        """Record 👍/👎; a 👎 with a comment escalates the answer. Returns the ticket id (or provisional ref).
        ``access_hash``: of the token the asker will read that ticket with."""
        if rating not in ("up", "down"):
            raise QuestionError(f"feedback rating {rating!r} is not one of: up, down")
        comment = (comment or "").strip()
        self._check_length(comment, "feedback comment")
        escalates = rating == "down" and bool(comment)
        try:
            return self._write_feedback(answer_id, rating, comment, session_id, access_hash=access_hash)
        except unavailable_errors():
            ref = "P-" + uuid.uuid4().hex[:10] if escalates else None
            self.spool.append(
                {"kind": "feedback", "ref": ref, "answer_id": answer_id, "rating": rating, "comment": comment,
                 "session_id": session_id, "access_hash": access_hash}
            )  # fmt: skip
            return ref

    def _write_answer(self, entry: AnswerRecord, ref: str | None = None, replay: bool = False) -> str | None:
        with self._session() as s, s.begin():
            # An answered question's id is a fresh uuid: only a replayed spool record can already be there. Skipping
            # the look-up saves a third of the log write that every answer, a cache hit too, pays. An unanswered
            # one is looked up (its ticket is returned again).
            recorded = s.get(AnswerLog, entry.id) if (replay or not entry.answered) else None
            if recorded is not None:
                return format_ticket_id(recorded.ticket_id) if not entry.answered else None
            row = AnswerLog(
                id=entry.id, kb=entry.kb, session_id=entry.session_id, user=entry.user, question=entry.question,
                standalone_question=entry.standalone_question, language=entry.language, text=entry.text,
                answered=entry.answered, confidence=entry.confidence, reason=entry.reason, passages=entry.passages,
                conversation=entry.conversation, embedding=None if entry.answered else entry.embedding,
                cached=entry.cached, answer_ms=entry.answer_ms, prompt_tokens=entry.prompt_tokens,
                completion_tokens=entry.completion_tokens, cited=entry.cited,
            )  # fmt: skip
            s.add(row)
            if entry.answered:
                return None
            ticket = self._escalate(
                s, kb=entry.kb, question=entry.question, standalone=entry.standalone_question,
                language=entry.language, reason=entry.reason or "low_confidence", conversation=entry.conversation,
                passages=entry.passages, embedding=entry.embedding, session_id=entry.session_id, user=entry.user,
                answer_id=entry.id, ref=ref, access_hash=entry.access_hash,
            )  # fmt: skip
            row.ticket_id = ticket.id
            return format_ticket_id(ticket.id)

    def _write_feedback(
        self, answer_id: str, rating: str, comment: str, session_id: str | None, ref: str | None = None,
        access_hash: str | None = None,
    ) -> str | None:  # fmt: skip
        with self._session() as s, s.begin():
            row = s.get(AnswerLog, answer_id)
            if row is None:
                raise KBError(f"no answer with id {answer_id!r} in the answer log: feedback needs the id of an answer")
            if ref and s.query(TicketRequest).filter_by(ref=ref).first():  # replayed twice
                return ref
            row.rating, row.feedback_comment = rating, comment or row.feedback_comment
            if rating != "down" or not comment:
                return None
            ticket = self._escalate(
                s, kb=row.kb, question=row.question, standalone=row.standalone_question, language=row.language,
                reason="downvote", conversation=row.conversation, passages=row.passages, embedding=row.embedding,
                session_id=session_id or row.session_id, user=row.user, answer_id=row.id, ref=ref, comment=comment,
                bad_answer=row.text if row.answered else None, access_hash=access_hash,
            )  # fmt: skip
            row.ticket_id = row.ticket_id or ticket.id
            return format_ticket_id(ticket.id)

    def _escalate(self, s, *, kb, question, standalone, language, reason, conversation, passages, embedding,
                  session_id, user, answer_id, ref=None, comment=None, bad_answer=None,
                  access_hash=None) -> Ticket:  # fmt: skip
        from sqlalchemy import update

        # the lock row first: grouping (read) and opening a ticket (write) must not interleave with another's
        s.execute(update(QueueLock).where(QueueLock.id == 1).values(counter=QueueLock.counter + 1))
        normalized = normalize_question(standalone or question)
        ticket = self._open_group(s, kb, normalized, standalone or question, embedding)
        if ticket is None:
            # a bare "转人工" is not the question: the one it refers to (kept as the standalone form) is
            title = standalone if reason == "handoff" and standalone else question
            ticket = Ticket(
                kb=kb, question=title, standalone_question=standalone or question, normalized=normalized,
                language=language, reason=reason, status="open", conversation=conversation, passages=passages,
                embedding=embedding, bad_answer=bad_answer,
            )  # fmt: skip
            s.add(ticket)
            s.flush()
        s.add(
            TicketRequest(
                ticket_id=ticket.id, ref=ref, question=question, reason=reason, session_id=session_id, user=user,
                answer_id=answer_id, comment=comment, access_hash=access_hash,
            )
        )  # fmt: skip
        return ticket

    def _open_group(self, s, kb: str, normalized: str, text: str, embedding: list[float] | None) -> Ticket | None:
        """An open ticket asking the same thing: equal normalised text, or a near-identical meaning (embedding
        cosine over the threshold, most words shared, and the same numbers — 'form 17' is not 'form 18')."""
        from sqlalchemy import select

        open_in_kb = select(Ticket).where(Ticket.kb == kb, Ticket.status.in_(OPEN_STATUSES))
        same = s.scalars(open_in_kb.where(Ticket.normalized == normalized).order_by(Ticket.id).limit(1)).first()
        if same is not None or not embedding:
            return same
        candidates = s.scalars(
            open_in_kb.where(Ticket.embedding.is_not(None)).order_by(Ticket.id.desc()).limit(500)
        ).all()
        best, best_sim = None, self.settings.ticket_group_similarity
        for t in candidates:
            if not _is_vector(t.embedding, len(embedding)):  # a row this code did not write: not comparable
                continue
            sim = cosine(embedding, t.embedding)
            other = t.standalone_question
            if sim >= best_sim and same_numbers(text, other) and word_overlap(text, other) >= 0.5:
                best, best_sim = t, sim
        return best

    # --- reading tickets ---------------------------------------------------------------------------
    def get(self, ticket_id: str | int) -> Ticket:
        """The ticket with its requests (raises UnknownTicket; a provisional ref still in the spool raises
        QueueUnavailable)."""
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        key = parse_ticket_id(ticket_id) if not isinstance(ticket_id, int) else ticket_id
        with self._session() as s:
            if isinstance(key, str):
                req = s.scalars(select(TicketRequest).where(TicketRequest.ref == key)).first()
                key = req.ticket_id if req else None
            ticket = (
                s.scalars(select(Ticket).options(selectinload(Ticket.requests)).where(Ticket.id == key)).first()
                if key is not None
                else None
            )
        if ticket is None:
            raise UnknownTicket(f"no ticket {ticket_id!r} in the queue database ({self.url_for_humans()})")
        return ticket

    def view(self, ticket_id: str, token: str | None) -> TicketView:
        """A ticket as its asker may see it: ``token`` is the one issued with the answer (or 👎) that opened their
        request. A wrong or missing token reads exactly like an unknown ticket. While the database is down, a
        spooled escalation reads as open."""
        from kb_assistant.queue.access import token_matches

        unknown = UnknownTicket(
            f"no ticket {ticket_id!r} for this token: a ticket is read with the ticket_token that came with the "
            "answer that opened it"
        )
        parse_ticket_id(ticket_id)  # not even a ticket id: says what one looks like
        try:
            ticket = self.get(ticket_id)
        except UnknownTicket:
            raise unknown from None
        except unavailable_errors() as exc:
            for rec in self.spool.records():
                if rec.get("ref") == str(ticket_id).strip():
                    a = rec.get("answer") or {}
                    if not token_matches(token, a.get("access_hash") or rec.get("access_hash")):
                        raise unknown from None
                    return TicketView(
                        id=rec["ref"], kb=a.get("kb", ""), question=a.get("question", ""), status="open",
                        reason=a.get("reason") or "downvote", created_at=utcnow().isoformat(),
                    )  # fmt: skip
            raise QueueUnavailable(f"the queue database is unavailable ({self.url_for_humans()}): {exc}") from None
        mine = [r for r in ticket.requests if token_matches(token, r.access_hash)]
        if not mine:
            raise unknown
        opened = ticket.requests[0] is mine[0]  # else the ticket's wording is another asker's: show their own
        return ticket_view(ticket, question=None if opened else mine[0].question)

    def session_replies(self, session_id: str) -> list[TicketView]:
        """One view per escalation of the session (its own wording), oldest first."""
        from sqlalchemy import select

        with self._session() as s:
            rows = s.execute(
                select(TicketRequest, Ticket)
                .join(Ticket, Ticket.id == TicketRequest.ticket_id)
                .where(TicketRequest.session_id == session_id)
                .order_by(TicketRequest.id)
            ).all()
        seen, views = set(), []
        for req, ticket in rows:
            if ticket.id in seen:
                continue
            seen.add(ticket.id)
            views.append(ticket_view(ticket, question=req.question))
        return views

    def list_tickets(
        self,
        *,
        kb: str | None = None,
        status: str | list[str] | None = "open",
        reason: str | None = None,
        older_than: timedelta | None = None,
        newer_than: timedelta | None = None,
        limit: int | None = 500,
        offset: int = 0,
    ) -> list[Ticket]:
        """Tickets, oldest first; status 'open' means open or claimed, 'all' or None means any. A page of
        ``limit`` (None: all) from ``offset``; ``count_tickets`` with the same filters says how many there are."""
        from sqlalchemy.orm import selectinload

        q = self._tickets_where(kb, status, reason, older_than, newer_than).options(selectinload(Ticket.requests))
        q = q.order_by(Ticket.id).offset(max(0, offset))
        with self._session() as s:
            return list(s.scalars(q if limit is None else q.limit(limit)).all())

    def count_tickets(
        self,
        *,
        kb: str | None = None,
        status: str | list[str] | None = None,
        reason: str | None = None,
        older_than: timedelta | None = None,
        newer_than: timedelta | None = None,
    ) -> int:
        """How many tickets match (every ticket, by default)."""
        from sqlalchemy import func, select

        q = self._tickets_where(kb, status, reason, older_than, newer_than).subquery()
        with self._session() as s:
            return int(s.scalar(select(func.count()).select_from(q)))

    @staticmethod
    def _tickets_where(kb, status, reason, older_than, newer_than):
        from sqlalchemy import select

        q = select(Ticket)
        if status and status != "all":
            statuses = list(OPEN_STATUSES) if status == "open" else [status] if isinstance(status, str) else status
            q = q.where(Ticket.status.in_(statuses))
        if kb:
            q = q.where(Ticket.kb == kb)
        if reason:
            q = q.where(Ticket.reason == reason)
        now = utcnow()
        if older_than is not None:
            q = q.where(Ticket.created_at <= now - older_than)
        if newer_than is not None:
            q = q.where(Ticket.created_at >= now - newer_than)
        return q

    def unanswered(self, *, kb: str | None = None, since: datetime | None = None) -> list[AnswerLog]:
        """The gap log: questions the KB could not answer (handoff requests are not gaps)."""
        from sqlalchemy import or_, select

        q = select(AnswerLog).where(
            or_(AnswerLog.answered.is_(False), AnswerLog.rating == "down"),
            or_(AnswerLog.reason.is_(None), AnswerLog.reason != "handoff"),
        )
        if kb:
            q = q.where(AnswerLog.kb == kb)
        if since:
            q = q.where(AnswerLog.created_at >= since)
        with self._session() as s:
            return list(s.scalars(q.order_by(AnswerLog.created_at)).all())

    def answer_log(self, answer_id: str) -> AnswerLog | None:
        with self._session() as s:
            return s.get(AnswerLog, answer_id)

    # --- what agents do ----------------------------------------------------------------------------
    def claim(self, ticket_id: str, agent: str) -> Ticket:
        def change(t: Ticket):
            if t.status not in OPEN_STATUSES:
                raise KBError(f"ticket {format_ticket_id(t.id)} is {t.status}: only open tickets can be claimed")
            t.status, t.claimed_by, t.claimed_at = "claimed", agent, utcnow()

        return self._change(ticket_id, change)

    def answer(self, ticket_id: str, text: str, agent: str) -> Ticket:
        """Answer and close as answered: the askers see the answer the next time they look."""
        text = (text or "").strip()
        if not text:
            raise QuestionError("the answer is empty: write the answer for the user")
        self._check_length(text, "answer")

        def change(t: Ticket):
            if t.status == "closed":
                raise KBError(f"ticket {format_ticket_id(t.id)} is closed: reopen is not supported, open a new one")
            now = utcnow()
            t.answer, t.answered_by, t.answered_at = text, agent, now
            t.status, t.resolution, t.closed_at = "answered", "answered", now
            t.claimed_by = t.claimed_by or agent

        return self._change(ticket_id, change)

    def close(self, ticket_id: str, agent: str, note: str = "", resolution: str = "not_ours") -> Ticket:
        """Close without an answer from the KB's owners (not our question); an optional note goes to the user."""
        note = (note or "").strip()
        self._check_length(note, "note")

        def change(t: Ticket):
            if t.status in ("answered", "closed"):
                raise KBError(f"ticket {format_ticket_id(t.id)} is already {t.status}")
            t.status, t.resolution, t.closed_at = "closed", resolution, utcnow()
            t.answer, t.answered_by = note or None, agent

        return self._change(ticket_id, change)

    def mark_promoted(self, ticket_id: str, source: str) -> Ticket:
        def change(t: Ticket):
            t.promoted_source, t.promoted_at = source, utcnow()

        return self._change(ticket_id, change)

    def _change(self, ticket_id: str, change) -> Ticket:
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        number = self.get(ticket_id).id
        with self._session() as s, s.begin():
            t = s.scalars(
                select(Ticket).options(selectinload(Ticket.requests)).where(Ticket.id == number).with_for_update()
            ).one()
            change(t)
        return t

    def _check_length(self, text: str, what: str) -> None:
        limit = self.settings.max_answer_chars
        if len(text) > limit:
            raise QuestionError(
                f"the {what} is {len(text)} characters long, over the limit of {limit} "
                "(KB_MAX_ANSWER_CHARS): shorten it"
            )

    # --- agents ------------------------------------------------------------------------------------
    def add_user(self, name: str, password: str, role: str = "agent") -> None:
        import bcrypt

        if not _USER_NAME.match(name or ""):
            raise KBError(f"user name {name!r}: use letters, digits, '.', '_', '@' or '-' (at most 100)")
        if role not in ("agent", "admin"):
            raise KBError(f"role {role!r} is not one of: agent, admin")
        if len(password.encode()) < 8 or len(password.encode()) > 72:
            raise KBError("the password must be 8 to 72 bytes long")
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
        with self._session() as s, s.begin():
            user = s.query(AgentUser).filter_by(name=name).first()
            if user is None:
                s.add(AgentUser(name=name, role=role, password_hash=hashed))
            else:
                user.role, user.password_hash = role, hashed

    def check_password(self, name: str, password: str) -> bool:
        import bcrypt

        with self._session() as s:
            user = s.query(AgentUser).filter_by(name=name).first()
        if user is None or not password:
            return False
        try:
            return bcrypt.checkpw(password.encode(), user.password_hash.encode())
        except ValueError:
            return False

    def users(self) -> list[AgentUser]:
        with self._session() as s:
            return list(s.query(AgentUser).order_by(AgentUser.name).all())

    def url_for_humans(self) -> str:
        return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", self.url)


def ticket_view(ticket: Ticket, question: str | None = None) -> TicketView:
    return TicketView(
        id=format_ticket_id(ticket.id), kb=ticket.kb, question=question or ticket.question, status=ticket.status,
        reason=ticket.reason, answer=ticket.answer, created_at=_iso(ticket.created_at),
        answered_at=_iso(ticket.answered_at) if ticket.answered_at else None,
    )  # fmt: skip


def _iso(dt: datetime) -> str:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def cosine(a: list[float], b: list[float]) -> float:
    import numpy as np

    va, vb = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    denom = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb) / denom if denom else 0.0


def _is_vector(value, size: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == size
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    )


def same_numbers(a: str, b: str) -> bool:
    return sorted(_NUMBER.findall(a)) == sorted(_NUMBER.findall(b))


def word_overlap(a: str, b: str) -> float:
    """Jaccard of the two questions' content words."""
    from kb_assistant.language import tokenize

    ta, tb = set(tokenize(a)), set(tokenize(b))
    return len(ta & tb) / len(ta | tb) if ta | tb else 1.0
