"""What agents do with tickets — claim, answer, close, mark as promoted into the KB — and the agents themselves:
their accounts, roles and passwords (bcrypt).
"""

from __future__ import annotations

import re

from kb_assistant.errors import KBError, QuestionError
from kb_assistant.queue.models import OPEN_STATUSES, AgentUser, Ticket, format_ticket_id, utcnow
from kb_assistant.queue.reading import TicketReader

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class AgentDesk(TicketReader):
    """The agents' side of the queue: changing tickets, and the agent accounts."""

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
