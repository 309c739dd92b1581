"""The semantic cache: repeats answered without retrieval, paraphrases on their own evidence; never wrong or stale.

    question ─► condense ─► cache.lookup ─┬─ hit: the stored Answer (cached=True, a fresh id)
                                          └─ miss: retrieve … answer ─► cache.store (answered, cited, not personal)

Lookup has three layers, keyed per KB and language: the normalised question (NFKC, case, punctuation, width); the
wording key (the same content words in other function words: "do I get" / "can I get", 怎么/如何, 吗/呢), which needs no
model; then embedding similarity (0..1) above a per-language threshold. The last two serve a paraphrase only if it
also passes the near-miss guard of ``cache_guard`` (no difference in negation, numbers, dates, names or key content
words; a swapped word the cached answer says, or a glossary synonym, is no difference) and the new question's own
retrieval agrees with the cached answer (``agrees``: its top passage after rerank is one the answer cited, and its
confidence clears the answer threshold). Retrieval costs tens of milliseconds, the LLM call a hit saves seconds, and
the caller keeps that retrieval for the full answer when the check fails. Exact repeats skip the check. MiniLM
cannot tell Chinese questions apart, so Chinese stops at the wording key by default (``cache_threshold_zh`` = 1.0).
Personal questions are neither stored nor served. An entry is fresh exactly while every chunk it cited is still live
in the KB: chunk ids are content-addressed, so an ingest that changes or deletes a cited chunk kills exactly the
entries that cited it.

Storage: one SQLite file, ``<data>/cache.sqlite3`` (WAL, busy timeout), holding the entries (question, float32
embedding, Answer JSON, cited chunk ids, KB version, hits, time saved) and the counters behind ``stats()``.
SQLite because it is in the standard library, survives restarts, and lets the chat, the API and
``kb cache clear`` share one file across processes; its own file, not the queue's database, because the cache
is disposable (delete it any time) and must never put tickets at risk. Similarity is an exact dot product over
an in-memory float32 matrix per (KB, language), rebuilt from SQLite when another process writes (SQLite's
``data_version``): at the size limit (10,000 entries × 384 dims) that is well under a millisecond, exact, and
leaves Chroma — single-writer when embedded — to the documents.

Concurrent identical questions are single-flight: the first asker answers, the others wait for its entry.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from pydantic import BaseModel

from kb_assistant import db
from kb_assistant.cache_guard import is_personal, near_miss_reason, normalize_question, wording_key
from kb_assistant.schema import Answer

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_core.embeddings import Embeddings

    from kb_assistant.settings import Settings
    from kb_assistant.store import KnowledgeBase

_FLIGHTS: dict[tuple, _Flight] = {}  # questions being answered right now, by (cache file, kb, language, key)
_FLIGHTS_LOCK = threading.Lock()
CANDIDATES = 5  # most similar entries put through the guard per lookup
MIGRATIONS = db.Migrations(db.MIGRATIONS_HOME / "cache", "cache_alembic_version")
COUNTERS = (
    "lookups", "exact_hits", "wording_hits", "semantic_hits", "near_misses", "personal", "stores",
    "invalidations", "expired", "evicted_lru", "evicted_feedback", "saved_ms", "disagreed",
    "dropped",
)  # fmt: skip


class CacheStats(BaseModel):
    """What ``kb cache stats`` and the admin view show, for one KB or (kb=None) all of them."""

    kb: str | None = None
    entries: int = 0
    lookups: int = 0
    hits: int = 0
    exact_hits: int = 0
    wording_hits: int = 0  # paraphrases in other function words, served without the embedding model
    semantic_hits: int = 0
    hit_rate: float = 0.0
    near_misses_rejected: int = 0
    evidence_disagreed: int = 0  # paraphrase candidates whose question's own retrieval did not back them
    personal_skipped: int = 0
    invalidations: int = 0
    expired: int = 0
    evicted_lru: int = 0
    evicted_feedback: int = 0
    time_saved_s: float = 0.0


class CacheEntry(BaseModel):
    """One cached answer as ``kb cache list`` shows it: what was asked, what it says and cites, who got it."""

    id: int
    kb: str
    language: str
    question: str
    answer: str
    origin: str  # "answer" (the pipeline's) or "agent" (promoted from the human queue)
    hits: int
    sources: list[str]  # the cited sources, "file › section"
    answer_id: str  # the answer it was stored from
    served: list[str]  # ids of the answers served from it (most recent first); the answer log knows their users
    created_at: float
    last_hit_at: float


@dataclass
class Lookup:
    """A lookup's outcome: ``answer`` on a hit; on a miss, what the full path may reuse and must give back."""

    answer: Answer | None = None
    kind: str | None = None  # "exact" | "wording" | "semantic"
    cacheable: bool = False
    query_vector: list[float] | None = None
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (cached question, guard's reason)
    entry_id: int | None = None
    full_ms: float = 0.0
    evidence: Any = None  # the caller's retrieval for the agreement check, reused by the full answer on a miss
    _flight: _Flight | None = None

    def release(self) -> None:
        """Let the askers waiting on this question look again (call when the full answer is stored or failed)."""
        if self._flight is not None:
            self._flight.land()
            self._flight = None


EVIDENCE = "evidence"  # how an ``agrees`` reason starts: the question's own retrieval did not back the entry


class _Flight:
    def __init__(self, registry: dict, key: tuple):
        self.registry, self.key, self.done = registry, key, threading.Event()

    def land(self) -> None:
        with _FLIGHTS_LOCK:
            self.registry.pop(self.key, None)
        self.done.set()


@dataclass
class _Space:
    """The in-memory similarity index of one (KB, language): entry ids, their unit vectors and wording keys."""

    ids: list[int]
    matrix: object  # numpy float32 (n, dims)
    wording: dict[str, list[int]] = field(default_factory=dict)


# The default English threshold per named embedding model, where it differs from cache_threshold_en's. None today:
# mpnet's 0.80 was chosen on the COVID pairs alone; on policy-PDF pairs no threshold under 1.0 kept wrong hits
# within 1% even with the evidence check (eval/README.md, "evidence agreement"), so every model starts at 1.0.
EN_THRESHOLD_BY_MODEL: dict[str, float] = {}


def similarity_threshold(settings: Settings, lang: str) -> float:
    """The similarity a question in ``lang`` needs to a cached one: the setting, or when it is left at its default
    the one measured for the embedding model in use."""
    if lang == "zh":
        return settings.cache_threshold_zh
    if "cache_threshold_en" not in settings.model_fields_set:
        return EN_THRESHOLD_BY_MODEL.get((settings.embedding_model or "").lower(), settings.cache_threshold_en)
    return settings.cache_threshold_en


class SemanticCache:
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
        """(model name, Embeddings) of a language's similarity layer; one model for both languages today."""
        return "default", self.embeddings

    def threshold(self, lang: str) -> float:
        return similarity_threshold(self.settings, lang)

    # --- lookup ----------------------------------------------------------------------------------------------
    def lookup(
        self,
        index: KnowledgeBase,
        question: str,
        lang: str,
        *,
        wait: bool = True,
        agrees: Callable[[list[str], list[float] | None], str | None] | None = None,
    ) -> Lookup:
        """The cached answer to ``question`` in ``index``'s KB, or a miss; on a miss of a question someone else
        is answering right now, wait for them (single flight) and look again.

        ``agrees(cited_chunk_ids, query_vector)``: None when the question's own retrieval backs a paraphrase
        candidate that cites those chunks, else why not. Without it only exact repeats are served."""
        if not self.settings.cache_enabled:
            return Lookup()
        kb = index.name
        if is_personal(question):
            self._count(kb, personal=1)
            return Lookup()
        started = time.perf_counter()
        found = self._find(index, question, lang, agrees=agrees)
        if found.answer is None and wait:
            # Per process, not per instance: two Assistants over one data dir share the flight.
            flight_key = (str(self.path), kb, lang, normalize_question(question))
            with _FLIGHTS_LOCK:
                flight = _FLIGHTS.get(flight_key)
                if flight is None:
                    found._flight = _FLIGHTS[flight_key] = _Flight(_FLIGHTS, flight_key)
            if flight is not None:
                flight.done.wait(self.settings.llm_timeout_s + 30)
            if flight is not None or found._flight is not None:  # the answer may have landed meanwhile
                leader = found._flight
                found = self._find(index, question, lang, vector=found.query_vector, agrees=agrees)
                found._flight = leader
                if found.answer is not None:
                    found.release()
        disagreed = sum(reason.startswith(EVIDENCE) for _, reason in found.rejected)  # counted once per lookup
        self._count(kb, lookups=1, near_misses=len(found.rejected) - disagreed, disagreed=disagreed)
        if found.answer is not None:
            self._record_hit(kb, found, (time.perf_counter() - started) * 1000)
        return found

    def _find(self, index: KnowledgeBase, question: str, lang: str, vector=None, agrees=None) -> Lookup:
        import numpy as np

        kb = index.name
        self._sweep_if_changed(index)
        key = normalize_question(question)
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM cache_entries WHERE kb=? AND language=? AND key=?", (kb, lang, key)
            ).fetchone()
        if row is not None and self._fresh(row, index):
            cached = Answer.model_validate_json(row["answer"])
            return Lookup(self._serve(cached), "exact", True, entry_id=row["id"], full_ms=row["full_ms"])
        model, embedder = self.embedder(lang)
        space = self._space(kb, lang, model)
        out = Lookup(cacheable=True)
        reworded = space.wording.get(wording_key(question), [])
        if reworded and self._serve_first(index, question, reworded, out, "wording", agrees):
            return out
        # A miss from here on needs the question's vector anyway (to store the answer; retrieval reuses it), so
        # it is computed once, here.
        if vector is None:
            vector = embedder.embed_query(question)
        if model == "default":
            out.query_vector = vector  # retrieval embeds with the same model: reuse it
        threshold = self.threshold(lang)
        if not space.ids or threshold >= 1.0:  # nothing to compare with, or no embedding layer for this language
            return out
        sims = space.matrix @ np.asarray(vector, dtype=np.float32)
        best = np.argsort(-sims)[:CANDIDATES]
        ids = [space.ids[i] for i in best if sims[i] >= threshold]
        self._serve_first(index, question, ids, out, "semantic", agrees)
        return out

    def _serve_first(
        self, index: KnowledgeBase, question: str, ids: list[int], out: Lookup, kind: str, agrees=None
    ) -> bool:
        """Serve the first candidate entry that passes the near-miss guard, is fresh and that the question's own
        retrieval agrees with; record the rejected."""
        if not ids or agrees is None:  # a paraphrase is served only on the evidence of its own retrieval
            return False
        with self._lock:
            rows = {
                r["id"]: r
                for r in self._db.execute(
                    f"SELECT * FROM cache_entries WHERE id IN ({','.join('?' * len(ids))})", ids
                ).fetchall()
            }
        for entry_id in ids:
            row = rows.get(entry_id)
            if row is None or any(q == row["question"] for q, _ in out.rejected):
                continue
            cached = Answer.model_validate_json(row["answer"])
            reason = near_miss_reason(  # a swapped word the cached answer itself says may pass
                question, row["question"], index.stats.idf, answer=cached.text, glossary=index.glossary
            )
            if reason is not None:
                out.rejected.append((row["question"], reason))
                continue
            if not self._fresh(row, index):
                continue
            disagreement = agrees(json.loads(row["chunk_ids"]), out.query_vector)
            if disagreement is not None:
                out.rejected.append((row["question"], disagreement))
                continue
            out.answer, out.kind, out.entry_id, out.full_ms = self._serve(cached), kind, row["id"], row["full_ms"]
            return True
        return False

    def _serve(self, cached: Answer) -> Answer:
        return cached.model_copy(update={"id": uuid4().hex, "cached": True, "ticket_id": None, "session_id": None})

    def _record_hit(self, kb: str, found: Lookup, elapsed_ms: float) -> None:
        answer, entry_id = found.answer, found.entry_id
        saved = max(0.0, float(found.full_ms) - elapsed_ms)
        with self._tx():
            self._db.execute(
                "UPDATE cache_entries SET hits=hits+1, last_hit_at=?, saved_ms=saved_ms+? WHERE id=?",
                (time.time(), saved, entry_id),
            )
            self._db.execute("INSERT OR REPLACE INTO cache_served VALUES (?, ?)", (answer.id, entry_id))
            self._bump(kb, {f"{found.kind}_hits": 1, "saved_ms": saved})

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
        if vector is None or model != "default":
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

    # --- eviction --------------------------------------------------------------------------------------------
    def evict(self, answer_id: str) -> bool:
        """A 👎 on an answer: drop the entry it was stored as or served from, and never re-store that answer."""
        with self._lock:
            row = None
            served = self._db.execute("SELECT entry_id FROM cache_served WHERE answer_id=?", (answer_id,)).fetchone()
            if served:
                row = self._db.execute("SELECT * FROM cache_entries WHERE id=?", (served["entry_id"],)).fetchone()
            if row is None:
                row = self._db.execute(
                    "SELECT * FROM cache_entries WHERE json_extract(answer, '$.id')=?", (answer_id,)
                ).fetchone()
            if row is None:
                return False
            self._db.execute(
                "INSERT OR IGNORE INTO cache_refused VALUES (?, ?, ?, ?)",
                (row["kb"], row["language"], row["key"], row["chunk_ids"]),
            )
        self._delete([row["id"]], row["kb"], "evicted_feedback")
        return True

    def entries(self, kb: str | None = None, *, limit: int = 100) -> list[CacheEntry]:
        """The entries (of one KB), the most recently used first, with the answers served from each."""
        where, args = ("WHERE kb=?", (kb,)) if kb else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM cache_entries {where} ORDER BY last_hit_at DESC, id DESC LIMIT ?", (*args, limit)
            ).fetchall()
            served: dict[int, list[str]] = {}
            for r in self._db.execute("SELECT answer_id, entry_id FROM cache_served ORDER BY rowid DESC"):
                served.setdefault(r["entry_id"], []).append(r["answer_id"])
        out = []
        for r in rows:
            answer = Answer.model_validate_json(r["answer"])
            sources = [c.source + (f" › {c.section}" if c.section else "") for c in answer.citations]
            out.append(
                CacheEntry(
                    id=r["id"],
                    kb=r["kb"],
                    language=r["language"],
                    question=r["question"],
                    answer=answer.text,
                    origin=r["origin"],
                    hits=r["hits"],
                    sources=list(dict.fromkeys(sources)),
                    answer_id=answer.id,
                    served=served.get(r["id"], []),
                    created_at=r["created_at"],
                    last_hit_at=r["last_hit_at"],
                )  # fmt: skip
            )
        return out

    def drop(self, entry_id: int) -> bool:
        """Delete one entry (an admin found it wrong); a later answer to its question may be stored again."""
        with self._lock:
            row = self._db.execute("SELECT kb FROM cache_entries WHERE id=?", (entry_id,)).fetchone()
        if row is None:
            return False
        self._delete([entry_id], row["kb"], "dropped")
        return True

    def clear(self, kb: str | None = None) -> int:
        """Delete every entry (of one KB); counters restart. Returns the number of entries removed."""
        where, args = ("WHERE kb=?", (kb,)) if kb else ("", ())
        with self._tx():
            n = self._db.execute(f"DELETE FROM cache_entries {where}", args).rowcount
            self._db.execute("DELETE FROM cache_served WHERE entry_id NOT IN (SELECT id FROM cache_entries)")
            self._db.execute(f"DELETE FROM cache_counters {where}", args)
            self._db.execute(f"DELETE FROM cache_refused {where}", args)
            self._spaces = {k: v for k, v in self._spaces.items() if kb and k[0] != kb}
        return n

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

    # --- stats -----------------------------------------------------------------------------------------------
    def stats(self, kb: str | None = None) -> CacheStats:
        where, args = ("WHERE kb=?", (kb,)) if kb else ("", ())
        with self._lock:
            (entries,) = self._db.execute(f"SELECT COUNT(*) FROM cache_entries {where}", args).fetchone()
            counts = dict(
                self._db.execute(f"SELECT name, SUM(value) FROM cache_counters {where} GROUP BY name", args).fetchall()
            )
        c = {name: counts.get(name, 0) or 0 for name in COUNTERS}
        hits = int(c["exact_hits"] + c["wording_hits"] + c["semantic_hits"])
        return CacheStats(
            kb=kb, entries=entries, lookups=int(c["lookups"]), hits=hits, exact_hits=int(c["exact_hits"]),
            wording_hits=int(c["wording_hits"]), semantic_hits=int(c["semantic_hits"]),
            hit_rate=round(hits / c["lookups"], 4) if c["lookups"] else 0.0,
            near_misses_rejected=int(c["near_misses"]), evidence_disagreed=int(c["disagreed"]),
            personal_skipped=int(c["personal"]),
            invalidations=int(c["invalidations"]), expired=int(c["expired"]), evicted_lru=int(c["evicted_lru"]),
            evicted_feedback=int(c["evicted_feedback"]), time_saved_s=round(c["saved_ms"] / 1000, 3),
        )  # fmt: skip

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
