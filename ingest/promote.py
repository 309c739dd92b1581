"""Closing the loop: an answered ticket becomes a curated FAQ entry of its KB, searchable at once.

The entry is a one-row FAQ table, ``<data>/curated/<kb>/curated-faq/T-000123.csv`` (question, answer, ticket,
agent; under ``curated-faq/<groups>/`` with a ``.kb-groups`` file when it is limited to the ticket's scope),
synced into the KB by the ingest pipeline like any document: the ingest ledger knows it, so it survives every
later `kb ingest --all`, and editing or deleting the file is how an admin changes or withdraws it. Promotion
*is* an ingest, so it lives here, above the core: the console and `kb queue promote` call
``promote(assistant, ticket_id)``; the core library never imports ingest/.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ingest.chunking import chunk_id
from ingest.pipeline import sync_sources
from ingest.visibility import SIDECAR
from kb_assistant.errors import KBError
from kb_assistant.files import write_atomic
from kb_assistant.language import detect_language
from kb_assistant.queue.models import Ticket, format_ticket_id
from kb_assistant.schema import Answer, Chunk, Citation, parse_groups
from kb_assistant.store import KnowledgeBase

CURATED_DIR = "curated-faq"


def curated_folder(settings, kb: str) -> Path:
    return settings.data_dir / "curated" / kb


def promote(assistant, ticket_id: str, question: str | None = None, groups: str | None = None) -> str:
    """'Add to the knowledge base': an answered ticket becomes a curated FAQ entry of its KB, searchable at
    once, and the ticket is marked promoted. ``question`` overrides the ticket's wording. The entry is visible to
    the ticket's scope (its askers' access groups) unless the agent says otherwise: ``groups`` ("a,b"; "" for
    everyone who may use the KB). With the semantic cache on, the agent's answer seeds it, citing the new entry.
    Returns the entry's source name."""
    ticket = assistant.queue.get(ticket_id)
    index = assistant.index(ticket.kb)
    chunk = promote_ticket(index, ticket, question, groups)
    assistant.queue.mark_promoted(ticket_id, chunk.source)
    if assistant.settings.cache_enabled:
        lang = detect_language(chunk.question)
        cited = Citation(n=1, source=chunk.source, section=chunk.section, chunk_id=chunk.id,
                         snippet=chunk.text[:2000], score=1.0)  # fmt: skip
        marker = "[1]" if lang == "zh" else " [1]"
        seeded = Answer(question=chunk.question, standalone_question=chunk.question, text=chunk.text + marker,
                        answered=True, confidence=1.0, language=lang, kb=ticket.kb, citations=[cited],
                        passages=[cited])  # fmt: skip
        assistant.cache.seed(index, chunk.question, seeded, lang=lang)
    return chunk.source


def scope_folder(groups: frozenset[str]) -> str:
    """Where a curated entry limited to ``groups`` lives, under ``curated-faq/`` ("" for everyone): one folder per
    set of groups, whose ``.kb-groups`` file names them (``ingest.visibility``)."""
    return "+".join(sorted(groups))


def promote_ticket(index: KnowledgeBase, ticket: Ticket, question: str | None = None, groups=None) -> Chunk:
    """Write the ticket's question and answer into ``index``'s KB, visible to ``groups`` (None: the ticket's
    scope), and make them searchable now."""
    tid = format_ticket_id(ticket.id)
    if ticket.status != "answered" or not ticket.answer:
        raise KBError(f"ticket {tid} is {ticket.status}: only an answered ticket can be added to the KB")
    if index.name != ticket.kb:
        raise KBError(f"ticket {tid} belongs to KB {ticket.kb!r}, not {index.name!r}")
    try:
        groups = parse_groups(ticket.scope if groups is None else groups, what="groups")
    except ValueError as exc:
        raise KBError(str(exc)) from None
    question = (question or ticket.standalone_question or ticket.question).strip()
    answer = ticket.answer.strip()
    root = curated_folder(index.settings, index.name)
    folder = scope_folder(groups)
    source = "/".join(x for x in (CURATED_DIR, folder, f"{tid}.csv") if x)
    path = root / source
    for earlier in (root / CURATED_DIR).rglob(f"{tid}.csv"):  # promoted before with other groups
        if earlier != path:
            earlier.unlink()
    if folder:
        write_atomic(path.parent / SIDECAR, "\n".join(sorted(groups)) + "\n")
    rows = io.StringIO(newline="")
    csv.writer(rows).writerows([["question", "answer", "ticket", "agent"],
                                [question, answer, tid, ticket.answered_by or "agent"]])  # fmt: skip
    write_atomic(path, rows.getvalue())
    report = sync_sources(index.settings, [root], index.name, embeddings=index.embeddings)
    if not report.ok:
        raise KBError(f"could not add ticket {tid} to the KB: {report.failed[0].reason}")
    index.refresh()
    chunk = index.get([chunk_id(source, question, answer)])
    if not chunk:
        raise KBError(f"ticket {tid} was written to {path} but is not in KB {index.name!r}")
    return next(iter(chunk.values()))
