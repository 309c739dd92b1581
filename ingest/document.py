"""What a loader makes of a file: a ``LoadedDocument`` of ``Block``s (or FAQ pairs), and the ``DocumentError`` a
file we cannot ingest raises. Shared by the loaders (ingest/loaders.py, ingest/pdf.py) and the chunker."""

from __future__ import annotations

from dataclasses import dataclass, field


class DocumentError(Exception):
    """A file we cannot ingest; the message says why in words a user can act on."""


@dataclass
class Block:
    text: str
    kind: str  # "heading" | "text" | "table"
    depth: int = 0  # heading level, 0 = top
    page: int | None = None


@dataclass
class LoadedDocument:
    title: str
    blocks: list[Block] = field(default_factory=list)
    faq: list[tuple[str, str]] = field(default_factory=list)  # (question, answer)


def row_lines(header: list[str], body: list[list[str]]) -> list[str]:
    """A plain table as one "column: value | column: value" line per row: each row says what its cells are, so a
    row answers on its own ("Years of service: Less than 5 years | Paid annual leave per year: 10 working days")."""
    lines = []
    for row in body:
        cells = [
            f"{h.strip()}: {c.strip()}" if h.strip() else c.strip()
            for h, c in zip(header, row, strict=False)
            if c.strip()
        ]
        if cells:
            lines.append(" | ".join(cells))
    return lines
