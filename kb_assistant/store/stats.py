"""What a KB's words are worth: the ``CorpusStats`` interface (IDF, document frequency, "does the KB say this
concept"), read by rerank, the extractive answerer, the cache guard and the confidence — and its implementation
over the BM25 index's sparse matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

from kb_assistant.glossary import Glossary, Term
from kb_assistant.store.keyword import BM25Search

CHANCE_MEETING = 0.05  # a wording's words met in a chunk count as saying it when chance would do that < 5%
PHRASE_CHECK_LIMIT = 500  # chunks looked at for a wording's phrase (of those holding all its words)


class CorpusStats(Protocol):
    glossary: Glossary  # the concepts and their wordings the statistics count a word under

    def idf(self, token: str) -> float:
        """Inverse document frequency of a token in this KB (0 when the KB never uses it)."""
        ...

    def df(self, token: str) -> int:
        """How many live chunks hold the token."""
        ...

    def missing_concepts(self, query: str) -> list[str]:
        """The glossary concepts the question names that the KB never says in any wording."""
        ...


class BM25Stats:
    """``CorpusStats`` of one published version, from bm25s's token-major sparse matrix. ``tokens(ids)`` gives
    chunks' keyword tokens (stopwords left out), for the in-a-row check of a many-word wording."""

    def __init__(
        self,
        search: BM25Search,
        glossary: Glossary,
        tokens: Callable[[list[str]], list[list[str]]] | None = None,
        *,
        visible=None,
    ):
        """``visible``: a boolean mask over the index's rows; then every figure counts only those chunks (a
        principal's view: ``store.visibility``)."""
        self.search = search
        self.glossary = glossary
        self.tokens = tokens
        self.visible = visible
        self._df: dict[int, int] | None = None
        self._said_memo: dict[tuple[Term, bool], bool] = {}  # fixed for this version

    def df(self, token: str) -> int:
        bm25 = self.search.bm25
        if bm25 is None or token not in bm25.vocab_dict:
            return 0
        if self._df is None:
            import numpy as np

            # bm25s keeps a token-major sparse matrix: a token's document count is the length of its row
            indptr = bm25.scores["indptr"]
            if self.visible is None:
                self._df = dict(enumerate(np.diff(indptr).tolist()))
            else:  # visible documents only: a running count of visible entries, read at the rows' bounds
                held = np.concatenate([[0], np.cumsum(self.visible[bm25.scores["indices"]], dtype=np.int64)])
                self._df = dict(enumerate((held[indptr[1:]] - held[indptr[:-1]]).tolist()))
        return self._df.get(bm25.vocab_dict[token], 0)

    @property
    def n_docs(self) -> int:
        return len(self.search.ids) if self.visible is None else int(self.visible.sum())

    def idf(self, token: str) -> float:
        if self.search.bm25 is None or token not in self.search.bm25.vocab_dict:
            return 0.0
        n_docs, df = self.n_docs, self.df(token)
        if not df:
            return 0.0
        return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))

    def missing_concepts(self, query: str, tokens: Callable[[list[str]], list[list[str]]] | None = None) -> list[str]:
        """The glossary concepts the question names that this KB never says in any wording, nor any concept they
        are a kind of (国庆节 is said by 法定节假日): a workplace topic the question is about ("公司有班车吗",
        "sabbatical leave") that no passage can answer. Words alone would not do: most words the KB does not know
        in a question are context ("my wife", "Frankfurt"), not its topic.

        A one-word wording is said where a chunk holds it. A chunk holding every word of a longer one says it when
        that is unlikely by chance (hotel / 标准: two words of a few chunks each), or when it holds them in a row
        (stopwords aside): 远程 / 工作 and work / home meet in some chunk of most handbooks, "work from home" does
        not. Without ``tokens`` (given here or to the constructor) any chunk holding every word says the wording."""
        if self.search.bm25 is None:
            return []
        tokens = tokens if tokens is not None else self.tokens
        return [
            m.term.text
            for m in self.glossary.matches(query)
            if not any(self._said(t, tokens) for t in (m.term, *m.alternatives, *m.broader))
        ]

    def _said(self, term: Term, tokens) -> bool:
        """Does some chunk say ``term``? (Remembered: the answer only changes with the version.)"""
        key = (term, tokens is not None)
        if key not in self._said_memo:
            self._said_memo[key] = self._chunk_saying(term, tokens)
        return self._said_memo[key]

    def _chunk_saying(self, term: Term, tokens) -> bool:
        import numpy as np

        bm25, ids = self.search.bm25, self.search.ids
        vocab = bm25.vocab_dict
        if not term.tokens or any(t not in vocab for t in term.tokens):
            return False
        indptr, indices = bm25.scores["indptr"], bm25.scores["indices"]
        rows = [indices[indptr[vocab[t]] : indptr[vocab[t] + 1]] for t in term.tokens]
        if self.visible is not None:
            rows = [r[self.visible[r]] for r in rows]
        rows = sorted(rows, key=len)
        if not len(rows[0]):
            return False
        common = rows[0]  # rarest first
        for row in rows[1:]:
            common = np.intersect1d(common, row)
            if not len(common):
                return False
        n = self.n_docs
        chance = n * math.prod(len(r) / n for r in rows)  # chunks expected to hold them all if words fell at random
        if len(rows) == 1 or tokens is None or 1 - math.exp(-chance) < CHANCE_MEETING:
            return True
        size = len(term.tokens)
        for start in range(0, min(len(common), PHRASE_CHECK_LIMIT), 100):
            for held in tokens([ids[i] for i in common[start : start + 100]]):  # stopwords left out
                if any(tuple(held[i : i + size]) == term.tokens for i in range(len(held) - size + 1)):
                    return True
        return False
