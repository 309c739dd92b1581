"""Rerank fused candidates. ``Reranker`` is the interface; three implementations.

- ``EvidenceReranker`` (default, offline, a few ms): re-scores the shortlist with evidence retrieval does not
  compute. An FAQ entry is scored on a blend of the question's similarity to the FAQ question and to question +
  answer, never below the latter: a paraphrase is matched best by the first, a question worded like the answer by
  the second. It also measures how much of the question's IDF-weighted vocabulary each passage covers, which the
  confidence uses, and which picks the passage that answers *this* question among passages of the same document
  in Chinese (e.g. standard hours vs flexible hours: for a Chinese question coverage reorders passages within a
  document, never documents); in English, where paraphrases share few words with the FAQ,
  it does not move the order (it cost COVID paraphrases MRR: eval/README.md, "What the measurements decided"),
  except that a passage holding (nearly) every content word of the question gets a bonus: the embedding alone ranks a
  look-alike ("the charity run in Madrid") above the passage that names the right place. For an FAQ entry the
  bonus looks at its question only: a long answer holds a short question's few words by chance. Repeats (one FAQ
  question from two sources, one text in two files) go after the distinct passages.
- ``CrossEncoderReranker``: any sentence-transformers CrossEncoder from a local path (KB_RERANKER_MODEL).
- ``NoReranker``: keeps the fused order (rerank switched off).
"""

from __future__ import annotations

import math
from typing import Protocol

from kb_assistant.glossary import word_sequence
from kb_assistant.language import detect_language, normalise, query_terms, tokenize
from kb_assistant.retrieval import fusion_weights
from kb_assistant.schema import Candidate, Query
from kb_assistant.store import QUESTION_SUFFIX, CorpusStats, KnowledgeBase


class Reranker(Protocol):
    def rerank(self, query: Query, candidates: list[Candidate]) -> list[Candidate]: ...


def weighted_coverage(query: str, text: str, stats: CorpusStats) -> float:
    """IDF-weighted share of the question's content tokens found in ``text`` (0..1).

    Tokens unknown to the KB get a high weight: a question about something the KB never mentions should not be
    covered by any passage. A word is also covered when the passage says its glossary concept another way
    (老婆 by 配偶, "office hours" by 上班时间).
    """
    q_tokens = set(query_terms(query))
    if not q_tokens:
        return 0.0
    t_tokens = set(tokenize(text))
    covered = q_tokens & t_tokens
    matches = stats.glossary.matches(query)  # remembered per question: cheap for every candidate and sentence
    if matches:
        lower, words = text.lower(), word_sequence(text)
        for m in matches:
            if m.covered_by(lower, words):
                covered |= m.question_tokens(q_tokens)
    weights = {t: stats.idf(t) or 4.0 for t in q_tokens}
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in covered) / total if total else 0.0


FAQ_QUESTION_WEIGHT = 0.7  # share of an FAQ's question vector in its dense score (the rest: question + answer)
COVERAGE_WEIGHT = {"zh": 0.5, "en": 0.0}  # share of question coverage in the reranked score, per language
# English: a passage holding (nearly) every content word of the question gets up to this much on top of its fused
# score (coverage ** 16: 0.3 at full coverage, 0.13 at 0.95, 0.06 at 0.9). MiniLM rates "Who organises the
# charity run in Madrid?" almost as close to "... in Lisbon?" as the passage that answers it; a small flat
# coverage weight cost COVID paraphrases more than it gave (eval/README.md).
FULL_COVERAGE_BONUS = {"zh": 0.0, "en": 0.3}


