"""Storage for one knowledge base: a Chroma collection (dense) and a BM25 keyword index, plus the KB registry.

Chroma is embedded (persistent, in the data dir) unless KB_CHROMA_URL names a server: the same code path.
Each FAQ chunk is stored twice in Chroma — its question alone and question + answer — so a paraphrase of the
question finds it even when the answer text is long; retrieval folds both back into one chunk.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from kb_assistant.files import write_atomic
from kb_assistant.glossary import Glossary, Term, load_glossary
from kb_assistant.schema import Chunk
from kb_assistant.settings import Settings, SettingsError, check_kb_name
from kb_assistant.text import TOKENIZER_VERSION, query_terms, tokenize

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_core.embeddings import Embeddings

COLLECTION_PREFIX = "kb_"
# Low k1: a passage that says a thing once, plainly, should not lose to one that repeats the words around it.
BM25_K1, BM25_B = 0.3, 0.75
QUESTION_SUFFIX = "::q"
CHANCE_MEETING = 0.05  # a wording's words met in a chunk count as saying it when chance would do that < 5%
PHRASE_CHECK_LIMIT = 500  # chunks looked at for a wording's phrase (of those holding all its words)
EXPANSION_WEIGHT = 0.15  # a glossary synonym's share in keyword search when the KB knows the question's own term
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
    """BM25 over jieba/word tokens, written once per published KB version into its own directory.

    The directory also keeps each chunk's tokens, so the next publish re-tokenizes only new chunks.
    """

    def __init__(self, directory: Path, glossary: Glossary | None = None):
        self.directory = directory
        self.glossary = glossary if glossary is not None else Glossary([])
        self._bm25 = None
        self._ids: list[str] = []
        self._id_set: frozenset[str] = frozenset()
        self._loaded = False
        self._said_memo: dict[tuple[Term, bool], bool] = {}  # _said's answers: fixed for this index version

    @staticmethod
    def write(directory: Path, tokens: dict[str, list[str]]) -> None:
        """Write a complete index for ``tokens`` (chunk id → tokens) into a new ``directory``."""
        import bm25s

        directory.mkdir(parents=True, exist_ok=True)
        ids = sorted(tokens)
        if ids:
            bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B)
            bm25.index([tokens[i] or ["\u2205"] for i in ids], show_progress=False)
            bm25.save(str(directory / "bm25"))
        (directory / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
        (directory / "tokenizer.txt").write_text(TOKENIZER_VERSION, encoding="utf-8")
        (directory / "ids.json").write_text(json.dumps(ids), encoding="utf-8")  # written last: marks it complete

    def tokens(self) -> dict[str, list[str]] | None:
        """Each chunk's tokens, or None for an index written before tokens were kept or by another tokenizer
        version (the next publish then re-tokenizes every chunk)."""
        f, version = self.directory / "tokens.json", self.directory / "tokenizer.txt"
        if not f.exists() or not version.exists() or version.read_text(encoding="utf-8").strip() != TOKENIZER_VERSION:
            return None
        return json.loads(f.read_text(encoding="utf-8"))

    def _load(self) -> None:
        if self._loaded:
            return
        import bm25s

        ids_file = self.directory / "ids.json"
        self._ids = json.loads(ids_file.read_text(encoding="utf-8")) if ids_file.exists() else []
        self._id_set = frozenset(self._ids)
        self._bm25 = bm25s.BM25.load(str(self.directory / "bm25")) if self._ids else None
        self._loaded = True

    @property
    def ids(self) -> frozenset[str]:
        self._load()
        return self._id_set

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """(chunk id, raw BM25 score) best first; empty when no query term is in the vocabulary."""
        self._load()
        if self._bm25 is None:
            return []
        vocab = self._bm25.vocab_dict
        own = [t for t in dict.fromkeys(query_terms(query)) if t in vocab]
        # The other wordings of the glossary concepts the question uses. When the KB never uses a word of the
        # question's own term ("office" in a Chinese handbook, 老婆), they stand in for it at full weight; when it
        # does, they only help, at a small weight, so they cannot drown the question's own words ("那周末呢" after
        # "几点上班" must still find the weekend rule).
        strong, weak = (
            [t for t in words if t in vocab and t not in own] for words in self.glossary.expansions(query, vocab)
        )
        if not own and not strong and not weak:
            return []
        scores = self._bm25.get_scores(own) if own else 0.0
        for extra, weight in ((strong, 1.0), (weak, EXPANSION_WEIGHT)):
            if extra:
                scores = scores + weight * self._bm25.get_scores(extra)
        top = scores.argsort()[::-1][: min(k, len(self._ids))]
        return [(self._ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def missing_concepts(self, query: str, tokens: Callable[[list[str]], list[list[str]]] | None = None) -> list[str]:
        """The glossary concepts the question names that this KB never says in any wording, nor any concept they
        are a kind of (国庆节 is said by 法定节假日): a workplace topic the question is about ("公司有班车吗",
        "sabbatical leave") that no passage can answer. Words alone would not do: most words the KB does not know
        in a question are context ("my wife", "Frankfurt"), not its topic.

        A one-word wording is said where a chunk holds it. A chunk holding every word of a longer one says it when
        that is unlikely by chance (hotel / 标准: two words of a few chunks each), or when it holds them in a row
        (stopwords aside): 远程 / 工作 and work / home meet in some chunk of most handbooks, "work from home" does
        not.
        ``tokens`` gives chunks' keyword tokens by chunk id, for the in-a-row check; without it any chunk holding
        every word says the wording."""
        self._load()
        if self._bm25 is None:
            return []
        return [
            m.term.text
            for m in self.glossary.matches(query)
            if not any(self._said(t, tokens) for t in (m.term, *m.alternatives, *m.broader))
        ]

    def _said(self, term: Term, tokens) -> bool:
        """Does some chunk say ``term``? (Remembered: the answer only changes with the index.)"""
        key = (term, tokens is not None)
        if key not in self._said_memo:
            self._said_memo[key] = self._chunk_saying(term, tokens)
        return self._said_memo[key]

    def _chunk_saying(self, term: Term, tokens) -> bool:
        import math

        import numpy as np

        vocab = self._bm25.vocab_dict
        if not term.tokens or any(t not in vocab for t in term.tokens):
            return False
        indptr, indices = self._bm25.scores["indptr"], self._bm25.scores["indices"]
        rows = sorted((indices[indptr[vocab[t]] : indptr[vocab[t] + 1]] for t in term.tokens), key=len)
        common = rows[0]  # rarest first
        for row in rows[1:]:
            common = np.intersect1d(common, row)
            if not len(common):
                return False
        n = len(self._ids)
        chance = n * math.prod(len(r) / n for r in rows)  # chunks expected to hold them all if words fell at random
        if len(rows) == 1 or tokens is None or 1 - math.exp(-chance) < CHANCE_MEETING:
            return True
        size = len(term.tokens)
        for start in range(0, min(len(common), PHRASE_CHECK_LIMIT), 100):
            for held in tokens([self._ids[i] for i in common[start : start + 100]]):  # stopwords left out
                if any(tuple(held[i : i + size]) == term.tokens for i in range(len(held) - size + 1)):
                    return True
        return False

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
        if getattr(self, "_df", None) is None:
            import numpy as np

            # bm25s keeps a token-major sparse matrix: a token's document count is the length of its row
            counts = np.diff(self._bm25.scores["indptr"])
            self._df = dict(enumerate(counts.tolist()))
        return self._df


def keyword_tokens(chunk: Chunk) -> list[str]:
    """What the keyword index holds for a chunk: its search text's tokens (a FAQ's question counts twice)."""
    tokens = tokenize(chunk.search_text())
    if chunk.kind == "faq":
        tokens = tokenize(chunk.question) + tokens
    return tokens


def vector_ids(chunk_ids) -> list[str]:
    """Every Chroma id a chunk may own: its main vector and, for a FAQ, its question vector."""
    return [v for cid in chunk_ids for v in (cid, cid + QUESTION_SUFFIX)]


class KnowledgeBaseIndex:
    """One KB: Chroma collection ``kb_<name>`` plus its published state in ``<data>/kb/<name>/``.

    Publishing is what makes chunks visible. ``state.json`` names the KB version and its keyword index directory;
    it is replaced atomically, and the ids in that keyword index are the LIVE chunk set. Chroma may hold vectors
    that are not live (written ahead of a publish, or left by an interrupted ingest): dense search drops them, so
    a half-ingested document is never seen. Readers notice a newer state.json (one stat) and reload.
    """

    STATE_FILE = "state.json"

    def __init__(self, settings: Settings, name: str, embeddings: Embeddings):
        self.settings = settings
        self.name = check_kb_name(name)
        self.embeddings = embeddings
        self.state_dir = settings.data_dir / "kb" / name
        self._collection = None
        self._state: dict = {"version": 0}
        self._state_stamp: tuple | None = None
        self.glossary = load_glossary(settings.glossary_builtin, settings.glossary_files)
        self._keyword = KeywordIndex(self.state_dir / "keyword", self.glossary)
        self._refresh_lock = threading.Lock()

    # --- published state -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Pick up a newer published state (another process or thread ingested); costs one stat when unchanged."""
        f = self.state_dir / self.STATE_FILE
        try:
            st = f.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self._state_stamp:
            return
        with self._refresh_lock:
            if stamp == self._state_stamp:
                return
            state = json.loads(f.read_text(encoding="utf-8")) if stamp else {"version": 0}
            self._keyword = KeywordIndex(self.state_dir / state.get("keyword", "keyword"), self.glossary)
            if self._state_stamp is not None and state.get("writer_pid") != os.getpid():
                self._collection = None  # published elsewhere (a --full rebuild may have made a new collection)
            self._state, self._state_stamp = state, stamp

    @property
    def keyword(self) -> KeywordIndex:
        if self._state_stamp is None:
            self.refresh()
        return self._keyword

    @property
    def version(self) -> int:
        """The published KB version: every change an ingest makes bumps it."""
        self.refresh()
        return int(self._state.get("version", 0))

    def state(self) -> dict:
        self.refresh()
        return dict(self._state)

    def live_ids(self) -> frozenset[str]:
        """The published chunk ids (checks for a newer publish first: one stat)."""
        self.refresh()
        return self._keyword.ids

    def is_live(self, chunk_ids) -> bool:
        """True when every one of ``chunk_ids`` is in the published KB (a cached answer citing them still holds)."""
        live = self.live_ids()
        return all(cid in live for cid in chunk_ids)

    def publish(self, version: int, tokens: dict[str, list[str]], **extra) -> None:
        """Make exactly the chunks in ``tokens`` live, as KB ``version``: one atomic rename of state.json."""
        kw_name = f"keyword-v{version}"
        kw_dir = self.state_dir / kw_name
        if kw_dir.exists():  # left by an interrupted publish of the same version
            import shutil

            shutil.rmtree(kw_dir)
        KeywordIndex.write(kw_dir, tokens)
        state = {**extra, "version": version, "keyword": kw_name, "chunks": len(tokens), "published_at": time.time()}
        write_atomic(self.state_dir / self.STATE_FILE, json.dumps(state, ensure_ascii=False))
        self.refresh()
        self._drop_old_keyword_dirs(keep=2)

    def _drop_old_keyword_dirs(self, keep: int) -> None:
        """Old versions go, except the newest few: a reader may still be loading the previous one."""
        import shutil

        dirs = []
        for d in self.state_dir.glob("keyword*"):
            n = d.name.removeprefix("keyword-v")
            dirs.append((int(n) if n.isdigit() else -1, d))
        for _, d in sorted(dirs)[:-keep]:
            shutil.rmtree(d, ignore_errors=True)

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
        """Number of live chunks (FAQ question vectors not counted)."""
        return len(self.live_ids())

    def write_vectors(
        self, chunks: list[Chunk], *, reuse_stored: bool = True, cache: dict | None = None, timings: dict | None = None
    ) -> int:
        """Embed and upsert chunks (not yet live); FAQ chunks get a second, question-only vector.

        Ids are content-addressed, so a vector already stored under a chunk's id by the same embedding model is
        reused, not re-embedded (an unchanged paragraph of an edited file, or work an interrupted ingest already
        did); only its metadata is refreshed. Identical texts are embedded once (``cache`` carries that across
        calls). Returns the number of texts embedded. ``timings`` gets "embed_s" and "store_s" added to it.
        """
        import hashlib

        import numpy as np

        embedder = self.embedder_id()
        timings = {} if timings is None else timings
        started = time.perf_counter()
        ids, texts, embed_texts, metas = [], [], [], []
        for chunk in chunks:
            meta = {**chunk.metadata(), "embedder": embedder}
            ids.append(chunk.id)
            texts.append(chunk.text)
            embed_texts.append(chunk.search_text())
            metas.append({**meta, "vector": "main"})
            if chunk.kind == "faq" and chunk.question:
                ids.append(chunk.id + QUESTION_SUFFIX)
                texts.append(chunk.question)
                embed_texts.append(chunk.question)
                metas.append({**meta, "vector": "question"})
        if reuse_stored and ids:
            stored = self.stored(ids, embedder=embedder)
            if stored:
                reused = [i for i, vid in enumerate(ids) if vid in stored]
                for start in range(0, len(reused), 2000):
                    part = reused[start : start + 2000]
                    self.collection.update(ids=[ids[i] for i in part], metadatas=[metas[i] for i in part])
                keep = [i for i, vid in enumerate(ids) if vid not in stored]
                ids, texts, embed_texts, metas = ([xs[i] for i in keep] for xs in (ids, texts, embed_texts, metas))
        if not ids:  # every vector reused: only metadata was written
            timings["store_s"] = timings.get("store_s", 0.0) + time.perf_counter() - started
            return 0
        cache = {} if cache is None else cache
        keys = [hashlib.sha1(t.encode()).digest() for t in embed_texts]
        todo = {k: t for k, t in zip(keys, embed_texts, strict=True) if k not in cache}
        embed_s = 0.0
        if todo:
            order = sorted(todo, key=lambda k: len(todo[k]))  # similar lengths share a batch: less padding
            t = time.perf_counter()
            vectors = self.embeddings.embed_documents([todo[k] for k in order])
            embed_s = time.perf_counter() - t
            cache.update(zip(order, np.asarray(vectors, dtype=np.float32), strict=True))
        batch = 2000
        for start in range(0, len(ids), batch):
            sl = slice(start, start + batch)
            self.collection.upsert(
                ids=ids[sl], embeddings=[cache[k] for k in keys[sl]], documents=texts[sl], metadatas=metas[sl]
            )
        timings["embed_s"] = timings.get("embed_s", 0.0) + embed_s
        timings["store_s"] = timings.get("store_s", 0.0) + time.perf_counter() - started - embed_s
        return len(todo)

    def add(self, chunks: list[Chunk]) -> None:
        """Write and publish chunks in one step, outside the ingest ledger: for evaluation and benchmark KBs built
        from data that is not a folder of documents (a KB synced by `kb ingest` gets its chunks from the ledger,
        and a later sync of it would not keep chunks added here)."""
        self.write_vectors(chunks)
        tokens = dict(self.keyword.tokens() or {})
        tokens.update({c.id: keyword_tokens(c) for c in chunks})
        self.publish(self.version + 1, tokens)

    def embedder_id(self) -> str:
        """Which model made a stored vector (kept in its metadata): a vector of another model is never reused."""
        return self.settings.embedding_model or "bundled-minilm"

    def stored(self, vector_ids: list[str], *, embedder: str | None = None) -> set[str]:
        """Which of these Chroma ids hold a vector (made by ``embedder``, when given)."""
        found: set[str] = set()
        for start in range(0, len(vector_ids), 5000):
            part = vector_ids[start : start + 5000]
            if embedder is None:
                found.update(self.collection.get(ids=part, include=[])["ids"])
            else:
                got = self.collection.get(ids=part, include=["metadatas"])
                metas = zip(got["ids"], got["metadatas"], strict=True)
                found.update(i for i, m in metas if (m or {}).get("embedder") == embedder)
        return found

    def stored_ids(self) -> list[str]:
        """Every id in the Chroma collection, live or not (FAQ question vectors included)."""
        return self.collection.get(include=[])["ids"]

    def delete_vectors(self, chunk_ids) -> None:
        """Remove chunks' vectors (main and FAQ question) from Chroma."""
        ids = vector_ids(chunk_ids)
        for start in range(0, len(ids), 5000):
            self.collection.delete(ids=ids[start : start + 5000])

    def missing_concepts(self, query: str) -> list[str]:
        """``KeywordIndex.missing_concepts``, with this KB's chunks' keyword tokens for its in-a-row check."""
        return self.keyword.missing_concepts(
            query, tokens=lambda ids: [keyword_tokens(c) for c in self.get(ids).values()]
        )

    def all_chunks(self) -> list[Chunk]:
        """The live chunks."""
        return list(self.get(sorted(self.live_ids())).values())

    def get(self, ids: list[str]) -> dict[str, Chunk]:
        out: dict[str, Chunk] = {}
        for start in range(0, len(ids), 5000):
            got = self.collection.get(ids=ids[start : start + 5000], include=["documents", "metadatas"])
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                out[i] = _to_chunk(i, d, m)
        return out

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

    # --- search ----------------------------------------------------------------------------------
    def dense_search(self, query_vector: list[float], k: int) -> list[Hit]:
        """Live chunks only; cosine similarity in 0..1; a FAQ's question vector and main vector fold into one hit."""
        n = self.collection.count()
        live = self.live_ids()
        if n == 0 or not live:
            return []
        asked = min(k * 2, n)
        while True:
            res = self.collection.query(
                query_embeddings=[query_vector], n_results=asked, include=["documents", "metadatas", "distances"]
            )
            best: dict[str, Hit] = {}
            for vid, doc, meta, dist in zip(
                res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
            ):
                cid = vid.removesuffix(QUESTION_SUFFIX)
                if cid not in live:
                    continue  # written ahead of a publish, or an orphan: not part of the KB (yet)
                score = max(0.0, min(1.0, 1.0 - float(dist)))  # cosine distance 0..2 → similarity, clipped
                if cid not in best or score > best[cid].score:
                    text = doc if meta.get("vector") == "main" else None
                    best[cid] = Hit(_to_chunk(cid, text, meta), score)
            if len(best) >= k or asked >= n:
                break
            asked = min(asked * 4, n)
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
