"""``KnowledgeBase``: one KB, composed of its publication (version, live set), vectors (Chroma), keyword search
and corpus statistics — what every stage is handed. It adds nothing of its own but keeping them in step: a newer
published version swaps the keyword search and statistics for the new version's."""

from __future__ import annotations

import os
import socket
import threading
from typing import TYPE_CHECKING

from kb_assistant.glossary import load_glossary
from kb_assistant.schema import Chunk, Principal
from kb_assistant.settings import Settings, check_kb_name
from kb_assistant.store.keyword import BM25Search, KeywordSearch, keyword_tokens
from kb_assistant.store.publication import Publication, state_dir
from kb_assistant.store.stats import BM25Stats, CorpusStats
from kb_assistant.store.vectors import Hit, Vectors, list_kbs
from kb_assistant.store.visibility import KBView, Scope

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings


class KnowledgeBase:
    def __init__(self, settings: Settings, name: str, embeddings: Embeddings | None):
        self.settings = settings
        self.name = check_kb_name(name)
        self.state_dir = state_dir(settings, name)
        self.glossary = load_glossary(settings.glossary_builtin, settings.glossary_files)
        self.publication = Publication(settings, self.name, build_index=BM25Search.build, tokens_for=self._tokens_of)
        self.vectors = Vectors(settings, self.name, embeddings)
        self._version_state: _Version | None = None  # keyword search, statistics, visibility of one version

    @property
    def embeddings(self) -> Embeddings | None:
        """The model the KB's vectors are made with (an ingest may set it late: only writing needs it)."""
        return self.vectors.embeddings

    @embeddings.setter
    def embeddings(self, embeddings: Embeddings | None) -> None:
        self.vectors.embeddings = embeddings

    # --- the published version ---------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> None:
        """Pick up a newer published version (another process, replica or thread ingested): a read of the KB's
        version stamp when due (``version_check_s``) or forced (once per question), nothing otherwise."""
        self._current(force=force)

    def _current(self, *, force: bool = False) -> _Version:
        """The published version's keyword search, statistics and visibility, made once per version (one
        object, swapped whole: a reader holding it never sees a mix of two versions)."""
        pub = self.publication
        pub.refresh(force=force)
        snap, held = pub.snapshot(), self._version_state
        if held is None or held.generation != snap.generation:
            keyword = BM25Search(snap.folder, snap.sorted_ids, self.glossary)
            stats = BM25Stats(keyword, self.glossary, self._chunk_tokens)
            writer = (pub.state.get("writer_pid"), pub.state.get("writer_host", socket.gethostname()))
            if held is not None and held.generation and writer != (os.getpid(), socket.gethostname()):
                self.vectors.reopen()  # published elsewhere (a --full rebuild may have made a new collection)
            held = self._version_state = _Version(snap.generation, keyword, stats, snap.live, snap.visibility, self)
        return held

    @property
    def version(self) -> int:
        """The published KB version: every change an ingest makes bumps it (checked against the database now)."""
        self.refresh(force=True)
        return self.publication.version

    def state(self) -> dict:
        """The published state (version, chunks, when, by whom), checked against the database now."""
        self.refresh(force=True)
        return self.publication.state

    def live_ids(self) -> frozenset[str]:
        """The published chunk ids of the version this process serves."""
        self.refresh()
        return self.publication.live_ids()

    def is_live(self, chunk_ids) -> bool:
        """True when every one of ``chunk_ids`` is in the published KB (a cached answer citing them still holds)."""
        live = self.live_ids()
        return all(cid in live for cid in chunk_ids)

    def count(self) -> int:
        """Number of live chunks (FAQ question vectors not counted)."""
        return len(self.live_ids())

    def exists(self) -> bool:
        return self.name in list_kbs(self.settings)

    def published_tokens(self) -> dict[str, list[str]] | None:
        """The live chunks' keyword tokens as published (None: re-tokenize; see ``Publication.tokens``)."""
        self.refresh()
        return self.publication.tokens()

    def publish(
        self, version: int, tokens: dict[str, list[str]], visibility: dict[str, list[str]] | None = None, **extra
    ) -> None:
        """Make exactly the chunks in ``tokens`` live, as KB ``version``, limited to groups as ``visibility``
        says (chunk id → groups; None: as the current version limits them). Chroma's metadata is brought in step
        first (``set_visibility``), so the dense filter never lags the publication."""
        current = self.publication.visibility()
        if visibility is None:
            visibility = {cid: sorted(g) for cid, g in current.items() if cid in tokens}
        self.set_visibility(tokens, visibility, current)
        self.publication.publish(version, tokens, visibility, **extra)
        self.refresh()

    def set_visibility(self, tokens, visibility: dict[str, list[str]], current: dict[str, frozenset[str]]) -> None:
        """Write the groups of every chunk about to be live whose groups change, or that becomes live limited to
        groups, into its vectors' metadata."""
        live = self.publication.live_ids()
        changes = {
            cid: frozenset(visibility.get(cid) or ())
            for cid in tokens
            if frozenset(visibility.get(cid) or ()) != current.get(cid, frozenset())
            or (cid not in live and visibility.get(cid))
        }
        self.vectors.set_groups(changes)

    def add(self, chunks: list[Chunk], groups: list[str] | None = None) -> None:
        """Write and publish chunks in one step, outside the ingest ledger: for evaluation and benchmark KBs built
        from data that is not a folder of documents (a KB synced by `kb ingest` gets its chunks from the ledger,
        and a later sync of it would not keep chunks added here). ``groups``: limit these chunks to them."""
        self.vectors.write(chunks)
        tokens = dict(self.published_tokens() or {})
        tokens.update({c.id: keyword_tokens(c) for c in chunks})
        visibility = {cid: sorted(g) for cid, g in self.groups().items()}
        visibility.update({c.id: sorted(groups) for c in chunks if groups})
        self.publish(self.version + 1, tokens, visibility)

    # --- what the stages read ----------------------------------------------------------------------
    @property
    def keyword(self) -> KeywordSearch:
        return self._current().keyword

    @property
    def stats(self) -> CorpusStats:
        return self._current().stats

    def view(self, principal: Principal) -> KnowledgeBase | KBView:
        """The KB as ``principal`` sees it: itself when no live chunk is hidden from it, else a ``KBView`` whose
        every search, statistic and fetch leaves out the chunks limited to groups the principal is not in."""
        version = self._current()
        if not version.visibility or not version.scope(principal.groups).hidden:
            return self
        return KBView(self, principal)

    def visible(self, chunk_ids) -> bool:
        """The KB itself sees every chunk (a principal's ``KBView.visible`` may not)."""
        return True

    def groups(self) -> dict[str, frozenset[str]]:
        """The live chunks limited to groups: chunk id → the groups that may see it."""
        return self._current().visibility

    def dense_search(self, query_vector: list[float], k: int, where: dict | None = None) -> list[Hit]:
        """Live chunks only; cosine similarity in 0..1; a FAQ's question vector and main vector fold into one hit."""
        return self.vectors.search(query_vector, k, self.live_ids(), where=where)

    def similarities(self, query_vector: list[float], ids: list[str]) -> dict[str, float]:
        return self.vectors.similarities(query_vector, ids)

    def get(self, ids: list[str]) -> dict[str, Chunk]:
        return self.vectors.get(ids)

    def all_chunks(self) -> list[Chunk]:
        """The live chunks."""
        return list(self.get(sorted(self.live_ids())).values())

    def missing_concepts(self, query: str) -> list[str]:
        return self.stats.missing_concepts(query)

    def _tokens_of(self, ids: list[str]) -> dict[str, list[str]]:
        """Keyword tokens made from the stored chunks (adopting a data dir that kept none)."""
        return {cid: keyword_tokens(c) for cid, c in self.get(ids).items()}

    def _chunk_tokens(self, ids: list[str]) -> list[list[str]]:
        return [keyword_tokens(c) for c in self.get(ids).values()]


