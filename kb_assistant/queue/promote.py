"""Closing the loop: an answered ticket becomes a curated FAQ entry of its KB, searchable at once.

The one place that writes agent answers into a knowledge base (ingest may change underneath: re-point here).
The entry is a FAQ chunk (question + answer) with source ``curated-faq/T-000123``; its section names the ticket
and the agent. Adding it rebuilds the KB's keyword index and bumps the KB version (which the cache watches).
"""

from __future__ import annotations

import hashlib
import time

from kb_assistant.errors import KBError
from kb_assistant.index import KnowledgeBaseIndex
from kb_assistant.queue.models import Ticket
from kb_assistant.queue.store import format_ticket_id
from kb_assistant.schema import Chunk

CURATED_PREFIX = "curated-faq/"


def curated_faq_chunk(ticket: Ticket, question: str | None = None, answer: str | None = None) -> Chunk:
    tid = format_ticket_id(ticket.id)
    question = (question or ticket.standalone_question or ticket.question).strip()
    answer = (answer or ticket.answer or "").strip()
    source = CURATED_PREFIX + tid
    return Chunk(
        id=hashlib.sha1(source.encode()).hexdigest()[:24],  # one entry per ticket: promoting again replaces it
        text=answer,
        source=source,
        title="Curated FAQ",
        section=f"{question} · ticket {tid} · answered by {ticket.answered_by or 'agent'}",
        kind="faq",
        question=question,
    )


def promote_ticket(index: KnowledgeBaseIndex, ticket: Ticket, question: str | None = None) -> Chunk:
    """Write the ticket's question and answer into ``index`` (its KB) and make them searchable now."""
    if ticket.status != "answered" or not ticket.answer:
        raise KBError(
            f"ticket {format_ticket_id(ticket.id)} is {ticket.status}: only an answered ticket can be added to the KB"
        )
    if index.name != ticket.kb:
        raise KBError(f"ticket {format_ticket_id(ticket.id)} belongs to KB {ticket.kb!r}, not {index.name!r}")
    chunk = curated_faq_chunk(ticket, question)
    index.delete_sources([chunk.source])
    index.add([chunk])
    index.rebuild_keyword_index()
    index.bump_version(last_promotion=time.time())
    return chunk
