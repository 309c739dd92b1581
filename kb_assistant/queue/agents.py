"""What agents do with tickets — claim, answer, close, mark as promoted into the KB — and the agents themselves:
their accounts, roles and passwords (bcrypt).

A disabled account keeps its row and its password hash behind a ``!`` (what ``passwd -l`` does to a shadow
entry): no password matches it, no role is granted to it, and enabling it (or a new password) restores it.
The last enabled admin cannot be disabled, removed or made an agent, so the console is never left without one.
"""

from __future__ import annotations

import re

from kb_assistant.errors import KBError, QuestionError
from kb_assistant.queue.models import OPEN_STATUSES, AgentUser, Ticket, format_ticket_id, utcnow
from kb_assistant.queue.reading import TicketReader

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
ROLES = ("agent", "admin")
LOCKED = "!"  # prefix of a disabled account's password hash


class UnknownUser(KBError):
    pass


def is_disabled(user: AgentUser) -> bool:
    return user.password_hash.startswith(LOCKED)


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
        _check_role(role)
        if len(password.encode()) < 8 or len(password.encode()) > 72:
            raise KBError("the password must be 8 to 72 bytes long")
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
        with self._session() as s, s.begin():
            user = s.query(AgentUser).filter_by(name=name).first()
            if user is None:
                s.add(AgentUser(name=name, role=role, password_hash=hashed))
            else:
                if role != "admin":
                    self._keep_an_admin(s, user, f"make {name!r} an agent")
                user.role, user.password_hash = role, hashed  # a new password also enables a disabled account

    def check_password(self, name: str, password: str) -> bool:
        import bcrypt

        with self._session() as s:
            user = s.query(AgentUser).filter_by(name=name).first()
        if user is None or not password or is_disabled(user):
            return False
        try:
            return bcrypt.checkpw(password.encode(), user.password_hash.encode())
        except ValueError:
            return False

    def users(self) -> list[AgentUser]:
        with self._session() as s:
            return list(s.query(AgentUser).order_by(AgentUser.name).all())

    def role_of(self, name: str | None) -> str | None:
        """The role of an enabled account, None for no such (or a disabled) account."""
        if not name:
            return None
        with self._session() as s:
            user = s.query(AgentUser).filter_by(name=name).first()
        return user.role if user is not None and not is_disabled(user) else None

    def set_role(self, name: str, role: str) -> AgentUser:
        _check_role(role)

        def change(s, user):
            if role != "admin":
                self._keep_an_admin(s, user, f"make {name!r} an agent")
            user.role = role

        return self._change_user(name, change)

    def disable_user(self, name: str) -> AgentUser:
        """Sign-in refused and no role granted from the next request on; the row (and its hash) stays."""

        def change(s, user):
            if not is_disabled(user):
                self._keep_an_admin(s, user, f"disable {name!r}")
                user.password_hash = LOCKED + user.password_hash

        return self._change_user(name, change)

    def enable_user(self, name: str) -> AgentUser:
        def change(s, user):
            user.password_hash = user.password_hash.removeprefix(LOCKED)

        return self._change_user(name, change)

    def remove_user(self, name: str) -> AgentUser:
        """Delete the account (tickets keep the name that claimed or answered them)."""
        return self._change_user(name, lambda s, user: (self._keep_an_admin(s, user, f"remove {name!r}"),
                                                        s.delete(user)))  # fmt: skip

    def _change_user(self, name: str, change) -> AgentUser:
        with self._session() as s, s.begin():
            user = s.query(AgentUser).filter_by(name=name).with_for_update().first()
            if user is None:
                raise UnknownUser(f"no console user named {name!r} (see: kb user list)")
            change(s, user)
        return user

    @staticmethod
    def _keep_an_admin(s, user: AgentUser, action: str) -> None:
        if user.role != "admin" or is_disabled(user):
            return
        others = [u for u in s.query(AgentUser).filter_by(role="admin").all() if u.id != user.id and not is_disabled(u)]
        if not others:
            raise KBError(f"cannot {action}: it is the last enabled admin; make another user an admin first")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise KBError(f"role {role!r} is not one of: {', '.join(ROLES)}")
