"""Evidence: one question's retrieval (dense + keyword, fused, reranked) and its confidence, run at most once.

The semantic cache asks it whether a paraphrase hit is backed by the question's own passages; a miss answers from
the same passages, so a question is retrieved once whichever way it goes. ``timed`` is how every stage of
``Assistant.stream`` records its milliseconds.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kb_assistant.answer.confidence import assess, features_of
from kb_assistant.retrieval import hybrid_search
from kb_assistant.schema import Candidate, Query

if TYPE_CHECKING:
    from kb_assistant.rerank import Reranker
    from kb_assistant.settings import Settings
    from kb_assistant.store import KnowledgeBase


class Evidence:
    """One question's retrieval (retrieve, rerank), run at most once: the cache asks it whether a paraphrase hit
    is backed by the question's own passages, and a miss answers from the same passages."""

    def __init__(self, settings: Settings, reranker: Reranker, index: KnowledgeBase, query: Query, timings: dict):
        self.settings, self.reranker, self.index, self.query = settings, reranker, index, query
        self.timings = timings
        self._candidates: list[Candidate] | None = None
        self._confidence: tuple[float, dict[str, float] | None] | None = None
        self.spent_ms = 0.0

    def candidates(self, query_vector: list[float] | None = None) -> list[Candidate]:
        """``query_vector``: the question's embedding when the caller (the cache check) already computed it."""
        if self.query.vector is None and query_vector is not None:
            self.query.vector = query_vector
        if self._candidates is None:
            s, started = self.settings, time.perf_counter()
            with timed(self.timings, "retrieve"):
                found = hybrid_search(
                    self.index, self.query, k=s.candidate_k, dense=s.dense_search, keyword=s.keyword_search
                )
            with timed(self.timings, "rerank"):
                self._candidates = self.reranker.rerank(self.query, found)
            self.spent_ms = round((time.perf_counter() - started) * 1000, 2)
        return self._candidates

    def confidence(self) -> float:
        """The confidence of the top passages (``answer.confidence``; computed once)."""
        if self._confidence is None:
            args, how = self._evidence()
            self._confidence = assess(*args, **how, model=self.settings.confidence_model)
        return self._confidence[0]

    def features(self) -> dict[str, float] | None:
        """What the fitted confidence reads (``eval.calibrate`` refits on it): kept from ``confidence`` when the
        fitted model computed it, else computed here on demand, off the answer's path."""
        if self._confidence is not None and self._confidence[1] is not None:
            return self._confidence[1]
        args, how = self._evidence()
        return features_of(*args, **how)

    def _evidence(self) -> tuple[tuple, dict]:
        s, question = self.settings, self.query.standalone
        args = (self.candidates()[: s.top_k], self.query.language, self.index.missing_concepts(question))
        return args, {"question": question, "stats": self.index.stats, "kb_size": self.index.count()}

    def agrees(self, cited: list[str], query_vector: list[float] | None = None) -> str | None:
        """None when the top passage is one of ``cited`` and the confidence clears the answer threshold."""
        s = self.settings
        passages = self.candidates(query_vector)[: s.top_k]
        if not passages or passages[0].chunk.id not in set(cited):
            return "evidence: the question's top passage is not one the cached answer cited"
        confidence = self.confidence()
        if confidence < s.confidence_threshold:
            return f"evidence: confidence {confidence:.2f} < the answer threshold {s.confidence_threshold:.2f}"
        return None


@contextmanager
def timed(timings: dict[str, float], stage: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round((time.perf_counter() - start) * 1000, 2)
