"""Closing the loop: an answered ticket becomes a curated FAQ entry of its KB, searchable at once.

The entry is a one-row FAQ table, ``<data>/curated/<kb>/curated-faq/T-000123.csv`` (question, answer, ticket,
agent), synced into the KB by the ingest pipeline like any document: the ingest ledger knows it, so it survives
every later `kb ingest --all`, and editing or deleting the file is how an admin changes or withdraws it.
(The core library otherwise imports nothing from ingest/: promotion *is* an ingest, so it goes through it.)
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from kb_assistant.errors import KBError
from kb_assistant.index import KnowledgeBaseIndex
from kb_assistant.queue.models import Ticket
from kb_assistant.queue.store import format_ticket_id
from kb_assistant.schema import Chunk

CURATED_DIR = "curated-faq"


def curated_folder(settings, kb: str) -> Path:
    return settings.data_dir / "curated" / kb


def promote_ticket(index: KnowledgeBaseIndex, ticket: Ticket, question: str | None = None) -> Chunk:
    """Write the ticket's question and answer into ``index``'s KB and make them searchable now."""
    from ingest.chunking import _chunk_id
    from ingest.pipeline import sync_sources

    tid = format_ticket_id(ticket.id)
    if ticket.status != "answered" or not ticket.answer:
        raise KBError(f"ticket {tid} is {ticket.status}: only an answered ticket can be added to the KB")
    if index.name != ticket.kb:
        raise KBError(f"ticket {tid} belongs to KB {ticket.kb!r}, not {index.name!r}")
    question = (question or ticket.standalone_question or ticket.question).strip()
    answer = ticket.answer.strip()
    root = curated_folder(index.settings, index.name)
    path = root / CURATED_DIR / f"{tid}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["question", "answer", "ticket", "agent"],
                                 [question, answer, tid, ticket.answered_by or "agent"]])  # fmt: skip
    os.replace(tmp, path)
    report = sync_sources(index.settings, [root], index.name, embeddings=index.embeddings)
    if not report.ok:
        raise KBError(f"could not add ticket {tid} to the KB: {report.failed[0].reason}")
    source = f"{CURATED_DIR}/{tid}.csv"
    index.refresh()
    chunk = index.get([_chunk_id(source, question, answer)])
    if not chunk:
        raise KBError(f"ticket {tid} was written to {path} but is not in KB {index.name!r}")
    return next(iter(chunk.values()))
