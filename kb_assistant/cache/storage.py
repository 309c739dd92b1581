"""The semantic cache's entries: storing answers, freshness, size, the in-memory similarity matrices.

The rows live in ``cache.database`` (``KB_DATABASE_URL``, e.g. Postgres shared by every replica, else the SQLite
file ``<data>/cache.sqlite3``). Similarity is an exact dot product over an in-memory float32 matrix per (KB,
language), rebuilt when any process or replica changed the entries (the database's generation number): at the size
limit (10,000 entries × 384 dims) that is well under a millisecond, exact, and leaves Chroma — single-writer when
embedded — to the documents.

An entry is fresh exactly while every chunk it cited is still live in the KB: chunk ids are content-addressed, so
an ingest that changes or deletes a cited chunk kills exactly the entries that cited it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kb_assistant.cache.database import CacheDatabase
from kb_assistant.cache.keys import is_personal, normalize_question, wording_key
from kb_assistant.schema import Answer

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from kb_assistant.settings import Settings
    from kb_assistant.store import KnowledgeBase


@dataclass
class _Space:
    """The in-memory similarity index of one (KB, language): entry ids, their unit vectors and wording keys."""

    ids: list[int]
    matrix: object  # numpy float32 (n, dims)
    wording: dict[str, list[int]] = field(default_factory=dict)


class CacheStorage:
    """The entries of one cache database: stored, kept fresh, bounded in number, and their similarity matrices."""

    def __init__(self, settings: Settings, embeddings: Embeddings):
        self.settings = settings
        self.embeddings = embeddings  # the retrieval model: a miss hands its query vector on to retrieval
        self._lock = threading.RLock()
        self._spaces: dict[tuple[str, str], _Space] = {}
        self._swept: dict[str, int] = {}
        self._generation: int | None = None
        self.db = CacheDatabase(settings)

    # --- embeddings ------------------------------------------------------------------------------------------
    def embedder(self, lang: str) -> tuple[str, Embeddings]:
        """(model tag, Embeddings) of a language's similarity layer; one model for both languages today, the
        retrieval model, whose tag keeps the vectors of two models apart (``embeddings.embedder_id``)."""
        from kb_assistant.embeddings import embedder_id

        return embedder_id(self.settings), self.embeddings

    # --- freshness -------------------------------------------------------------------------------------------
    def _fresh(self, row: dict, index: KnowledgeBase) -> bool:
        ttl = self.settings.cache_ttl_s
        if ttl and time.time() - row["created_at"] > ttl:
            self._delete([row["id"]], row["kb"], "expired")
            return False
        version = index.version
        if row["kb_version"] == version:
            return True
        chunk_ids = json.loads(row["chunk_ids"])
        if chunk_ids and index.is_live(chunk_ids):
            self.db.set_version([row["id"]], version)
            return True
        self._delete([row["id"]], row["kb"], "invalidations")  # a cited chunk changed or went (or: agent answer)
        return False

    def _sweep_if_changed(self, index: KnowledgeBase) -> None:
        """After an ingest, drop exactly the entries whose cited chunks changed (once per KB version)."""
        version = index.version
        if self._swept.get(index.name) == version:
            return
        rows = self.db.outdated(index.name, version)
        dead = [r["id"] for r in rows if not (json.loads(r["chunk_ids"]) and index.is_live(json.loads(r["chunk_ids"])))]
        live = [r["id"] for r in rows if r["id"] not in set(dead)]
        self.db.set_version(live, version)
        if dead:
            self._delete(dead, index.name, "invalidations")
        self._swept[index.name] = version

    # --- store -----------------------------------------------------------------------------------------------
    def store(
        self,
        index: KnowledgeBase,
        question: str,
        lang: str,
        answer: Answer,
        *,
        full_ms: float = 0.0,
        vector: list[float] | None = None,
        origin: str = "answer",
    ) -> bool:
        """Keep an answered, cited, non-personal answer; returns whether it was stored."""
        if not self.settings.cache_enabled or is_personal(question) or not answer.answered:
            return False
        if answer.escalation_reason or (origin == "answer" and not answer.citations):
            return False
        import numpy as np

        kb, key = index.name, normalize_question(question)
        chunk_ids = sorted({c.chunk_id for c in answer.citations})
        if self.db.is_refused(kb, lang, key, json.dumps(chunk_ids)):
            return False  # this very answer got a 👎: don't cache it again until its sources change
        model, embedder = self.embedder(lang)
        if vector is None or embedder is not self.embeddings:
            vector = embedder.embed_query(question)
        vec = np.asarray(vector, dtype=np.float32)
        vec = vec / (np.linalg.norm(vec) or 1.0)
        kept = answer.model_copy(
            update={"cached": False, "ticket_id": None, "session_id": None, "timings_ms": {}, "usage": None}
        )
        now = time.time()
        entry_id, replaced, generation = self.db.put(
            {"kb": kb, "language": lang, "key": key, "question": question, "model": model, "embedding": vec.tobytes(),
             "answer": kept.model_dump_json(), "chunk_ids": json.dumps(chunk_ids), "kb_version": index.version,
             "origin": origin, "created_at": now, "last_hit_at": now, "full_ms": full_ms}
        )  # fmt: skip
        with self._lock:
            self._spaces.pop((kb, lang), None) if replaced else self._append(kb, lang, model, entry_id, vec, question)
            self._wrote(generation)
        self._enforce_size(kb)
        return True

    def seed(self, index: KnowledgeBase, question: str, answer: Answer | str, *, lang: str | None = None) -> bool:
        """Cache an agent's answer promoted from the human queue. Without citations it lives until the KB changes."""
        from kb_assistant.language import detect_language

        lang = lang or detect_language(question)
        if isinstance(answer, str):
            answer = Answer(question=question, standalone_question=question, text=answer, answered=True,
                            confidence=1.0, language=lang, kb=index.name)  # fmt: skip
        return self.store(index, question, lang, answer, origin="agent")

    # --- size and deletion -----------------------------------------------------------------------------------
    def _enforce_size(self, kb: str) -> None:
        ids = self.db.least_recent(kb, keep=self.settings.cache_max_entries)
        if ids:
            self._delete(ids, kb, "evicted_lru")

    def _delete(self, ids: list[int], kb: str, counter: str) -> None:
        generation = self.db.delete(ids, kb, counter)
        with self._lock:
            self._spaces = {k: v for k, v in self._spaces.items() if k[0] != kb}
            self._wrote(generation)

    def _wrote(self, generation: int) -> None:
        """Our own write made ``generation`` (our matrices were updated with it): if no other process wrote since we
        last looked, they are current (call under the lock)."""
        if self._generation == generation - 1:
            self._generation = generation

    def close(self) -> None:
        self.db.close()

    # --- internals -------------------------------------------------------------------------------------------
    def _count(self, kb: str, **deltas: float) -> None:
        self.db.count(kb, deltas)

    def _space(self, kb: str, lang: str, model: str) -> _Space:
        import numpy as np

        generation = self.db.generation()
        with self._lock:
            if generation != self._generation:  # a process or replica changed the entries: our matrices may be behind
                self._spaces.clear()
                self._generation = generation
            space = self._spaces.get((kb, lang))
            if space is None:
                rows = self.db.space_rows(kb, lang, model)
                vectors = [np.frombuffer(r["embedding"], dtype=np.float32) for r in rows]
                matrix = np.vstack(vectors) if vectors else np.zeros((0, 1), dtype=np.float32)
                space = self._spaces[(kb, lang)] = _Space([r["id"] for r in rows], matrix)
                for r in rows:
                    space.wording.setdefault(wording_key(r["question"]), []).append(r["id"])
            return space

    def _append(self, kb: str, lang: str, model: str, entry_id: int, vec, question: str) -> None:
        import numpy as np

        space = self._spaces.get((kb, lang))
        if space is None:
            return  # loaded from SQLite on next use
        if not space.ids:
            self._spaces.pop((kb, lang))
            return
        space.ids.append(entry_id)
        space.wording.setdefault(wording_key(question), []).append(entry_id)
        space.matrix = np.vstack([space.matrix, vec[None, :]])
