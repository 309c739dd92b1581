"""Who sees which chunks of a KB: the ``Scope`` of one set of access groups on one published version, and
``KBView``, the KB as one principal sees it — what every question stage is handed, so that nothing the principal
may not see is searched, ranked, counted or fetched.

The published version's ``visibility.json`` (``store.publication``) is the one answer to "may these groups see
this chunk": a chunk it does not name is visible to everyone who may use the KB, one it names only to the groups
it lists. Chroma holds the same groups in each vector's metadata (``restricted``, ``groups``) so a dense search
filters inside the ANN search (top-k are k visible passages); every dense hit is checked against the published
visibility as well, so metadata a moment behind a publish never shows a chunk. Keyword search scores only
visible rows, and the corpus statistics (IDF, document frequency, "does the KB say this phrase") count only
visible chunks: a word only restricted documents use is, for an outsider, a word the KB does not know.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from kb_assistant.schema import Chunk, Principal
from kb_assistant.store.vectors import GROUPS, RESTRICTED, Hit, chunk_of

if TYPE_CHECKING:
    import numpy as np


def chroma_where(groups: Iterable[str]) -> dict:
    """The Chroma ``where`` that keeps unrestricted vectors and those limited to one of ``groups``. (Chroma's
    ``$ne`` matches a vector without the key: chunks written before groups existed count as unrestricted.)"""
    clauses = [{RESTRICTED: {"$ne": True}}] + [{GROUPS: {"$contains": g}} for g in sorted(groups)]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def and_where(*wheres: dict | None) -> dict | None:
    given = [w for w in wheres if w]
    if not given:
        return None
    return given[0] if len(given) == 1 else {"$and": given}


class Scope:
    """What one set of groups may see of one published version: the hidden chunk ids, a mask over the keyword
    index's rows, the Chroma filter."""

    def __init__(self, sorted_ids: list[str], visibility: dict[str, frozenset[str]], groups: frozenset[str]):
        import numpy as np

        self.groups = groups
        self.hidden = frozenset(cid for cid, allowed in visibility.items() if not (allowed & groups))
        self.mask: np.ndarray = np.fromiter((cid not in self.hidden for cid in sorted_ids), bool, len(sorted_ids))
        self.where = chroma_where(groups) if self.hidden else None

    def visible(self, chunk_id: str) -> bool:
        return chunk_id not in self.hidden


class VisibleIds(Collection[str]):
    """The live ids less the hidden ones, without copying the live set."""

    def __init__(self, live: frozenset[str], hidden: frozenset[str]):
        self.live, self.hidden = live, hidden

    def __contains__(self, cid: object) -> bool:
        return cid in self.live and cid not in self.hidden

    def __iter__(self) -> Iterator[str]:
        return (cid for cid in self.live if cid not in self.hidden)

    def __len__(self) -> int:
        return len(self.live) - len(self.hidden & self.live)


class ScopedKeyword:
    """Keyword search over the visible rows only, each word weighed by its IDF over the visible chunks; the
    question's words count as known only where a visible chunk holds them (glossary expansion decides on the
    same)."""

    def __init__(self, search, mask, stats, all_stats):
        self.inner, self.mask, self.stats, self.all_stats = search, mask, stats, all_stats

    def search(self, query: str, k: int, filters: dict | None = None) -> list[tuple[str, float]]:
        return self.inner.search(query, k, filters, visible=self.mask, known=self.stats.df, idf_scale=self._idf_scale)

    def _idf_scale(self, token: str) -> float:
        """A token's weight as the visible chunks give it, over the weight the whole index gave it."""
        everyone = self.all_stats.idf(token)
        return self.stats.idf(token) / everyone if everyone else 0.0


class KBView:
    """A ``KnowledgeBase`` as one principal sees it (``KnowledgeBase.view``): the same reading interface, every
    read limited to the visible chunks of the version current at each call."""

    def __init__(self, kb: Any, principal: Principal):  # kb: the KnowledgeBase
        self.kb, self.principal = kb, principal

    def __getattr__(self, name: str):  # name, settings, glossary, embeddings, version, state, refresh, …
        return getattr(self.kb, name)

    def _version(self):
        return self.kb._current()

    def _scope(self) -> tuple[Any, Scope]:
        version = self._version()
        return version, version.scope(self.principal.groups)

    # --- what the stages read ----------------------------------------------------------------------
    def live_ids(self) -> Collection[str]:
        version, scope = self._scope()
        return VisibleIds(version.live, scope.hidden)

    def is_live(self, chunk_ids) -> bool:
        live = self.live_ids()
        return all(cid in live for cid in chunk_ids)

    def visible(self, chunk_ids: Iterable[str]) -> bool:
        """Whether the principal may see every one of ``chunk_ids`` (live or not: the cache's cited chunks)."""
        _, scope = self._scope()
        return all(scope.visible(cid) for cid in chunk_ids)

    def count(self) -> int:
        return len(self.live_ids())

    @property
    def keyword(self) -> ScopedKeyword:
        version, scope = self._scope()
        return ScopedKeyword(version.keyword, scope.mask, version.stats_for(scope), version.stats)

    @property
    def stats(self):
        version, scope = self._scope()
        return version.stats_for(scope)

    def dense_search(self, query_vector: list[float], k: int, where: dict | None = None) -> list[Hit]:
        version, scope = self._scope()
        live = VisibleIds(version.live, scope.hidden)
        return self.kb.vectors.search(query_vector, k, live, where=and_where(where, scope.where))

    def similarities(self, query_vector: list[float], ids: list[str]) -> dict[str, float]:
        _, scope = self._scope()
        return self.kb.similarities(query_vector, [i for i in ids if scope.visible(chunk_of(i))])

    def get(self, ids: list[str]) -> dict[str, Chunk]:
        _, scope = self._scope()
        return self.kb.get([i for i in ids if scope.visible(i)])

    def all_chunks(self) -> list[Chunk]:
        return list(self.get(sorted(self.live_ids())).values())

    def missing_concepts(self, query: str) -> list[str]:
        return self.stats.missing_concepts(query)
