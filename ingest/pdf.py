"""PDF → LoadedDocument with pdfplumber: the text a reader sees, in the structure a reader sees.

pdfplumber (on pdfminer) gives every character with its font, size, colour and position, and finds ruled tables.
From that, with rules that hold for any PDF (nothing here is fitted to one document):

- only visible text: characters that are invisible (rendering mode 3 or 7, white on no dark fill), off the page
  or tinier than ``MIN_CHAR_PT`` are dropped before anything else — a reader never sees them, so the KB must not;
- NFKC (ligatures ﬁ ﬀ ﬂ → fi ff fl; CJK and full-width punctuation kept as Chinese writes it), then words
  hyphenated at a line end are joined ("estab-" + "lished"), keeping the hyphen of real compounds ("in-" +
  "charge" when the document also writes "in-charge");
- running headers and footers (lines in the top or bottom margin repeating on most pages, page numbers) dropped;
- paragraphs from line spacing; a numbered clause or list item ("3 The Employer…", "(a) …", "2.1 …", "•") starts
  its own block and a marker alone on its line is joined to its text;
- headings — set larger than the body, whole-line bold, ALL-CAPS, or a numbered title line ("10.3 Leave") — are
  heading blocks (the chunk's section path), never glued to the text;
- ruled tables with at least two filled columns are rows that name their columns ("Col: value | Col: value"),
  the same renderer as csv/xlsx/docx tables; a table continued on the next page keeps its header.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ingest.document import Block, DocumentError, LoadedDocument
from ingest.pdf_text import clean, join_lines, table_cells, table_rows, vocabulary

MIN_CHAR_PT = 2.0  # characters set smaller than this are not readable: hidden text, not content
MARGIN = 0.1  # the top and bottom tenth of a page: where running headers and footers live

_MARKER = re.compile(
    r"^(?:\(?[a-zA-Z]\)|\(?[ivxlcdmIVXLCDM]{1,6}[.)]|\d{1,3}(?:\.\d{1,3})*[.)]?|[A-Z]\.|[•●▪■◦○·‣\-–—*])(?=\s|$)"
)
_ALWAYS_ITEM = re.compile(r"^(?:\(?[a-zA-Z]\)|\(?[ivxlcdmIVXLCDM]{1,6}\)|[•●▪■◦○·‣])(?=\s|$)")
_NUMBERED_TITLE = re.compile(r"^(\d{1,3}(?:\.\d{1,3})*)\.?\s+(\S.*)$")
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[-–—]?\s*\d{1,4}\s*[-–—]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.IGNORECASE)
_LEADER = re.compile(r"\.{4,}|…{2,}|(?:\. ){4,}")
# characters on one line when their tops are this close (pt): a faux small-caps heading sets each word's initial
# larger than the rest ("MANAGING" as a 24-pt M and a 19-pt ANAGING), its top ~4 pt higher on the same baseline;
# pdfplumber's default (3) read such a heading as two lines, "M F" over "ANAGING INANCIAL"
Y_TOLERANCE = 5
_SENTENCE_END = (".", "!", "?", ";", ":", "。", "！", "？", "；", "：")


@dataclass
class _Line:
    page: int
    top: float
    bottom: float
    x0: float
    text: str
    size: float
    bold: float  # share of the line's characters in a bold font
    margin: bool  # in the top or bottom margin of its page


@dataclass
class _Table:
    page: int
    top: float
    rows: list[list[str]]
    bold_header: bool = False  # the first row is set in bold: a header row, however long its cells


# --- visible characters --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _record_rendering_mode() -> None:
    """pdfminer reads the text rendering mode (Tr) but does not keep it on the characters it makes. Record it as
    the characters' ``fill`` / ``stroke`` (what the mode means), which pdfplumber passes through: mode 3 (neither,
    the classic hidden-text trick of OCR layers and prompt injection) and 7 (clip only) draw nothing."""
    import pdfplumber.page as plumber_page

    aggregator = plumber_page.PDFPageAggregatorWithMarkedContent
    if getattr(aggregator, "_kb_records_rendering_mode", False):
        return

    def render_string(self, textstate, seq, ncs, graphicstate):
        self._kb_render = textstate.render
        return super(aggregator, self).render_string(textstate, seq, ncs, graphicstate)

    def render_char(self, *args, **kwargs):
        adv = original_render_char(self, *args, **kwargs)
        if self.cur_item._objs:
            mode = getattr(self, "_kb_render", 0)
            self.cur_item._objs[-1].fill = mode in (0, 2, 4, 6)
            self.cur_item._objs[-1].stroke = mode in (1, 2, 5, 6)
        return adv

    original_render_char = aggregator.render_char
    aggregator.render_string = render_string
    aggregator.render_char = render_char
    aggregator._kb_records_rendering_mode = True


def _is_white(color) -> bool:
    if not isinstance(color, tuple | list) or not color or not all(isinstance(v, int | float) for v in color):
        return False
    if len(color) == 4:  # CMYK: no ink at all
        return all(v <= 0.02 for v in color)
    return all(v >= 0.98 for v in color)


def _visible_page(page):
    """The page with only the characters a reader can see."""
    width, height = float(page.width), float(page.height)
    x_min, top_min = float(page.bbox[0]), float(page.bbox[1])
    dark_fills = None

    def on_dark_fill(ch) -> bool:
        nonlocal dark_fills
        if dark_fills is None:
            dark_fills = [
                r for r in page.rects if r.get("fill") and not _is_white(r.get("non_stroking_color")) and r["width"] > 2
            ]
        cx, cy = (ch["x0"] + ch["x1"]) / 2, (ch["top"] + ch["bottom"]) / 2
        return any(r["x0"] <= cx <= r["x1"] and r["top"] <= cy <= r["bottom"] for r in dark_fills)

    def keep(obj) -> bool:
        if obj.get("object_type") != "char":
            return True
        if not obj.get("fill", True) and not obj.get("stroke", False):
            return False  # rendering mode 3 / 7
        if obj.get("size", 0) < MIN_CHAR_PT:
            return False
        if (
            obj["x1"] <= x_min
            or obj["x0"] >= x_min + width
            or obj["bottom"] <= top_min
            or obj["top"] >= top_min + height
        ):
            return False  # off the page
        return not (_is_white(obj.get("non_stroking_color")) and not on_dark_fill(obj))

    return page.filter(keep)


# --- reading the PDF -------------------------------------------------------------------------------------------
def load_pdf(path: Path) -> LoadedDocument:
    import pdfplumber

    _record_rendering_mode()
    lines: list[_Line] = []
    tables: list[_Table] = []
    try:
        with pdfplumber.open(str(path)) as pdf:
            pages = len(pdf.pages)
            for page in pdf.pages:
                _read_page(_visible_page(page), page.page_number, lines, tables)
    except DocumentError:
        raise
    except Exception as exc:
        inner = exc.args[0] if type(exc).__name__ == "PdfminerException" and exc.args else exc  # pdfplumber's wrapper
        name = type(inner).__name__
        if "Password" in name or "Encrypt" in name or "password" in str(inner).lower():
            raise DocumentError("encrypted (password-protected) PDF: remove the password and ingest again") from None
        raise DocumentError(f"corrupt or unreadable pdf file ({name}: {inner})") from None
    if not lines and not tables:
        raise DocumentError("no extractable text (a scanned PDF? OCR is not enabled)")
    lines = _drop_running_lines(lines, pages)
    doc = LoadedDocument(title=path.stem)
    doc.blocks = _blocks(lines, tables)
    if not any(b.kind != "heading" for b in doc.blocks):
        for b in doc.blocks:  # only "headings" found: they are the text
            b.kind = "text"
    if not doc.blocks:
        raise DocumentError("no extractable text (a scanned PDF? OCR is not enabled)")
    top = [b for b in doc.blocks if b.kind == "heading" and b.depth == 0 and (b.page or 1) <= 2]
    if top:
        doc.title = top[0].text  # the largest heading of the first pages: the document's own title
    if pages > 2 and sum(len(b.text.split()) for b in doc.blocks if b.page == 1) < 80:
        for b in doc.blocks:  # a cover page: its name and address lines are not sections of the contract
            if b.page == 1 and b.kind == "heading":
                b.kind = "text"
    return doc


def _read_page(page, page_no: int, lines: list[_Line], tables: list[_Table]) -> None:
    height = float(page.height)
    top0 = float(page.bbox[1])
    boxes = []
    for found in page.find_tables():
        rows = table_cells(found.extract())
        filled = [r for r in rows if sum(bool(c) for c in r) >= 2]
        if len(filled) >= 2 and len(filled) >= 0.5 * len(rows):  # a real table, not a box drawn around text
            first = page.within_bbox(found.rows[0].bbox, strict=False).chars if found.rows else []
            bold = sum(_is_bold(c.get("fontname", "")) for c in first) >= 0.6 * len(first) > 0
            tables.append(_Table(page_no, float(found.bbox[1]), rows, bold))
            boxes.append(found.bbox)
    for line in page.extract_text_lines(return_chars=True, strip=True, y_tolerance=Y_TOLERANCE):
        chars = [c for c in line["chars"] if c["text"].strip()]
        text = clean(line["text"])
        if not chars or not text:
            continue
        cx, cy = (line["x0"] + line["x1"]) / 2, (line["top"] + line["bottom"]) / 2
        if any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes):
            continue  # read as part of its table
        rel_top, rel_bottom = (line["top"] - top0) / height, (line["bottom"] - top0) / height
        lines.append(
            _Line(
                page=page_no,
                top=float(line["top"]),
                bottom=float(line["bottom"]),
                x0=float(line["x0"]),
                text=text,
                size=statistics.median(c["size"] for c in chars),
                bold=sum(_is_bold(c.get("fontname", "")) for c in chars) / len(chars),
                margin=rel_top < MARGIN or rel_bottom > 1 - MARGIN,
            )
        )


def _is_bold(fontname: str) -> bool:
    name = fontname.split("+")[-1].lower()
    return any(word in name for word in ("bold", "black", "heavy", "semibold", "demi"))


def _drop_running_lines(lines: list[_Line], pages: int) -> list[_Line]:
    """Running headers and footers: margin lines whose shape (digits aside) repeats on most pages; page numbers."""
    shape = Counter({(ln.page, re.sub(r"\d+", "#", ln.text.lower())) for ln in lines if ln.margin})
    per_shape = Counter(s for _, s in shape)
    keep = []
    for ln in lines:
        if ln.margin:
            repeated = pages >= 3 and per_shape[re.sub(r"\d+", "#", ln.text.lower())] >= max(2, pages * 0.5)
            if repeated or _PAGE_NUMBER.match(ln.text):
                continue
        keep.append(ln)
    return keep


# --- lines → blocks ------------------------------------------------------------------------------------------
def _body_size(lines: list[_Line]) -> float:
    weight = Counter()
    for ln in lines:
        weight[round(ln.size * 2) / 2] += len(ln.text)
    return weight.most_common(1)[0][0] if weight else 10.0


def _heading_kind(ln: _Line, body: float, bold_body: bool, standalone: bool) -> str | None:
    """The kind of heading a line is: "big", "plain" (body-size bold / ALL-CAPS / numbered title) or None."""
    text = ln.text
    letters = [c for c in text if c.isalpha()]
    if len(text) > 100 or len(letters) < 2 or _LEADER.search(text) or text.endswith((".", ",", ";")):
        return None
    if letters[0].islower() and not text[0].isdigit():  # CJK has no case: only a lower-case start is prose
        return None
    words = len(text.split())
    bold = ln.bold >= 0.9 and not bold_body
    if ln.size >= body * 1.15 or (ln.size >= body * 1.08 and bold):
        return "big"
    if not standalone or words > 12:
        return None
    if _is_caps(text) or (bold and len(text) <= 80 and words >= 2):
        return "plain"
    numbered = _NUMBERED_TITLE.match(text)
    if numbered and words <= 10 and not text.endswith(":") and numbered.group(2)[:1].isupper():
        return "plain"
    return None


def _numbering_depth(text: str) -> int:
    m = _NUMBERED_TITLE.match(text)
    if not m:
        return 0
    parts = m.group(1).split(".")
    while len(parts) > 1 and parts[-1] == "0":
        parts.pop()  # "5.0 PERSONNEL" is a top-level section
    return len(parts) - 1


def _blocks(lines: list[_Line], tables: list[_Table]) -> list[Block]:
    body = _body_size(lines)
    at_body = [ln for ln in lines if abs(ln.size - body) <= 0.3]
    bold_body = sum(ln.bold * len(ln.text) for ln in at_body) > 0.5 * sum(len(ln.text) for ln in at_body)
    pitches = [b.top - a.top for a, b in zip(lines, lines[1:], strict=False) if a.page == b.page and b.top > a.top]
    # the line pitch inside a paragraph: the most common one (paragraph gaps and headings are rarer)
    pitch = Counter(round(p * 2) / 2 for p in pitches).most_common(1)[0][0] if pitches else body * 1.2
    vocab = vocabulary(ln.text for ln in lines)

    # One pass to classify: a line is standalone when the next one does not continue its paragraph.
    def breaks(prev: _Line, ln: _Line) -> bool:
        if ln.page != prev.page:
            return True
        if _MARKER.fullmatch(prev.text):
            return False  # "(a)" or "3" alone on its line belongs to the text that follows
        gap = ln.top - prev.top
        return gap > pitch * 1.4 or gap < 0 or abs(ln.size - prev.size) > 0.6 or _starts_item(prev, ln)

    per_page, numbered_end = Counter(ln.page for ln in lines), Counter()
    for ln in lines:
        numbered_end[ln.page] += bool(re.search(r"\s\d{1,4}$", ln.text))
    contents = {p for p, n in per_page.items() if n >= 5 and numbered_end[p] >= n / 2}  # table-of-contents pages

    kinds: list[str | None] = []
    for i, ln in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if ln.page in contents:
            kinds.append(None)
            continue
        standalone = nxt is None or breaks(ln, nxt) or (nxt.text[:1].isupper() and _style_changes(ln, nxt))
        kinds.append(_heading_kind(ln, body, bold_body, standalone))
    sizes = sorted({round(ln.size * 2) / 2 for ln, k in zip(lines, kinds, strict=True) if k == "big"}, reverse=True)

    items: list[tuple[int, float, int, object]] = []  # (page, top, order, line or table) in reading order
    for n, ln in enumerate(lines):
        items.append((ln.page, ln.top, n, ("line", n)))
    for n, table in enumerate(tables):
        items.append((table.page, table.top, -1 - n, ("table", n)))
    items.sort(key=lambda t: (t[0], t[1]))

    blocks: list[Block] = []
    para: list[_Line] = []
    last_table: _Table | None = None

    def flush():
        if para:
            blocks.append(Block(join_lines([ln.text for ln in para], vocab), "text", page=para[0].page))
            para.clear()

    for _, _, _, (what, n) in items:
        if what == "table":
            flush()
            table = tables[n]
            rows = table.rows
            continued = (
                last_table is not None
                and blocks
                and blocks[-1].kind == "table"
                and table.page == last_table.page + 1
                and len(rows[0]) == len(last_table.rows[0])
            )
            header = last_table.rows[0] if continued else rows[0]
            body_rows = rows[1:] if not continued or rows[0] == header else rows
            bold = last_table.bold_header if continued else table.bold_header
            blocks += [Block(line, "table", page=table.page) for line in table_rows(header, body_rows, bold)]
            last_table = table if not continued else _Table(table.page, table.top, [header, *body_rows], bold)
            continue
        ln, kind = lines[n], kinds[n]
        if kind:
            flush()
            depth = sizes.index(round(ln.size * 2) / 2) if kind == "big" else len(sizes) + _numbering_depth(ln.text)
            prev = blocks[-1] if blocks else None
            if (
                prev is not None
                and prev.kind == "heading"
                and prev.depth == depth
                and prev.page == ln.page
                and n > 0
                and kinds[n - 1] == kind
                and ln.top - lines[n - 1].top <= ln.size * 1.6
            ):
                prev.text = f"{prev.text} {ln.text}"  # a heading wrapped over two lines
            else:
                blocks.append(Block(ln.text, "heading", depth=depth, page=ln.page))
            continue
        if para:
            prev = para[-1]
            if prev.page != ln.page:
                # a paragraph running over a page break stays one paragraph (it cites the page it starts on)
                if prev.text.endswith(_SENTENCE_END) or not ln.text[:1].islower():
                    flush()
            elif breaks(prev, ln):
                flush()
        para.append(ln)
    flush()
    return blocks


def _is_caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and all(c.isupper() for c in letters)


def _style_changes(ln: _Line, nxt: _Line) -> bool:
    """A bold or ALL-CAPS line followed by plain text: a title over its paragraph, even without a gap."""
    return (ln.bold >= 0.9 > nxt.bold) or (_is_caps(ln.text) and not _is_caps(nxt.text))


def _starts_item(prev: _Line, ln: _Line) -> bool:
    """Does ``ln`` open a new clause or list item rather than continue ``prev``?"""
    if _ALWAYS_ITEM.match(ln.text):
        return True
    if not _MARKER.match(ln.text):
        return False
    # "3 days" can wrap to a line start: a bare number opens an item only where a reader sees one begin
    return prev.text.endswith((*_SENTENCE_END, " and", " or")) or abs(ln.x0 - prev.x0) > 3
