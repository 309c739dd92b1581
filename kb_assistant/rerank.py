"""Rerank fused candidates. ``Reranker`` is the interface; two implementations.

- ``LexicalReranker`` (default, offline, ~1 ms): how much of the question's weighted vocabulary a passage
  covers, blended with the fused score. It rewards passages that answer *this* question over passages that are
  merely on the same topic.
- ``CrossEncoderReranker``: any sentence-transformers CrossEncoder from a local path (KB_RERANKER_MODEL).
"""

from __future__ import annotations

import math
from typing import Protocol

from kb_assistant.index import KeywordIndex
from kb_assistant.retrieval import Candidate
from kb_assistant.text import query_terms, tokenize


class Reranker(Protocol):
    def rerank(self, query: str, candidates: list[Candidate]) -> list[Candidate]: ...


def weighted_coverage(query: str, text: str, keyword: KeywordIndex) -> float:
    """IDF-weighted share of the question's content tokens found in ``text`` (0..1).

    Tokens unknown to the KB get a high weight: a question about something the KB never mentions should not be
    covered by any passage.
    """
    q_tokens = set(query_terms(query))
    if not q_tokens:
        return 0.0
    t_tokens = set(tokenize(text))
    weights = {t: keyword.idf(t) or 4.0 for t in q_tokens}
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in t_tokens) / total if total else 0.0


class LexicalReranker:
    def __init__(self, keyword: KeywordIndex, blend: float = 0.5):
        self.keyword = keyword
        self.blend = blend

    def rerank(self, query: str, candidates: list[Candidate]) -> list[Candidate]:
        for c in candidates:
            cov = weighted_coverage(query, c.chunk.search_text(), self.keyword)
            c.extra["coverage"] = cov
            c.score = self.blend * c.fused + (1 - self.blend) * cov
        return sorted(candidates, key=lambda c: c.score, reverse=True)


class CrossEncoderReranker:
    _models: dict[str, object] = {}

    def __init__(self, model_path: str, keyword: KeywordIndex):
        from sentence_transformers import CrossEncoder

        if model_path not in self._models:
            self._models[model_path] = CrossEncoder(model_path, device="cpu")
        self.model = self._models[model_path]
        self.keyword = keyword

    def rerank(self, query: str, candidates: list[Candidate]) -> list[Candidate]:
        if not candidates:
            return candidates
        logits = self.model.predict([(query, c.chunk.search_text()) for c in candidates])
        for c, logit in zip(candidates, logits, strict=True):
            c.extra["coverage"] = weighted_coverage(query, c.chunk.search_text(), self.keyword)
            c.extra["cross_encoder"] = float(logit)
            c.score = 1 / (1 + math.exp(-float(logit)))
        return sorted(candidates, key=lambda c: c.score, reverse=True)


class NoReranker:
    def rerank(self, query: str, candidates: list[Candidate]) -> list[Candidate]:
        return candidates
