"""What is done to the semantic cache's entries besides lookup and store: the 👎 eviction, listing, dropping and
clearing them (``kb cache``, the admin view), and the stats with their counters.
"""

from __future__ import annotations

from pydantic import BaseModel

from kb_assistant.cache.storage import CacheStorage
from kb_assistant.schema import Answer

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


class CacheAdmin(CacheStorage):
    """The cache as feedback and its admins see it: entries evicted, listed, dropped, cleared, counted."""

    # --- eviction --------------------------------------------------------------------------------------------
    def evict(self, answer_id: str) -> bool:
        """A 👎 on an answer: drop the entry it was stored as or served from, and never re-store that answer."""
        row = self.db.for_answer(answer_id)
        if row is None:
            return False
        self.db.refuse(row)
        self._delete([row["id"]], row["kb"], "evicted_feedback")
        return True

    def entries(self, kb: str | None = None, *, limit: int = 100) -> list[CacheEntry]:
        """The entries (of one KB), the most recently used first, with the answers served from each."""
        rows, served = self.db.listing(kb, limit)
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
        row = self.db.by_ids([entry_id]).get(entry_id)
        if row is None:
            return False
        self._delete([entry_id], row["kb"], "dropped")
        return True

    def clear(self, kb: str | None = None) -> int:
        """Delete every entry (of one KB); counters restart. Returns the number of entries removed."""
        n, generation = self.db.clear(kb)
        with self._lock:
            self._spaces = {k: v for k, v in self._spaces.items() if kb and k[0] != kb}
            self._wrote(generation)
        return n

    # --- stats -----------------------------------------------------------------------------------------------
    def stats(self, kb: str | None = None) -> CacheStats:
        entries, counts = self.db.totals(kb)
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