MAX_SCOPES = 64  # distinct group sets remembered per version


class _Version:
    """One published version as the readers use it: keyword search and statistics over all its live chunks, and
    per set of groups (only the groups the version names count) the ``Scope`` and statistics of what they see."""

    def __init__(self, generation, keyword, stats, live, visibility, kb: KnowledgeBase):
        self.generation, self.keyword, self.stats = generation, keyword, stats
        self.live, self.visibility, self.kb = live, visibility, kb
        self.named = frozenset().union(*visibility.values()) if visibility else frozenset()
        self._scopes: dict[frozenset[str], tuple[Scope, BM25Stats]] = {}
        self._lock = threading.Lock()

    def _entry(self, groups: frozenset[str]) -> tuple[Scope, BM25Stats]:
        key = frozenset(groups) & self.named
        with self._lock:
            entry = self._scopes.get(key)
            if entry is None:
                scope = Scope(self.keyword.ids, self.visibility, key)
                stats = (
                    self.stats
                    if not scope.hidden
                    else BM25Stats(self.keyword, self.kb.glossary, self.kb._chunk_tokens, visible=scope.mask)
                )
                if len(self._scopes) >= MAX_SCOPES:
                    self._scopes.pop(next(iter(self._scopes)))
                entry = self._scopes[key] = (scope, stats)
        return entry

    def scope(self, groups: frozenset[str]) -> Scope:
        return self._entry(groups)[0]

    def stats_for(self, scope: Scope) -> BM25Stats:
        return self._entry(scope.groups)[1]
