"""Structure-aware chunking: chunks follow sections (headings) and pages, split on sentence boundaries.

A chunk never mixes two sections; within a section, paragraphs are packed up to ``chunk_size`` characters;
a paragraph longer than that is split between sentences (Chinese 。！？； included), and only a single
sentence longer than the limit is cut mid-sentence: at a clause break or a space, never inside a word.
"""

from __future__ import annotations

import hashlib
import re

from ingest.document import Block, LoadedDocument
from kb_assistant.language import split_sentences
from kb_assistant.schema import Chunk


def chunk_document(doc: LoadedDocument, source: str, chunk_size: int) -> list[Chunk]:
    if doc.faq:
        return _faq_chunks(doc, source)
    chunks: list[Chunk] = []
    headings: list[tuple[int, str]] = []  # (depth, text) stack
    pending: list[Block] = []

    def flush():
        if pending:
            section = " > ".join(text for _, text in headings)
            for text, page in _pack(pending, chunk_size):
                chunks.append(_make(source, doc.title, section, text, page))
            pending.clear()

    for block in doc.blocks:
        if block.kind == "heading":
            flush()
            while headings and headings[-1][0] >= block.depth:
                headings.pop()
            headings.append((block.depth, block.text))
        else:
            if pending and block.page != pending[-1].page and block.page is not None:
                flush()  # a chunk cites one page
            pending.append(block)
    flush()
    return _link(_dedupe_ids(chunks))


def _pack(blocks: list[Block], size: int) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    current: list[str] = []
    page = blocks[0].page
    for piece in (p for b in blocks for p in _pieces(b.text, size)):
        if current and len("\n".join(current)) + 1 + len(piece) > size:
            out.append(("\n".join(current), page))
            current = []
        current.append(piece)
    if current:
        out.append(("\n".join(current), page))
    return out


def _pieces(text: str, size: int) -> list[str]:
    """A paragraph as is, or its sentences grouped under ``size``."""
    if len(text) <= size:
        return [text]
    pieces, buf = [], ""
    for sentence in _sentences(text):
        for part in _cut(sentence, size):
            joiner = "" if (buf and _is_cjk_end(buf)) else " "
            if buf and len(buf) + len(joiner) + len(part) > size:
                pieces.append(buf)
                buf = ""
            buf = f"{buf}{joiner}{part}" if buf else part
    if buf:
        pieces.append(buf)
    return pieces


_LONE_MARKER = re.compile(r"\(?(?:\d{1,3}(?:\.\d{1,3})*|[a-zA-Z]|[ivxlcdmIVXLCDM]{1,6})[.)]")


def _sentences(text: str) -> list[str]:
    """Sentences, with a list marker the splitter left on its own ("1.", "(a)") joined to the item it opens."""
    out: list[str] = []
    for sentence in split_sentences(text):
        if out and _LONE_MARKER.fullmatch(out[-1]):
            out[-1] = f"{out[-1]} {sentence}"
        else:
            out.append(sentence)
    return out


_CLAUSE_BREAKS = ("; ", "；", ": ", "：", ", ", "，", "、")


def _cut(sentence: str, size: int) -> list[str]:
    """A sentence longer than ``size`` in parts at its last clause break (";", ",") in the second half of the
    window, else at its last space: never inside a word. Only a run of ``size`` characters without a space or
    break (a long URL, unspaced CJK) is cut where it must be."""
    parts = []
    while len(sentence) > size:
        window = sentence[: size + 1]
        clause = max(window.rfind(sep) + len(sep) for sep in _CLAUSE_BREAKS)
        space = window.rfind(" ")
        at = clause if clause > size // 2 else space if space > 0 else size
        parts.append(sentence[:at].strip())
        sentence = sentence[at:].strip()
    return [*parts, sentence] if sentence else parts


def _is_cjk_end(text: str) -> bool:
    return "\u3000" <= text[-1] <= "\u9fff" or text[-1] in "。！？；，"


def _faq_chunks(doc: LoadedDocument, source: str) -> list[Chunk]:
    return _dedupe_ids(
        [
            Chunk(
                id=chunk_id(source, question, answer),
                text=answer,
                source=source,
                title=doc.title,
                section=question,
                kind="faq",
                question=question,
            )
            for question, answer in doc.faq
        ]
    )


def _make(source: str, title: str, section: str, text: str, page: int | None) -> Chunk:
    return Chunk(id=chunk_id(source, section, text), text=text, source=source, title=title, section=section, page=page)


def chunk_id(source: str, section: str, text: str) -> str:
    """Stable: the same text in the same place of the same file always gets the same id."""
    return hashlib.sha1(f"{source}\x1f{section}\x1f{text}".encode()).hexdigest()[:24]


def _link(chunks: list[Chunk]) -> list[Chunk]:
    """Each chunk names the one that follows it in the same section: an answer's span may run on into it (the list
    or the detail under a sentence that ends a chunk)."""
    for chunk, following in zip(chunks, chunks[1:], strict=False):
        if following.section == chunk.section:
            chunk.next_id = following.id
    return chunks


def _dedupe_ids(chunks: list[Chunk]) -> list[Chunk]:
    seen: dict[str, int] = {}
    for chunk in chunks:
        n = seen.get(chunk.id, 0)
        seen[chunk.id] = n + 1
        if n:
            chunk.id = f"{chunk.id}-{n}"
    return chunks
