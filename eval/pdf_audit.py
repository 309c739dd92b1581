"""What PDF ingestion does to the text: per PDF, how many chunks keep ligatures, how many dollar amounts of the
raw text (pdfplumber's plain extraction of every page) reach the chunks (and of all numbers and words: headers,
footers and page numbers are dropped on purpose), and how many chunk boundaries cut a word.

    python -m eval.pdf_audit ../shared/datasets/policy_pdfs [--chunk-size 500] [--show FILE:PAGE]

No index, no model: it runs the loader and the chunker exactly as `kb ingest` does.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

LIGATURES = re.compile("[\ufb00-\ufb06]")
DOLLARS = re.compile(r"\$\s?\d[\d,]*(?:\.\d+)?")
WORD = re.compile(r"[A-Za-z]+")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _words(text: str) -> list[str]:
    """Lower-case words, ligatures folded and line-end hyphens joined on both sides, so that only text that is
    missing counts as missing."""
    import unicodedata

    return WORD.findall(unicodedata.normalize("NFKC", text).replace("-\n", "").lower())


def raw_pages(path: Path) -> list[str]:
    import pdfplumber

    with pdfplumber.open(str(path)) as pdf:
        return [page.extract_text() or "" for page in pdf.pages]


def _amounts(text: str) -> Counter:
    return Counter(re.sub(r"\s", "", m).rstrip(".,") for m in DOLLARS.findall(text))


def audit(path: Path, chunk_size: int) -> dict:
    from ingest.chunking import chunk_document
    from ingest.loaders import load_document

    raw = "\n".join(raw_pages(path))
    chunks = chunk_document(load_document(path, max_bytes=10**9), path.name, chunk_size)
    texts = [c.text for c in chunks]
    vocab = {w.lower() for w in WORD.findall(raw.replace("-\n", ""))}
    cut = 0
    for before, after in zip(texts, texts[1:], strict=False):
        tail, head = re.search(r"[A-Za-z]+$", before), re.match(r"[A-Za-z]+", after)
        if tail and head:
            whole = (tail.group() + head.group()).lower()
            if whole in vocab and (tail.group().lower() not in vocab or head.group().lower() not in vocab):
                cut += 1
    kb_text = "\n".join(texts + sorted({part for c in chunks for part in c.section.split(" > ")}))
    raw_amounts, kb_amounts = _amounts(raw), _amounts(kb_text)
    raw_words, kb_words = Counter(_words(raw)), Counter(_words(kb_text))
    raw_numbers, kb_numbers = Counter(NUMBER.findall(raw)), Counter(NUMBER.findall(kb_text))
    return {
        "file": path.name,
        "chunks": len(chunks),
        "ligature_chunks": sum(bool(LIGATURES.search(t)) for t in texts),
        "dollar_amounts_raw": sum(raw_amounts.values()),
        "dollar_amounts_in_kb": sum((raw_amounts & kb_amounts).values()),
        "numbers_raw": sum(raw_numbers.values()),
        "numbers_in_kb": sum((raw_numbers & kb_numbers).values()),
        "words_in_kb_pct": round(100 * sum((raw_words & kb_words).values()) / max(1, sum(raw_words.values())), 1),
        "words_cut": cut,
        "sections": len({c.section for c in chunks}),
    }


def show(path: Path, page: int, chunk_size: int) -> None:
    from ingest.chunking import chunk_document
    from ingest.loaders import load_document

    for chunk in chunk_document(load_document(path, max_bytes=10**9), path.name, chunk_size):
        if chunk.page == page:
            print(f"--- [{chunk.section}] p.{chunk.page}\n{chunk.text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--show", help="FILE:PAGE — print the chunks of that page instead")
    args = parser.parse_args()
    if args.show:
        name, page = args.show.rsplit(":", 1)
        show(args.folder / name, int(page), args.chunk_size)
        return
    rows = [audit(p, args.chunk_size) for p in sorted(args.folder.glob("*.pdf"))]
    cols = list(rows[0])
    print(" | ".join(cols))
    for row in rows:
        print(" | ".join(str(row[c]) for c in cols))


if __name__ == "__main__":
    main()
