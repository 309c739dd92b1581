"""The two yardsticks a token-presence eval reports beside our answers (see eval/README.md, policy_pdfs).

- **ceiling**: whether some 600-character stretch of the question's own document holds the tokens — the most any
  extractive answer of that length can reach;
- **chance**: whether some 600-character stretch of *another* document of the set — an unrelated organisation's —
  holds the tokens: how often the token test passes by coincidence, which the ceiling (and any answer) also gets;
- **plain baseline**: what a user builds in an afternoon — LangChain's RecursiveCharacterTextSplitter(500, 50) over
  the PDF text, MiniLM (our embeddings factory), and the top-1 chunk by cosine as the answer.

Both read the PDFs' own text (pdfminer, extracted once and kept beside the eval KB), not our ingest's chunks, so
they do not move when our loader changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from eval.metrics import best_window, presence_verdict, token_share

CHUNK_SIZE, CHUNK_OVERLAP = 500, 50


def document_texts(documents: list[Path], cache_dir: Path) -> dict[str, str]:
    """File name → the PDF's text (pdfminer), cached by content hash in ``cache_dir``."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    texts = {}
    for path in documents:
        digest = hashlib.sha1(path.read_bytes()).hexdigest()[:16]
        cached = cache_dir / f"{path.stem}-{digest}.txt"
        if not cached.exists():
            from pdfminer.high_level import extract_text

            cached.write_text(extract_text(str(path)), encoding="utf-8")
        texts[path.name] = cached.read_text(encoding="utf-8")
    return texts


def ceiling(items, texts: dict[str, str]) -> list[dict]:
    """Per question: the best share a 600-character window of its document holds, its verdict and the window."""
    rows = []
    for item in items:
        share, start = best_window(texts.get(item.document, ""), item.tokens)
        rows.append({"share": round(share, 4), "verdict": presence_verdict(share), "start": start})
    return rows


def chance(items, texts: dict[str, str]) -> list[dict] | None:
    """Per question: the best share a 600-character window of any other document holds, and which document. None
    for a set of one document (there is no other)."""
    if len(texts) < 2:
        return None
    rows = []
    for item in items:
        share, source = max((best_window(text, item.tokens)[0], name) for name, text in texts.items()
                            if name != item.document)  # fmt: skip
        rows.append({"share": round(share, 4), "verdict": presence_verdict(share), "source": source})
    return rows


def plain_baseline(items, texts: dict[str, str], embeddings, cache_dir: Path, model: str = "") -> list[dict]:
    """Per question: the top-1 chunk of the plain index (all documents in one index), its share and verdict.
    ``model`` names the embedding model: its chunk vectors are cached apart from another model's."""
    import numpy as np
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    chunks = [(name, piece) for name, text in sorted(texts.items()) for piece in splitter.split_text(text)]
    key = hashlib.sha1(json.dumps([model, chunks]).encode()).hexdigest()[:16]
    cached = cache_dir / f"baseline-{key}.npy"
    if cached.exists():
        vectors = np.load(cached)
    else:
        vectors = np.asarray(embeddings.embed_documents([c for _, c in chunks]), dtype=np.float32)
        np.save(cached, vectors)
    queries = np.asarray(embeddings.embed_documents([i.question for i in items]), dtype=np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    top = (queries @ vectors.T).argmax(axis=1)
    rows = []
    for item, best in zip(items, top, strict=True):
        source, text = chunks[int(best)]
        share = token_share(text, item.tokens)
        rows.append({"share": round(share, 4), "verdict": presence_verdict(share), "source": source, "text": text})
    return rows
