"""``KnowledgeBase``: one KB, composed of its publication (version, live set), vectors (Chroma), keyword search
and corpus statistics — what every stage is handed. It adds nothing of its own but keeping them in step: a newer
publish seen by one stat swaps the keyword search and statistics for the new version's."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kb_assistant.glossary import load_glossary
from kb_assistant.schema import Chunk
from kb_assistant.settings import Settings, check_kb_name
from kb_assistant.store.keyword import BM25Search, KeywordSearch, keyword_tokens
from kb_assistant.store.publication import Publication, state_dir
from kb_assistant.store.stats import BM25Stats, CorpusStats
from kb_assistant.store.vectors import Hit, Vectors, list_kbs

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings


class KnowledgeBase:
    def __init__(self, settings: Settings, name: str, embeddings: Embeddings | None):
        self.settings = settings
        self.name = check_kb_name(name)
        self.state_dir = state_dir(settings, name)
        self.glossary = load_glossary(settings.glossary_builtin, settings.glossary_files)
        self.publication = Publication(self.state_dir)
        self.vectors = Vectors(settings, self.name, embeddings)
        self._keyword: BM25Search | None = None
        self._stats: BM25Stats | None = None
        self._generation = 0  # the publication's generation the keyword search and statistics were made for

    @property
    def embeddings(self) -> Embeddings | None:
        """The model the KB's vectors are made with (an ingest may set it late: only writing needs it)."""
        return self.vectors.embeddings

    @embeddings.setter
    def embeddings(self, embeddings: Embeddings | None) -> None:
        self.vectors.embeddings = embeddings

    # --- the published version ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Pick up a newer published state (another process or thread ingested); costs one stat when unchanged."""
        pub = self.publication
        pub.refresh()
        if pub.generation != self._generation:
            self._keyword = BM25Search(pub.folder, pub.sorted_ids(), self.glossary)
            self._stats = BM25Stats(self._keyword, self.glossary, self._chunk_tokens)
            if self._generation and pub.state.get("writer_pid") != os.getpid():
                self.vectors.reopen()  # published elsewhere (a --full rebuild may have made a new collection)
            self._generation = pub.generation

    @property
    def version(self) -> int:
        """The published KB version: every change an ingest makes bumps it."""
        self.refresh()
        return self.publication.version

    def state(self) -> dict:
        self.refresh()
        return self.publication.state

    def live_ids(self) -> frozenset[str]:
        """The published chunk ids (checks for a newer publish first: one stat)."""
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

    def publish(self, version: int, tokens: dict[str, list[str]], **extra) -> None:
        """Make exactly the chunks in ``tokens`` live, as KB ``version``."""
        self.publication.publish(version, tokens, lambda folder, ids: BM25Search.build(folder, ids, tokens), **extra)
        self.refresh()

    def add(self, chunks: list[Chunk]) -> None:
        """Write and publish chunks in one step, outside the ingest ledger: for evaluation and benchmark KBs built
        from data that is not a folder of documents (a KB synced by `kb ingest` gets its chunks from the ledger,
        and a later sync of it would not keep chunks added here)."""
        self.vectors.write(chunks)
        tokens = dict(self.published_tokens() or {})
        tokens.update({c.id: keyword_tokens(c) for c in chunks})
        self.publish(self.version + 1, tokens)

    # --- what the stages read ----------------------------------------------------------------------
    @property
    def keyword(self) -> KeywordSearch:
        self.refresh()
        return self._keyword

    @property
    def stats(self) -> CorpusStats:
        self.refresh()
        return self._stats

    def dense_search(self, query_vector: list[float], k: int, where: dict | None = None) -> list[Hit]:
        """Live chunks only; cosine similarity in 0..1; a FAQ's question vector and main vector fold into one hit."""
        return self.vectors.search(query_vector, k, self.live_ids(), where=where)

    def similarities(self, query_vector: list[float], ids: list[str]) -> dict[str, float]:
        return self.vectors.similarities(query_vector, ids)

    def get(self, ids: list[str]) -> dict[str, Chunk]:
        return self.vectors.get(ids)

    def following(self, chunks: list[Chunk]) -> dict[str, Chunk]:
        """The live chunk that follows each of ``chunks`` in its section, by the id of the chunk it follows."""
        live = self.live_ids()
        wanted = {c.id: c.next_id for c in chunks if c.next_id and c.next_id in live}
        got = self.get(sorted(set(wanted.values()))) if wanted else {}
        return {cid: got[nid] for cid, nid in wanted.items() if nid in got}

    def all_chunks(self) -> list[Chunk]:
        """The live chunks."""
        return list(self.get(sorted(self.live_ids())).values())

    def missing_concepts(self, query: str) -> list[str]:
        return self.stats.missing_concepts(query)

    def _chunk_tokens(self, ids: list[str]) -> list[list[str]]:
        return [keyword_tokens(c) for c in self.get(ids).values()]
