"""Dense vectors: one Chroma collection per KB (embedded, or the server KB_CHROMA_URL names — the same code).

Each FAQ chunk is stored twice — its question alone (id ``<chunk>::q``) and question + answer — so a paraphrase
of the question finds it even when the answer text is long; search folds both back into one hit. Ids are
content-addressed, so a vector already stored by the same model is reused, not re-embedded. Which vectors are
live is not this module's business: search takes the live set (``store.publication``) and drops the rest.

Every vector is tagged with the model that made it (``embeddings.embedder_id``). A model served by an embeddings
service (``KB_EMBEDDING_BASE_URL``) gets a collection of its own, ``kb_<name>.<model>-<hash>``: switching models
there re-embeds into a fresh collection, whatever the new model's dimension, while the old one keeps serving
whoever still asks with the old model.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from kb_assistant.schema import Chunk
from kb_assistant.settings import Settings, SettingsError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

COLLECTION_PREFIX = "kb_"
QUESTION_SUFFIX = "::q"
BATCH = 5000  # ids per Chroma get/delete call
WRITE_BATCH = 2000  # vectors per upsert/update call
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
    """Every KB with a collection, whichever model made it."""
    names = [c.name if hasattr(c, "name") else str(c) for c in chroma_client(settings).list_collections()]
    return sorted({n[len(COLLECTION_PREFIX) :].split(".", 1)[0] for n in names if n.startswith(COLLECTION_PREFIX)})


def collection_name(settings: Settings, kb: str) -> str:
    """``kb_<name>`` for a local model; ``kb_<name>.<model>-<hash>`` for a service's (KB names hold no dot)."""
    if not settings.embedding_base_url:
        return COLLECTION_PREFIX + kb
    model = str(settings.embedding_model)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-")[-40:].strip("-")
    return f"{COLLECTION_PREFIX}{kb}.{slug}-{hashlib.sha1(model.encode()).hexdigest()[:8]}".replace(".-", ".")


def _raise_if_dimension(exc: Exception, settings: Settings, kb: str) -> None:
    """Chroma's "expecting embedding with dimension of N" raised again as a message naming the setting."""
    from kb_assistant.embeddings import EmbeddingModelError, embedder_id

    if "dimension" not in str(exc):
        return
    fix = (
        "the service changed the model behind that name: give each model its own KB_EMBEDDING_MODEL name"
        if settings.embedding_base_url
        else "local models share one collection per KB, so one of another dimension needs a new KB (--kb) or a "
        "service (KB_EMBEDDING_BASE_URL, where each model gets a collection of its own)"
    )
    raise EmbeddingModelError(
        f"KB {kb!r}: the vectors of {embedder_id(settings)} (KB_EMBEDDING_MODEL) do not fit the ones stored in its "
        f"collection {collection_name(settings, kb)} ({exc}): {fix}."
    ) from exc


def vector_ids(chunk_ids: Iterable[str]) -> list[str]:
    """Every Chroma id a chunk may own: its main vector and, for a FAQ, its question vector."""
    return [v for cid in chunk_ids for v in (cid, cid + QUESTION_SUFFIX)]


def chunk_of(vector_id: str) -> str:
    """The chunk a Chroma id belongs to (a FAQ's question vector belongs to its chunk)."""
    return vector_id.removesuffix(QUESTION_SUFFIX)


@dataclass
class Hit:
    chunk: Chunk
    score: float  # 0..1, higher = better


