"""Storage for one knowledge base: a Chroma collection (dense) and a BM25 keyword index, plus the KB registry.

Chroma is embedded (persistent, in the data dir) unless KB_CHROMA_URL names a server: the same code path.
Each FAQ chunk is stored twice in Chroma — its question alone and question + answer — so a paraphrase of the
question finds it even when the answer text is long; retrieval folds both back into one chunk.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from kb_assistant.schema import Chunk
from kb_assistant.settings import Settings, SettingsError, check_kb_name
from kb_assistant.text import query_terms, tokenize

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

COLLECTION_PREFIX = "kb_"
# Low k1: a passage that says a thing once, plainly, should not lose to one that repeats the words around it.
BM25_K1, BM25_B = 0.3, 0.75
QUESTION_SUFFIX = "::q"
_CLIENTS: dict[str, object] = {}
_CLIENT_LOCK = threading.Lock()


def chroma_client(settings: Settings):
    """One client per location per process (Chroma's embedded client must not be opened twice)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    key = settings.chroma_url or str((settings.data_dir / "chroma").resolve())
    with _CLIENT_LOCK:
        if key not in _CLIENTS:
            chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
            if settings.chroma_url:
                url = urlparse(settings.chroma_url)
                if not url.hostname:
                    raise SettingsError(f"KB_CHROMA_URL {settings.chroma_url!r} has no host")
                _CLIENTS[key] = chromadb.HttpClient(
                    host=url.hostname,
                    port=url.port or (443 if url.scheme == "https" else 8000),
                    ssl=url.scheme == "https",
                    settings=chroma_settings,
                )
            else:
                Path(key).mkdir(parents=True, exist_ok=True)
                _CLIENTS[key] = chromadb.PersistentClient(path=key, settings=chroma_settings)
        return _CLIENTS[key]


def list_kbs(settings: Settings) -> list[str]:
    names = [c.name if hasattr(c, "name") else str(c) for c in chroma_client(settings).list_collections()]
    return sorted(n[len(COLLECTION_PREFIX) :] for n in names if n.startswith(COLLECTION_PREFIX))


@dataclass
class Hit:
    chunk: Chunk
    score: float  # 0..1, higher = better


class KeywordIndex:
    """BM25 over jieba/word tokens, persisted beside the KB state; rebuilt by ingest, loaded by queries."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._bm25 = None
        self._ids: list[str] = []
        self._loaded_stamp: float | None = None

    def build(self, chunks: list[Chunk]) -> None:
        import bm25s

        corpus, ids = [], []
        for chunk in chunks:
            tokens = tokenize(chunk.search_text())
            if chunk.kind == "faq":
                tokens = tokenize(chunk.question) + tokens  # the question counts twice
            corpus.append(tokens or ["\u2205"])
            ids.append(chunk.id)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / "ids.json.tmp"
        if corpus:
            bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B)
            bm25.index(corpus, show_progress=False)
            bm25.save(str(self.directory / "bm25"))
        tmp.write_text(json.dumps(ids), encoding="utf-8")
        tmp.replace(self.directory / "ids.json")
        self._loaded_stamp = None

    def _load(self) -> None:
        import bm25s

        ids_file = self.directory / "ids.json"
        stamp = ids_file.stat().st_mtime if ids_file.exists() else None
        if stamp == self._loaded_stamp:
            return
        self._ids = json.loads(ids_file.read_text(encoding="utf-8")) if stamp else []
        self._bm25 = bm25s.BM25.load(str(self.directory / "bm25")) if self._ids else None
        self._loaded_stamp = stamp

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """(chunk id, raw BM25 score) best first; empty when no query term is in the vocabulary."""
        self._load()
        if self._bm25 is None:
            return []
        vocab = self._bm25.vocab_dict
        tokens = [t for t in query_terms(query) if t in vocab]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        top = scores.argsort()[::-1][: min(k, len(self._ids))]
        return [(self._ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def idf(self, token: str) -> float:
        """Inverse document frequency of a token in this KB (0 when unknown)."""
        self._load()
        if self._bm25 is None or token not in self._bm25.vocab_dict:
            return 0.0
        import math

        n_docs = len(self._ids)
        df = self._doc_freq().get(self._bm25.vocab_dict[token], 0)
        return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))

    def _doc_freq(self) -> dict[int, int]:
        if getattr(self, "_df_stamp", None) != self._loaded_stamp:
            import numpy as np

            # bm25s keeps a token-major sparse matrix: a token's document count is the length of its row
            counts = np.diff(self._bm25.scores["indptr"])
            self._df = dict(enumerate(counts.tolist()))
            self._df_stamp = self._loaded_stamp
        return self._df


class KnowledgeBaseIndex:
    """One KB: Chroma collection ``kb_<name>`` plus its keyword index and state in ``<data>/kb/<name>/``."""

    def __init__(self, settings: Settings, name: str, embeddings: Embeddings):
        self.settings = settings
        self.name = check_kb_name(name)
        self.embeddings = embeddings
        self.state_dir = settings.data_dir / "kb" / name
        self.keyword = KeywordIndex(self.state_dir / "keyword")
        self._collection = None

    # --- storage -------------------------------------------------------------------------------
    @property
    def collection(self):
        if self._collection is None:
            self._collection = chroma_client(self.settings).get_or_create_collection(
                COLLECTION_PREFIX + self.name, metadata={"hnsw:space": "cosine", "kb": self.name}
            )
        return self._collection

    def exists(self) -> bool:
        return self.name in list_kbs(self.settings)

    def count(self) -> int:
        """Number of chunks (FAQ question vectors not counted)."""
        return len(self.collection.get(where={"vector": "main"}, include=[])["ids"])

    def add(self, chunks: list[Chunk]) -> None:
        """Embed and upsert chunks in batches; FAQ chunks get a second, question-only vector."""
        if not chunks:
            return
        ids, texts, embed_texts, metas = [], [], [], []
        for chunk in chunks:
            meta = chunk.metadata()
            ids.append(chunk.id)
            texts.append(chunk.text)
            embed_texts.append(chunk.search_text())
            metas.append({**meta, "vector": "main"})
            if chunk.kind == "faq" and chunk.question:
                ids.append(chunk.id + QUESTION_SUFFIX)
                texts.append(chunk.question)
                embed_texts.append(chunk.question)
                metas.append({**meta, "vector": "question"})
        vectors = self._embed_unique(embed_texts)
        batch = 1000
        for start in range(0, len(ids), batch):
            sl = slice(start, start + batch)
            self.collection.upsert(ids=ids[sl], embeddings=vectors[sl], documents=texts[sl], metadatas=metas[sl])

    def _embed_unique(self, texts: list[str]) -> list[list[float]]:
        """Identical texts are embedded once."""
        unique = list(dict.fromkeys(texts))
        vectors = dict(zip(unique, self.embeddings.embed_documents(unique), strict=True))
        return [vectors[t] for t in texts]

    def delete_sources(self, sources: list[str]) -> None:
        for source in sources:
            self.collection.delete(where={"source": source})

    def all_chunks(self) -> list[Chunk]:
        got = self.collection.get(where={"vector": "main"}, include=["documents", "metadatas"])
        return [_to_chunk(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)]

    def get(self, ids: list[str]) -> dict[str, Chunk]:
        if not ids:
            return {}
        got = self.collection.get(ids=ids, include=["documents", "metadatas"])
        return {i: _to_chunk(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}

    def similarities(self, query_vector: list[float], ids: list[str]) -> dict[str, float]:
        """Cosine similarity (0..1) of the query to stored chunks, for candidates that came from keyword search."""
        if not ids:
            return {}
        import numpy as np

        got = self.collection.get(ids=ids, include=["embeddings"])
        q = np.asarray(query_vector, dtype=np.float32)
        return {
            i: float(max(0.0, min(1.0, np.dot(q, np.asarray(e, dtype=np.float32)))))
            for i, e in zip(got["ids"], got["embeddings"], strict=True)
        }

    def rebuild_keyword_index(self) -> None:
        self.keyword.build(self.all_chunks())

    # --- KB state --------------------------------------------------------------------------------
    def state(self) -> dict:
        f = self.state_dir / "state.json"
        return json.loads(f.read_text(encoding="utf-8")) if f.exists() else {"version": 0}

    def bump_version(self, **extra) -> int:
        state = self.state()
        state.update(extra)
        state["version"] = int(state.get("version", 0)) + 1
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.state_dir / "state.json")
        return state["version"]

    # --- search ----------------------------------------------------------------------------------
    def dense_search(self, query_vector: list[float], k: int) -> list[Hit]:
        """Cosine similarity in 0..1; a FAQ's question vector and main vector fold into one hit."""
        n = self.collection.count()
        if n == 0:
            return []
        res = self.collection.query(
            query_embeddings=[query_vector], n_results=min(k * 2, n), include=["documents", "metadatas", "distances"]
        )
        best: dict[str, Hit] = {}
        for vid, doc, meta, dist in zip(
            res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
        ):
            cid = vid.removesuffix(QUESTION_SUFFIX)
            score = max(0.0, min(1.0, 1.0 - float(dist)))  # cosine distance 0..2 → similarity, clipped
            if cid not in best or score > best[cid].score:
                text = doc if meta.get("vector") == "main" else None
                best[cid] = Hit(_to_chunk(cid, text, meta), score)
        hits = sorted(best.values(), key=lambda h: h.score, reverse=True)[:k]
        missing = [h.chunk.id for h in hits if h.chunk.text is None]
        if missing:
            full = self.get(missing)
            for h in hits:
                if h.chunk.text is None and h.chunk.id in full:
                    h.chunk = full[h.chunk.id]
        return hits


def _to_chunk(cid: str, text: str | None, meta: dict) -> Chunk:
    # model_construct: the text of a FAQ question vector is filled in afterwards, so skip validation here.
    return Chunk.model_construct(
        id=cid,
        text=text,
        source=meta.get("source", ""),
        title=meta.get("title", ""),
        section=meta.get("section", ""),
        page=meta.get("page"),
        kind=meta.get("kind", "text"),
        question=meta.get("question", ""),
    )
