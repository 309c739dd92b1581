"""Reading the queue: a ticket by id or provisional ref, the asker's view of it, a session's replies, ticket lists
and counts for agents and admins, and the gap log's unanswered questions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kb_assistant.errors import QueueUnavailable, UnknownTicket
from kb_assistant.queue.database import QueueDatabase, unavailable_errors
from kb_assistant.queue.models import (
    OPEN_STATUSES,
    AnswerLog,
    Ticket,
    TicketRequest,
    format_ticket_id,
    parse_ticket_id,
    utcnow,
)
from kb_assistant.schema import TicketView


class TicketReader(QueueDatabase):
    """What the queue's surfaces read: tickets, the asker's view of them, lists, counts, the answer log."""

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

    def reading(self):
        """A connection for reads on the migrated database that never takes SQLite's write lock, so a long read
        (the dashboard, the gap log) does not hold up the answers being logged meanwhile."""
        self._session().close()  # migrated, the spool replayed
        return self.engine.execution_options(kb_write_lock=False).connect()

    def unanswered(self, *, kb: str | None = None, since: datetime | None = None) -> list:
        """The gap log: questions the KB could not answer (handoff requests are not gaps), oldest first. Rows with
        every column but the heavy ones (answer text, passages, conversation, cited sources; the embedding is
        ``embeddings_of``)."""
        from sqlalchemy import or_, select

        heavy = ("text", "passages", "conversation", "embedding", "cited")
        light = [c for c in AnswerLog.__table__.c if c.name not in heavy]
        q = select(*light).where(
            or_(AnswerLog.answered.is_(False), AnswerLog.rating == "down"),
            or_(AnswerLog.reason.is_(None), AnswerLog.reason != "handoff"),
        )
        if kb:
            q = q.where(AnswerLog.kb == kb)
        if since:
            q = q.where(AnswerLog.created_at >= since)
        with self.reading() as conn:
            return list(conn.execute(q.order_by(AnswerLog.created_at)).all())

    def embeddings_of(self, ids: list[str]) -> dict[str, list[float]]:
        """The stored question embeddings of these answer-log rows (rows without one are left out)."""
        from sqlalchemy import select

        out: dict[str, list[float]] = {}
        with self.reading() as conn:
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                rows = conn.execute(select(AnswerLog.id, AnswerLog.embedding).where(AnswerLog.id.in_(batch)))
                out.update((i, e) for i, e in rows if e)
        return out

    def answer_log(self, answer_id: str) -> AnswerLog | None:
        with self._session() as s:
            return s.get(AnswerLog, answer_id)


def ticket_view(ticket: Ticket, question: str | None = None) -> TicketView:
    return TicketView(
        id=format_ticket_id(ticket.id), kb=ticket.kb, question=question or ticket.question, status=ticket.status,
        reason=ticket.reason, answer=ticket.answer, created_at=_iso(ticket.created_at),
        answered_at=_iso(ticket.answered_at) if ticket.answered_at else None,
    )  # fmt: skip


def _iso(dt: datetime) -> str:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat(timespec="seconds")
