"""``SemanticCache``: looking a question up — the exact key, the wording key, similarity, the guard, the evidence.

Lookup has three layers, keyed per KB and language: the normalised question (NFKC, case, punctuation, width); the
wording key (the same content words in other function words: "do I get" / "can I get", 怎么/如何, 吗/呢), which needs no
model; then embedding similarity (0..1) above a per-language threshold. The last two serve a paraphrase only if it
also passes the near-miss guard of ``cache.guard`` (no difference in negation, numbers, dates, names or key content
words; a swapped word the cached answer says, or a glossary synonym, is no difference) and the new question's own
retrieval agrees with the cached answer (``agrees``: its top passage after rerank is one the answer cited, and its
confidence clears the answer threshold). Retrieval costs tens of milliseconds, the LLM call a hit saves seconds, and
the caller keeps that retrieval for the full answer when the check fails. Exact repeats skip the check.
An English answer drawn from one FAQ entry is also served to a question only ``cache_threshold_faq_en`` (0.65)
similar, when that question's own top passage is the same entry and its answer types, numbers and negation agree:
an FAQ entry answers one question, while a document passage answers many (a policy section holds the full-time and
the part-time leave), so passage answers keep ``cache_threshold_en`` and the word-by-word check. MiniLM
cannot tell Chinese questions apart, so Chinese stops at the wording key by default (``cache_threshold_zh`` = 1.0).

Concurrent identical questions are single-flight: the first asker answers, the others wait for its entry.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from kb_assistant.cache.admin import CacheAdmin
from kb_assistant.cache.guard import near_miss_reason
from kb_assistant.cache.intent import WordVectors, intent_reason
from kb_assistant.cache.keys import is_personal, normalize_question, wording_key
from kb_assistant.schema import Answer

if TYPE_CHECKING:
    from collections.abc import Callable

    from kb_assistant.settings import Settings
    from kb_assistant.store import KnowledgeBase

_FLIGHTS: dict[tuple, _Flight] = {}  # questions being answered right now, by (cache file, kb, language, key)
_FLIGHTS_LOCK = threading.Lock()
CANDIDATES = 5  # most similar entries put through the guard per lookup


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


# The default English threshold per named embedding model, where it differs from cache_threshold_en's. None today:
# mpnet's 0.80 was chosen on the COVID pairs alone; on policy-PDF pairs no threshold under 1.0 kept wrong hits
# within 1% even with the evidence check (eval/README.md, "evidence agreement"), so every model starts at 1.0.
EN_THRESHOLD_BY_MODEL: dict[str, float] = {}


def faq_threshold(settings: Settings, lang: str) -> float:
    """The similarity a question in ``lang`` needs to a cached one answered by one FAQ entry (English only)."""
    return 1.0 if lang == "zh" else settings.cache_threshold_faq_en


def similarity_threshold(settings: Settings, lang: str) -> float:
    """The similarity a question in ``lang`` needs to a cached one: the setting, or when it is left at its default
    the one measured for the embedding model in use."""
    if lang == "zh":
        return settings.cache_threshold_zh
    if "cache_threshold_en" not in settings.model_fields_set:
        return EN_THRESHOLD_BY_MODEL.get((settings.embedding_model or "").lower(), settings.cache_threshold_en)
    return settings.cache_threshold_en


class SemanticCache(CacheAdmin):
    """The semantic cache of one data dir: ``lookup`` before answering, ``store`` after (see the package's doc)."""

    def threshold(self, lang: str) -> float:
        return similarity_threshold(self.settings, lang)

    @property
    def words(self) -> WordVectors:
        """Single-word vectors of the cache's model, for ``intent_reason``'s counterparts (memoised)."""
        if getattr(self, "_words", None) is None:
            self._words = WordVectors(self.embeddings)
        return self._words

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
            flight_key = (self.db.url, kb, lang, normalize_question(question))
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
        counts = {"lookups": 1, "near_misses": len(found.rejected) - disagreed, "disagreed": disagreed}
        if found.answer is not None:
            self._record_hit(kb, found, (time.perf_counter() - started) * 1000, counts)
        else:
            self._count(kb, **counts)
        return found

    def _find(self, index: KnowledgeBase, question: str, lang: str, vector=None, agrees=None) -> Lookup:
        import numpy as np

        kb = index.name
        self._sweep_if_changed(index)
        key = normalize_question(question)
        row = self.db.by_key(kb, lang, key)
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
        if embedder is self.embeddings:
            out.query_vector = vector  # retrieval embeds with the same model: reuse it
        threshold, faq = self.threshold(lang), faq_threshold(self.settings, lang)
        if not space.ids or min(threshold, faq) >= 1.0:  # nothing to compare with, or no embedding layer
            return out
        sims = space.matrix @ np.asarray(vector, dtype=np.float32)
        best = [i for i in np.argsort(-sims)[:CANDIDATES] if sims[i] >= min(threshold, faq)]
        faq_only = {space.ids[i] for i in best if sims[i] < threshold}  # served only as one FAQ entry's answer
        self._serve_first(index, question, [space.ids[i] for i in best], out, "semantic", agrees, faq_only)
        return out

    def _serve_first(
        self,
        index: KnowledgeBase,
        question: str,
        ids: list[int],
        out: Lookup,
        kind: str,
        agrees=None,
        faq_only: set[int] | frozenset[int] = frozenset(),
    ) -> bool:
        """Serve the first candidate entry that passes the near-miss guard, is fresh and that the question's own
        retrieval agrees with; record the rejected. An entry of ``faq_only`` (similar enough only by
        ``cache_threshold_faq_en``) must be one FAQ entry's answer, and the question's top passage that entry."""
        if not ids:
            return False
        rows, key = self.db.by_ids(ids), normalize_question(question)
        for entry_id in ids:
            row = rows.get(entry_id)
            if row is None or any(q == row["question"] for q, _ in out.rejected):
                continue
            cached = Answer.model_validate_json(row["answer"])
            if row["key"] == key:  # another asker of this very question stored it meanwhile: an exact repeat
                if self._fresh(row, index):
                    out.answer, out.kind, out.entry_id, out.full_ms = (
                        self._serve(cached),
                        "exact",
                        row["id"],
                        row["full_ms"],
                    )
                    return True
                continue
            if agrees is None:  # a paraphrase is served only on the evidence of its own retrieval
                continue
            cited, max_unmatched = json.loads(row["chunk_ids"]), self.settings.cache_max_unmatched_en
            if entry_id in faq_only:
                entry = faq_entry(index, cached)
                if entry is None:
                    continue  # a document passage answers many questions: the general threshold applies
                cited, max_unmatched = [entry], 1.0  # the question's top passage must be that very entry
            reason = near_miss_reason(  # a swapped word the cached answer itself says may pass
                question, row["question"], index.stats.idf, answer=cached.text, glossary=index.glossary
            )
            if reason is None:  # and it must ask what the cached question asked
                reason = intent_reason(question, row["question"], index.stats.idf, words=self.words,
                                       glossary=index.glossary, max_unmatched=max_unmatched)  # fmt: skip
            if reason is not None:
                out.rejected.append((row["question"], reason))
                continue
            if not self._fresh(row, index):
                continue
            disagreement = agrees(cited, out.query_vector)
            if disagreement is not None:
                out.rejected.append((row["question"], disagreement))
                continue
            out.answer, out.kind, out.entry_id, out.full_ms = self._serve(cached), kind, row["id"], row["full_ms"]
            return True
        return False

    def _serve(self, cached: Answer) -> Answer:
        return cached.model_copy(update={"id": uuid4().hex, "cached": True, "ticket_id": None, "session_id": None})

    def _record_hit(self, kb: str, found: Lookup, elapsed_ms: float, counts: dict[str, float]) -> None:
        answer, entry_id = found.answer, found.entry_id
        saved = max(0.0, float(found.full_ms) - elapsed_ms)
        self.db.record_hit(kb, entry_id, answer.id, saved, found.kind, counts)


def faq_entry(index: KnowledgeBase, answer: Answer) -> str | None:
    """The chunk id of the FAQ entry ``answer`` was drawn from — its first citation, when that is an FAQ entry —
    or None (a document passage, or no citation)."""
    if not answer.citations:
        return None
    first = min(answer.citations, key=lambda c: c.n).chunk_id
    chunk = index.get([first]).get(first)
    return first if chunk is not None and chunk.kind == "faq" else None
