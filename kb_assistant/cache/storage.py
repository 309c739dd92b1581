"""The semantic cache's storage: the SQLite file, storing answers, freshness, size, the similarity matrices.

One SQLite file, ``<data>/cache.sqlite3`` (WAL, busy timeout), holding the entries (question, float32
embedding, Answer JSON, cited chunk ids, KB version, hits, time saved) and the counters behind ``stats()``.
SQLite because it is in the standard library, survives restarts, and lets the chat, the API and
``kb cache clear`` share one file across processes; its own file, not the queue's database, because the cache
is disposable (delete it any time) and must never put tickets at risk. Similarity is an exact dot product over
an in-memory float32 matrix per (KB, language), rebuilt from SQLite when another process writes (SQLite's
``data_version``): at the size limit (10,000 entries × 384 dims) that is well under a millisecond, exact, and
leaves Chroma — single-writer when embedded — to the documents.

An entry is fresh exactly while every chunk it cited is still live in the KB: chunk ids are content-addressed, so
an ingest that changes or deletes a cited chunk kills exactly the entries that cited it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kb_assistant import db
from kb_assistant.cache.keys import is_personal, normalize_question, wording_key
from kb_assistant.schema import Answer

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from kb_assistant.settings import Settings
    from kb_assistant.store import KnowledgeBase

MIGRATIONS = db.Migrations(db.MIGRATIONS_HOME / "cache", "cache_alembic_version")


@dataclass
class _Space:
    """The in-memory similarity index of one (KB, language): entry ids, their unit vectors and wording keys."""

    ids: list[int]
    matrix: object  # numpy float32 (n, dims)
    wording: dict[str, list[int]] = field(default_factory=dict)


class CacheStorage:
    """The entries of one cache file: stored, kept fresh, bounded in number, and their similarity matrices."""

    def __init__(self, settings: Settings, embeddings: Embeddings):
        self.settings = settings
        self.embeddings = embeddings  # the retrieval model: a miss hands its query vector on to retrieval
        self._lock = threading.RLock()
        self._spaces: dict[tuple[str, str], _Space] = {}
        self._swept: dict[str, int] = {}
        self._data_version = None
        self.path = settings.path("cache.sqlite3")
        MIGRATIONS.ensure(db.engine(db.sqlite_url(self.path)))  # the schema; the lookups run on sqlite3 itself
        self._db = db.sqlite_connection(self.path)
        self._db.row_factory = sqlite3.Row

    # --- embeddings ------------------------------------------------------------------------------------------
    def embedder(self, lang: str) -> tuple[str, Embeddings]:
        """(model tag, Embeddings) of a language's similarity layer; one model for both languages today, the
        retrieval model, whose tag keeps the vectors of two models apart (``embeddings.embedder_id``)."""
        from kb_assistant.embeddings import embedder_id

        return embedder_id(self.settings), self.embeddings

    # --- freshness -------------------------------------------------------------------------------------------
    def _fresh(self, row: sqlite3.Row, index: KnowledgeBase) -> bool:
        ttl = self.settings.cache_ttl_s
        if ttl and time.time() - row["created_at"] > ttl:
            self._delete([row["id"]], row["kb"], "expired")
            return False
        version = index.version
        if row["kb_version"] == version:
            return True
        chunk_ids = json.loads(row["chunk_ids"])
        if chunk_ids and index.is_live(chunk_ids):
            with self._lock:
                self._db.execute("UPDATE cache_entries SET kb_version=? WHERE id=?", (version, row["id"]))
            return True
        self._delete([row["id"]], row["kb"], "invalidations")  # a cited chunk changed or went (or: agent answer)
        return False

    def _sweep_if_changed(self, index: KnowledgeBase) -> None:
        """After an ingest, drop exactly the entries whose cited chunks changed (once per KB version)."""
        version = index.version
        if self._swept.get(index.name) == version:
            return
        with self._lock:
            rows = self._db.execute(
                "SELECT id, chunk_ids FROM cache_entries WHERE kb=? AND kb_version<>?", (index.name, version)
            ).fetchall()
        dead = [r["id"] for r in rows if not (json.loads(r["chunk_ids"]) and index.is_live(json.loads(r["chunk_ids"])))]
        live = [r["id"] for r in rows if r["id"] not in set(dead)]
        with self._lock:
            if live:
                self._db.executemany("UPDATE cache_entries SET kb_version=? WHERE id=?", [(version, i) for i in live])
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
        with self._lock:
            refused = self._db.execute(
                "SELECT 1 FROM cache_refused WHERE kb=? AND language=? AND key=? AND chunk_ids=?",
                (kb, lang, key, json.dumps(chunk_ids)),
            ).fetchone()
        if refused:
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
        with self._tx():
            old = self._db.execute(
                "SELECT id FROM cache_entries WHERE kb=? AND language=? AND key=?", (kb, lang, key)
            ).fetchone()
            if old:
                self._db.execute("DELETE FROM cache_entries WHERE id=?", (old["id"],))
            cur = self._db.execute(
                "INSERT INTO cache_entries (kb, language, key, question, model, embedding, answer, chunk_ids,"
                " kb_version, origin, created_at, last_hit_at, full_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (kb, lang, key, question, model, vec.tobytes(), kept.model_dump_json(), json.dumps(chunk_ids),
                 index.version, origin, now, now, full_ms),
            )  # fmt: skip
            self._bump(kb, {"stores": 1})
            self._spaces.pop((kb, lang), None) if old else self._append(kb, lang, model, cur.lastrowid, vec, question)
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
        limit = self.settings.cache_max_entries
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM cache_entries WHERE kb=?", (kb,)).fetchone()
            if n <= limit:
                return
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM cache_entries WHERE kb=? ORDER BY last_hit_at, id LIMIT ?", (kb, n - limit)
                )
            ]
        self._delete(ids, kb, "evicted_lru")

    def _delete(self, ids: list[int], kb: str, counter: str) -> None:
        marks = ",".join("?" * len(ids))
        with self._tx():
            n = self._db.execute(f"DELETE FROM cache_entries WHERE id IN ({marks})", ids).rowcount
            self._db.execute(f"DELETE FROM cache_served WHERE entry_id IN ({marks})", ids)
            self._bump(kb, {counter: n})
            self._spaces = {k: v for k, v in self._spaces.items() if k[0] != kb}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- internals -------------------------------------------------------------------------------------------
    @contextmanager
    def _tx(self):
        """One write transaction (under the lock): committed, or rolled back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _count(self, kb: str, **deltas: float) -> None:
        with self._lock:
            self._bump(kb, deltas)

    def _bump(self, kb: str, deltas: dict[str, float]) -> None:
        self._db.executemany(
            "INSERT INTO cache_counters VALUES (?, ?, ?)"
            " ON CONFLICT (kb, name) DO UPDATE SET value=value+excluded.value",
            [(kb, name, value) for name, value in deltas.items() if value],
        )

    def _space(self, kb: str, lang: str, model: str) -> _Space:
        import numpy as np

        with self._lock:
            (data_version,) = self._db.execute("PRAGMA data_version").fetchone()
            if data_version != self._data_version:  # another process wrote: our matrices may be behind
                self._spaces.clear()
                self._data_version = data_version
            space = self._spaces.get((kb, lang))
            if space is None:
                rows = self._db.execute(
                    "SELECT id, embedding, question FROM cache_entries"
                    " WHERE kb=? AND language=? AND model=? ORDER BY id",
                    (kb, lang, model),
                ).fetchall()
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