class Vectors:
    """The Chroma collection ``kb_<name>``: write, read back, and search by a query vector."""

    def __init__(self, settings: Settings, name: str, embeddings: Embeddings | None):
        self.settings = settings
        self.name = name
        self.embeddings = embeddings
        self._collection = None

    @property
    def collection(self):
        if self._collection is None:
            self._collection = chroma_client(self.settings).get_or_create_collection(
                collection_name(self.settings, self.name), metadata={"hnsw:space": "cosine", "kb": self.name}
            )
        return self._collection

    def reopen(self) -> None:
        """Forget the collection handle (another process may have made a new collection: a --full rebuild)."""
        self._collection = None

    def embedder_id(self) -> str:
        """Which model made a stored vector (kept in its metadata): a vector of another model is never reused."""
        from kb_assistant.embeddings import embedder_id

        return embedder_id(self.settings)

    # --- writing -------------------------------------------------------------------------------------
    def write(
        self, chunks: list[Chunk], *, reuse_stored: bool = True, cache: dict | None = None, timings: dict | None = None
    ) -> int:
        """Embed and upsert chunks (not yet live); FAQ chunks get a second, question-only vector.

        A vector already stored under a chunk's id by the same embedding model is reused, not re-embedded (an
        unchanged paragraph of an edited file, or work an interrupted ingest already did); only its metadata is
        refreshed. Identical texts are embedded once (``cache`` carries that across calls). Returns the number of
        texts embedded. ``timings`` gets "embed_s" and "store_s" added to it.
        """
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
                for start in range(0, len(reused), WRITE_BATCH):
                    part = reused[start : start + WRITE_BATCH]
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
        for start in range(0, len(ids), WRITE_BATCH):
            sl = slice(start, start + WRITE_BATCH)
            try:
                self.collection.upsert(
                    ids=ids[sl], embeddings=[cache[k] for k in keys[sl]], documents=texts[sl], metadatas=metas[sl]
                )
            except Exception as exc:
                _raise_if_dimension(exc, self.settings, self.name)
                raise
        timings["embed_s"] = timings.get("embed_s", 0.0) + embed_s
        timings["store_s"] = timings.get("store_s", 0.0) + time.perf_counter() - started - embed_s
        return len(todo)

    def set_groups(self, changes: dict[str, frozenset[str]]) -> None:
        """Give chunks' vectors (main and FAQ question) their access groups in the metadata the dense filter reads
        (``store.visibility``); no vector is re-embedded."""
        if not changes:
            return
        ids = vector_ids(changes)
        stored = self.stored(ids)
        ids = [vid for vid in ids if vid in stored]
        for start in range(0, len(ids), WRITE_BATCH):
            part = ids[start : start + WRITE_BATCH]
            self.collection.update(ids=part, metadatas=[chroma_metadata(changes[chunk_of(vid)]) for vid in part])

    def delete(self, chunk_ids: Iterable[str]) -> None:
        """Remove chunks' vectors (main and FAQ question)."""
        self._delete_ids(vector_ids(chunk_ids))

    def delete_orphans(self, live: Collection[str]) -> int:
        """Remove every vector whose chunk is not in ``live`` (left by an interrupted or failed run)."""
        orphans = [vid for vid in self.stored_ids() if chunk_of(vid) not in live]
        self._delete_ids(orphans)
        return len(orphans)

    def _delete_ids(self, ids: list[str]) -> None:
        for start in range(0, len(ids), BATCH):
            self.collection.delete(ids=ids[start : start + BATCH])

    # --- reading -------------------------------------------------------------------------------------
    def stored(self, ids: list[str], *, embedder: str | None = None) -> set[str]:
        """Which of these Chroma ids hold a vector (made by ``embedder``, when given)."""
        found: set[str] = set()
        for start in range(0, len(ids), BATCH):
            part = ids[start : start + BATCH]
            if embedder is None:
                found.update(self.collection.get(ids=part, include=[])["ids"])
            else:
                got = self.collection.get(ids=part, include=["metadatas"])
                metas = zip(got["ids"], got["metadatas"], strict=True)
                found.update(i for i, m in metas if (m or {}).get("embedder") == embedder)
        return found

    def stored_ids(self) -> list[str]:
        """Every id in the collection, live or not (FAQ question vectors included)."""
        return self.collection.get(include=[])["ids"]

    def get(self, ids: list[str]) -> dict[str, Chunk]:
        out: dict[str, Chunk] = {}
        for start in range(0, len(ids), BATCH):
            got = self.collection.get(ids=ids[start : start + BATCH], include=["documents", "metadatas"])
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                out[i] = to_chunk(i, d, m)
        return out

    def similarities(self, query_vector: list[float], ids: list[str]) -> dict[str, float]:
        """Cosine similarity (0..1) of the query to stored vectors, for candidates that came from keyword search."""
        if not ids:
            return {}
        import numpy as np

        got = self.collection.get(ids=ids, include=["embeddings"])
        q = np.asarray(query_vector, dtype=np.float32)
        return {
            i: float(max(0.0, min(1.0, np.dot(q, np.asarray(e, dtype=np.float32)))))
            for i, e in zip(got["ids"], got["embeddings"], strict=True)
        }

    def probe(self) -> None:
        """One stored vector read back and searched with (readiness: raises when Chroma cannot serve)."""
        got = self.collection.get(limit=1, include=["embeddings"])
        if got["ids"]:
            self.collection.query(query_embeddings=[got["embeddings"][0]], n_results=1, include=["metadatas"])

    def search(self, query_vector: list[float], k: int, live: Collection[str], where: dict | None = None) -> list[Hit]:
        """The ``k`` chunks of ``live`` nearest the query (cosine similarity in 0..1), a FAQ's question vector and
        main vector folded into one hit; ``where``: a Chroma metadata filter applied inside the search."""
        n = self.collection.count()
        if n == 0 or not live:
            return []
        asked = min(k * 2, n)
        while True:
            try:
                res = self.collection.query(
                    query_embeddings=[query_vector], n_results=asked, where=where,
                    include=["documents", "metadatas", "distances"],
                )  # fmt: skip
            except Exception as exc:
                _raise_if_dimension(exc, self.settings, self.name)
                raise
            best: dict[str, Hit] = {}
            for vid, doc, meta, dist in zip(
                res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
            ):
                cid = chunk_of(vid)
                if cid not in live:
                    continue  # written ahead of a publish, or an orphan: not part of the KB (yet)
                score = max(0.0, min(1.0, 1.0 - float(dist)))  # cosine distance 0..2 → similarity, clipped
                if cid not in best or score > best[cid].score:
                    text = doc if meta.get("vector") == "main" else None
                    best[cid] = Hit(to_chunk(cid, text, meta), score)
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


RESTRICTED, GROUPS = "restricted", "groups"  # the metadata keys of a vector limited to access groups


def chroma_metadata(groups) -> dict:
    """The metadata update that gives a vector its groups (none: unrestricted; None deletes a key in Chroma)."""
    groups = sorted(groups)
    return {RESTRICTED: True, GROUPS: groups} if groups else {RESTRICTED: None, GROUPS: None}


def to_chunk(cid: str, text: str | None, meta: dict) -> Chunk:
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
