"""Keyword search over a published KB version: the ``KeywordSearch`` interface, and BM25 (bm25s) behind it.

A backend builds its index into the version folder from the chunks' tokens (``build``), and answers
``search(query, k, filters)`` with (chunk id, raw score) best first. What the KB's words are worth (IDF, document
frequency, whether it says a phrase) is ``store.stats``; which chunks are live is ``store.publication``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from kb_assistant.glossary import Glossary
from kb_assistant.language import query_terms, tokenize
from kb_assistant.schema import Chunk

# Low k1: a passage that says a thing once, plainly, should not lose to one that repeats the words around it.
BM25_K1, BM25_B = 0.3, 0.75
EXPANSION_WEIGHT = 0.15  # a glossary synonym's share in keyword search when the KB knows the question's own term


def keyword_tokens(chunk: Chunk) -> list[str]:
    """What the keyword index holds for a chunk: its search text's tokens (a FAQ's question counts twice)."""
    tokens = tokenize(chunk.search_text())
    if chunk.kind == "faq":
        tokens = tokenize(chunk.question) + tokens
    return tokens


class KeywordSearch(Protocol):
    def search(self, query: str, k: int, filters: dict | None = None) -> list[tuple[str, float]]:
        """(chunk id, raw score) best first, at most ``k``; empty when nothing in the KB matches. (A principal's
        view of the KB, ``store.visibility``, searches only the chunks it may see.)"""
        ...


class BM25Search:
    """BM25 over jieba/word tokens, with the glossary's other wordings of the question's concepts."""

    def __init__(self, folder: Path, ids: list[str], glossary: Glossary | None = None):
        self.folder = folder
        self.ids = ids  # the index's rows, in order (the publication's live ids)
        self.glossary = glossary if glossary is not None else Glossary([])
        self._bm25 = None
        self._loaded = False

    @staticmethod
    def build(folder: Path, ids: list[str], tokens: dict[str, list[str]]) -> None:
        """Write the index of ``tokens`` (chunk id → tokens) into ``folder``, one row per id of ``ids``, in order."""
        import bm25s

        if ids:
            bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B)
            bm25.index([tokens[i] or ["\u2205"] for i in ids], show_progress=False)
            bm25.save(str(folder / "bm25"))

    @property
    def bm25(self):
        """The bm25s model (None for an empty KB): ``store.stats`` reads its sparse matrix."""
        if not self._loaded:
            import bm25s

            self._bm25 = bm25s.BM25.load(str(self.folder / "bm25")) if self.ids else None
            self._loaded = True
        return self._bm25

    def search(
        self, query: str, k: int, filters: dict | None = None, *, visible=None, known=None, idf_scale=None
    ) -> list[tuple[str, float]]:
        """``visible``: a boolean mask over the rows (``ids``): only those are ranked, so the top ``k`` are k
        visible chunks. ``known(token)``: how many of them hold a token (a word only hidden chunks hold counts as
        unknown, for the question's own words and the glossary's choice between them and their expansions).
        ``idf_scale(token)``: what a token's score is multiplied by (its IDF over the visible chunks over its IDF
        over all: bm25s bakes the IDF of the whole index into each score)."""
        if filters:
            raise NotImplementedError("BM25Search takes no metadata filters (visibility is the mask ``visible``)")
        bm25 = self.bm25
        if bm25 is None:
            return []
        vocab = bm25.vocab_dict if known is None else _Known(bm25.vocab_dict, known)
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
        scores = self._scores(own, idf_scale) if own else 0.0
        for extra, weight in ((strong, 1.0), (weak, EXPANSION_WEIGHT)):
            if extra:
                scores = scores + weight * self._scores(extra, idf_scale)
        if visible is not None:
            import numpy as np

            scores = np.where(visible, scores, 0.0)
        top = scores.argsort()[::-1][: min(k, len(self.ids))]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def _scores(self, tokens: list[str], idf_scale=None):
        if idf_scale is None:
            return self.bm25.get_scores(tokens)
        total = 0.0
        for token in tokens:
            factor = idf_scale(token)
            if factor:
                total = total + factor * self.bm25.get_scores([token])
        return total


class _Known:
    """A vocabulary limited to the tokens ``count`` says some visible chunk holds."""

    def __init__(self, vocab: dict, count):
        self.vocab, self.count = vocab, count

    def __contains__(self, token: object) -> bool:
        return token in self.vocab and self.count(token) > 0

    def __getitem__(self, token: str) -> int:
        if token not in self:
            raise KeyError(token)
        return self.vocab[token]