class EvidenceReranker:
    def __init__(self, index: KnowledgeBase, *, dense: bool = True, keyword: bool = True):
        self.index = index
        self.dense, self.keyword = dense, keyword

    def rerank(self, query: Query, candidates: list[Candidate]) -> list[Candidate]:
        if self.dense:
            self._blend_faq_views(query, candidates)
        stats, text = self.index.stats, query.standalone
        asked_in = detect_language(text)
        across: dict[str, float] = {}
        for c in candidates:
            lang = c.lang or "en"
            c.coverage = coverage = weighted_coverage(text, c.chunk.search_text(), stats)
            w_dense, w_kw = fusion_weights(lang, dense=self.dense, keyword=self.keyword)
            c.fused = w_dense * c.dense + w_kw * c.keyword
            bonus = 0.0
            if self.keyword and FULL_COVERAGE_BONUS[lang]:
                bonus = FULL_COVERAGE_BONUS[lang] * _bonus_coverage(text, c, stats) ** 16
            c.score = (1 - COVERAGE_WEIGHT[lang]) * c.fused + COVERAGE_WEIGHT[lang] * coverage + bonus
            # Which document comes first: for a Chinese question fusion decides (coverage only orders passages
            # within a document); for an English one the score, whose coverage is the glossary's bridge to a
            # Chinese-only section ("office hours" -> 上班时间) that MiniLM and BM25 cannot match.
            across[c.chunk.id] = c.fused + bonus if asked_in == "zh" else c.score
        return distinct_first(within_documents(candidates, across))

    def _blend_faq_views(self, query: Query, candidates: list[Candidate]) -> None:
        faq = [c for c in candidates if c.chunk.kind == "faq" and c.chunk.question]
        if not faq:
            return
        if query.vector is None:  # retrieval sets it; a reranker called on its own computes it
            query.vector = self.index.embeddings.embed_query(query.standalone)
        vector = query.vector
        ids = [c.chunk.id for c in faq]
        sims = self.index.similarities(vector, ids + [i + QUESTION_SUFFIX for i in ids])
        for c in faq:
            q, qa = sims.get(c.chunk.id + QUESTION_SUFFIX), sims.get(c.chunk.id)
            if q is not None and qa is not None:
                # The question view counts most, but an entry whose question + answer matches better than that
                # blend (a question worded like the answer) is not held back by its question.
                c.dense = max(FAQ_QUESTION_WEIGHT * q + (1 - FAQ_QUESTION_WEIGHT) * qa, qa)


def within_documents(candidates: list[Candidate], across: dict[str, float]) -> list[Candidate]:
    """Documents keep the places ``across`` gives their passages; within one document, its passages take those
    places in the order of their score (which adds question coverage).

    For a Chinese question ``across`` is the fused score (+ full-coverage bonus): coverage is a cruder relevance
    signal than BM25 (no term saturation, no length norm), and letting it move documents cost CMRC2018 MRR (below
    BM25 alone; every paragraph is its own document there), while within one document it picks the section that
    answers this question (standard vs flexible hours). The figures: eval/README.md, "What the measurements decided".
    """
    order = sorted(candidates, key=lambda c: across[c.chunk.id], reverse=True)
    by_source: dict[str, list[Candidate]] = {}
    for c in order:
        by_source.setdefault(c.chunk.source, []).append(c)
    queues = {src: sorted(cs, key=lambda c: c.score, reverse=True) for src, cs in by_source.items()}
    return [queues[c.chunk.source].pop(0) for c in order]


def _bonus_coverage(query: str, c: Candidate, stats: CorpusStats) -> float:
    """What the full-coverage bonus looks at: an FAQ entry's question, any other passage's text.

    An FAQ answer runs to paragraphs and holds most short questions' few content words by chance ("How does X
    present?" is not about the entry whose answer says "present in faeces"); a question that names every word
    of the asker's is evidence.
    """
    if c.chunk.kind == "faq" and c.chunk.question:
        return weighted_coverage(query, c.chunk.question, stats)
    return c.coverage


def distinct_first(ranked: list[Candidate]) -> list[Candidate]:
    """The ranking with repeats moved after the distinct passages: the same FAQ question from a second source, or
    the same text in a second file, would take one of the few passages shown from a different answer."""
    seen: set[str] = set()
    first, repeats = [], []
    for c in ranked:
        faq = c.chunk.kind == "faq" and c.chunk.question
        key = "q:" + normalise(c.chunk.question) if faq else "t:" + (c.chunk.text or c.chunk.id)
        (repeats if key in seen else first).append(c)
        seen.add(key)
    return first + repeats


class CrossEncoderReranker:
    _models: dict[str, object] = {}

    def __init__(self, model_path: str, stats: CorpusStats):
        from sentence_transformers import CrossEncoder

        if model_path not in self._models:
            self._models[model_path] = CrossEncoder(model_path, device="cpu")
        self.model = self._models[model_path]
        self.stats = stats

    def rerank(self, query: Query, candidates: list[Candidate]) -> list[Candidate]:
        if not candidates:
            return candidates
        text = query.standalone
        logits = self.model.predict([(text, c.chunk.search_text()) for c in candidates])
        for c, logit in zip(candidates, logits, strict=True):
            c.coverage = weighted_coverage(text, c.chunk.search_text(), self.stats)
            c.cross_encoder = float(logit)
            c.score = 1 / (1 + math.exp(-float(logit)))
        return sorted(candidates, key=lambda c: c.score, reverse=True)


class NoReranker:
    def rerank(self, query: Query, candidates: list[Candidate]) -> list[Candidate]:
        return candidates
