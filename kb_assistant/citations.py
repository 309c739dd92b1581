"""Citations: the ``[n]`` markers of an answer turned into ``Citation``s of the passages it was drawn from, and a
passage as a ticket keeps it.
"""

from __future__ import annotations

import re

from kb_assistant.schema import Candidate, Citation

_MARKER = re.compile(r"\[(\d{1,2})\]")


def passage_record(n: int, c: Candidate) -> dict:
    """A retrieved passage as the ticket keeps it: where it came from, its text and its scores."""
    return {
        "n": n, "chunk_id": c.chunk.id, "source": c.chunk.source, "section": c.chunk.section, "page": c.chunk.page,
        "text": (c.chunk.text or "")[:1000], "score": round(float(c.score), 4), "dense": round(float(c.dense), 4),
        "keyword": round(float(c.keyword), 4),
    }  # fmt: skip


def cite(text: str, passages: list[Candidate]) -> list[Citation]:
    """Citations for the [n] markers in ``text``, in order of first use; unknown numbers are ignored."""
    citations, seen = [], set()
    for m in _MARKER.finditer(text):
        n = int(m.group(1))
        if 1 <= n <= len(passages) and n not in seen:
            seen.add(n)
            citations.append(citation(n, passages[n - 1]))
    return citations


def citation(n: int, c: Candidate) -> Citation:
    return Citation(
        n=n, source=c.chunk.source, section=c.chunk.section, page=c.chunk.page, chunk_id=c.chunk.id,
        snippet=c.chunk.text[:2000], score=round(min(1.0, max(0.0, c.score)), 4),
    )  # fmt: skip
