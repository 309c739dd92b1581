"""Search latency as the KB grows: retrieve + rerank + extractive answer at 10,000 and 100,000 chunks.

    .venv/bin/python -m eval.bench_retrieval [--sizes 10000 100000] [--n 60]

The KB is the bundled sample KB (real chunks, real MiniLM vectors) padded with synthetic chunks: sentences of the
sample handbook recombined, with their own ids, sources and sections, in both languages. Embedding 100,000 chunks
with MiniLM takes ~20 minutes on 2 cores and says nothing about search cost, so the padding chunks get random unit
vectors (a harder case for the HNSW graph than real, clustered vectors); questions are embedded by the real model.
Prints p50/p95 per size of the stages a question pays after condensing (retrieve + rerank + answer) and the ratio
of the largest size to the smallest. A measurement, not a test: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from pathlib import Path

WARM = [
    "公司几点上班？",
    "How many days of sick leave do I get?",
    "出差住酒店每晚能报销多少？",
    "What is the gym subsidy?",
]


def padding_chunks(real, n: int, seed: int = 0):
    """``n`` synthetic chunks made of recombined sentences of the real ones."""
    from kb_assistant.language import split_sentences
    from kb_assistant.schema import Chunk

    rng = random.Random(seed)
    sentences = [s for c in real for s in split_sentences(c.text) if len(s) > 8]
    out = []
    for i in range(n):
        text = " ".join(rng.sample(sentences, k=min(len(sentences), rng.randint(3, 7))))
        cid = hashlib.sha1(f"pad{seed}-{i}".encode()).hexdigest()[:24]
        out.append(Chunk(id=cid, text=text, source=f"padding/doc-{i // 10:05d}.md", title=f"Doc {i // 10}",
                         section=f"Section {i % 10}"))  # fmt: skip
    return out


class RandomDocumentVectors:
    """Real query vectors, random unit document vectors (for padding only)."""

    def __init__(self, real):
        self.real, self.dim = real, len(real.embed_query("width"))

    def embed_query(self, text: str):
        return self.real.embed_query(text)

    def embed_documents(self, texts: list[str]):
        import numpy as np

        rng = np.random.default_rng(len(texts))
        v = rng.standard_normal((len(texts), self.dim)).astype("float32")
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v.tolist()


def build(data_dir: Path, size: int, embeddings) -> None:
    from ingest.pipeline import ingest_paths, sample_kb_root
    from kb_assistant.settings import Settings
    from kb_assistant.store import KnowledgeBase, keyword_tokens

    settings = Settings(data_dir=data_dir)
    ingest_paths(settings, [sample_kb_root() / "default"], "bench")
    index = KnowledgeBase(settings, "bench", RandomDocumentVectors(embeddings))
    real = index.all_chunks()
    pad = padding_chunks(real, size - len(real))
    for start in range(0, len(pad), 5000):
        index.vectors.write(pad[start : start + 5000], reuse_stored=False)
    tokens = dict(index.published_tokens() or {})
    tokens.update({c.id: keyword_tokens(c) for c in pad})
    index.publish(index.version + 1, tokens)


def measure(data_dir: Path, n: int, embeddings) -> dict:
    from eval.datasets import load_golden
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings

    assistant = Assistant(Settings(data_dir=data_dir), embeddings=embeddings)
    for q in WARM:  # the first questions load indexes and caches: not what users wait for
        assistant.ask(q, kb="bench")
    paid = []
    for item in load_golden().items[:n]:  # distinct questions, both languages, some unanswerable
        t = assistant.ask(item.question, kb="bench").timings_ms
        paid.append(sum(t.get(s, 0.0) for s in ("retrieve", "rerank", "answer")))
    chunks = assistant.index("bench").count()
    return {"chunks": chunks, "p50": _pct(paid, 0.5), "p95": _pct(paid, 0.95)}


def _pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    from kb_assistant.embeddings import make_embeddings
    from kb_assistant.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--n", type=int, default=95, help="golden-set questions per size")
    parser.add_argument("--keep", type=Path, help="build the KBs here and reuse them on the next run")
    args = parser.parse_args()
    embeddings = make_embeddings(Settings())
    root = args.keep or Path(tempfile.mkdtemp(prefix="kb-bench-retrieval-"))
    results = []
    for size in args.sizes:
        data_dir = root / f"kb-{size}"
        if not (data_dir / "built").exists():
            start = time.perf_counter()
            build(data_dir, size, embeddings)
            (data_dir / "built").write_text("ok", encoding="utf-8")
            print(f"built {size:,} chunks in {time.perf_counter() - start:.0f}s")
        r = measure(data_dir, args.n, embeddings)
        results.append(r)
        print(f"{r['chunks']:>8,} chunks: retrieve+rerank+answer p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms")
    if len(results) > 1:
        print(f"p95 ratio {results[-1]['chunks']:,} / {results[0]['chunks']:,} chunks: "
              f"{results[-1]['p95'] / results[0]['p95']:.2f}x (target ≤ 2x); 10k p95 target ≤ 150 ms")  # fmt: skip


if __name__ == "__main__":
    main()
