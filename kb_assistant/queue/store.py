"""``TicketQueue``: the human queue's store — what the pipeline writes: the answer log, 👍/👎, escalation into
tickets (grouping near-identical open questions into one), and replaying the spool.

The database, its engine and the spool are ``database``'s; reading tickets is ``reading``'s; what agents do is
``agents``'s. ``TicketQueue`` is all of them: the one object the assistant, the console and the CLI use.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass, field

from kb_assistant.errors import KBError, QuestionError
from kb_assistant.language import normalise
from kb_assistant.queue.agents import AgentDesk
from kb_assistant.queue.database import unavailable_errors
from kb_assistant.queue.models import OPEN_STATUSES, AnswerLog, QueueLock, Ticket, TicketRequest, format_ticket_id

_NUMBER = re.compile(r"\d+")


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
    scope: str = ""  # the asker's access groups, "a,b": only questions of one scope share a ticket


def normalize_question(text: str) -> str:
    """Case, width, spaces and punctuation removed: two questions equal here are the same question."""
    return normalise(text)[:500]


class TicketQueue(AgentDesk):
    """The queue: ``record`` each answer, ``feedback`` on it; reading and agents' actions are inherited."""

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
                completion_tokens=entry.completion_tokens, cited=entry.cited, scope=entry.scope,
            )  # fmt: skip
            s.add(row)
            if entry.answered:
                return None
            ticket = self._escalate(
                s, kb=entry.kb, question=entry.question, standalone=entry.standalone_question,
                language=entry.language, reason=entry.reason or "low_confidence", conversation=entry.conversation,
                passages=entry.passages, embedding=entry.embedding, session_id=entry.session_id, user=entry.user,
                answer_id=entry.id, ref=ref, access_hash=entry.access_hash, scope=entry.scope,
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
                bad_answer=row.text if row.answered else None, access_hash=access_hash, scope=row.scope or "",
            )  # fmt: skip
            row.ticket_id = row.ticket_id or ticket.id
            return format_ticket_id(ticket.id)

    def _escalate(self, s, *, kb, question, standalone, language, reason, conversation, passages, embedding,
                  session_id, user, answer_id, ref=None, comment=None, bad_answer=None,
                  access_hash=None, scope="") -> Ticket:  # fmt: skip
        from sqlalchemy import update

        # the lock row first: grouping (read) and opening a ticket (write) must not interleave with another's
        s.execute(update(QueueLock).where(QueueLock.id == 1).values(counter=QueueLock.counter + 1))
        normalized = normalize_question(standalone or question)
        ticket = self._open_group(s, kb, normalized, standalone or question, embedding, scope)
        if ticket is None:
            # a bare "转人工" is not the question: the one it refers to (kept as the standalone form) is
            title = standalone if reason == "handoff" and standalone else question
            ticket = Ticket(
                kb=kb, question=title, standalone_question=standalone or question, normalized=normalized,
                language=language, reason=reason, status="open", conversation=conversation, passages=passages,
                embedding=embedding, bad_answer=bad_answer, scope=scope,
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

    def _open_group(
        self, s, kb: str, normalized: str, text: str, embedding: list[float] | None, scope: str = ""
    ) -> Ticket | None:
        """An open ticket asking the same thing, asked with the same access groups (``scope``: an agent's answer
        reaches only askers it was written for): equal normalised text, or a near-identical meaning (embedding
        cosine over the threshold, most words shared, and the same numbers — 'form 17' is not 'form 18')."""
        from sqlalchemy import select

        open_in_kb = select(Ticket).where(Ticket.kb == kb, Ticket.scope == scope, Ticket.status.in_(OPEN_STATUSES))
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
