"""PDF text as a reader reads it: NFKC (ligatures folded, CJK punctuation kept), words broken at a line end joined
again (a compound keeps its hyphen), lines joined into paragraphs, and ruled tables turned into rows that name
their columns. ``ingest.pdf`` finds the lines, headings and tables; this module cleans and joins their text.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from ingest.document import row_lines

_NOT_CJK_PUNCT = re.compile("[^\u3000-\u303f\uff00-\uffef]+")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_PRIVATE_USE_MARK = re.compile("(?:^|(?<=\\s))[\ue000-\uf8ff](?=\\s|$)")


def vocabulary(lines: Iterable[str]) -> Counter:
    """The document's words (from its lines' texts), leaving out the halves of words broken at a line end."""
    words = Counter()
    broken = False
    for line in lines:
        text = re.sub(r"^[A-Za-z]+", "", line) if broken else line
        broken = bool(re.search(r"[A-Za-z]-$", text))
        if broken:
            text = re.sub(r"[A-Za-z]+-$", "", text)
        for w in re.findall(r"[A-Za-z]+(?:-[A-Za-z]+)*", text):
            words[w.lower()] += 1
    return words


def join_lines(texts: list[str], vocab: Counter) -> str:
    out = texts[0]
    for text in texts[1:]:
        m = re.search(r"([A-Za-z]+)-$", out)
        head = re.match(r"[a-z]+", text)
        if m and head and not out.endswith("--"):
            a, b = m.group(1).lower(), head.group()
            # a compound keeps its hyphen ("in-" + "charge"); a word broken at the line end loses it ("estab-lished")
            compound = vocab[f"{a}-{b}"] or (a in vocab and b in vocab and not vocab[a + b])
            out = out + text if compound else out[:-1] + text
        elif out and text and is_cjk(out[-1]) and is_cjk(text[0]):
            out = out + text
        else:
            out = f"{out} {text}"
    return out


def is_cjk(ch: str) -> bool:
    return "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"


def clean(text: str) -> str:
    """NFKC (ligatures ﬁ → fi, compatibility forms) except on CJK and full-width punctuation, which Chinese text
    keeps ("，" is not ","); whitespace collapsed; a private-use glyph standing alone (a Symbol-font bullet,
    U+F0B7) is a bullet and other private-use glyphs, which no reader can decode, are dropped."""
    text = _NOT_CJK_PUNCT.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    text = _PRIVATE_USE_MARK.sub("• ", text)
    return " ".join(_PRIVATE_USE.sub("", text).split())


def table_cells(raw: list[list[str | None]]) -> list[list[str]]:
    """Cell texts; a cell under a vertically merged first-column cell (None) repeats the value above, so each
    row keeps its key; a short second row that only continues header cells is joined into the header."""
    rows: list[list[str]] = []
    for raw_row in raw:
        row = [clean(cell or "") for cell in raw_row]
        if rows and raw_row and raw_row[0] is None:
            row[0] = rows[-1][0]
        if any(row):
            rows.append(row)
    if len(rows) > 2:
        head, second = rows[0], rows[1]
        filled = [i for i, c in enumerate(second) if c]
        if filled and len(filled) < len(second) / 2 and all(head[i] and len(second[i]) <= 30 for i in filled):
            rows[0] = [join_lines([h, c], Counter()) if c else h for h, c in zip(head, second, strict=True)]
            del rows[1]
    return rows


def table_rows(header: list[str], rows: list[list[str]], bold_header: bool) -> list[str]:
    """Rows that name their columns; a two-column table without a header row is "key: value" lines."""
    if len(header) == 2 and not bold_header and not (all(header) and all(len(h) <= 60 for h in header)):
        return [f"{k}: {v}" if k and v else k or v for k, v in [header, *rows] if k or v]
    return row_lines(header, rows) or [" | ".join(c for c in header if c)]
