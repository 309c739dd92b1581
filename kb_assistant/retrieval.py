"""Retrieval: dense (Chroma) and keyword (BM25) candidates, fused with language-aware weights.

MiniLM, the default embedding, is nearly blind to Chinese, so for a Chinese question the fusion leans on
BM25 over jieba tokens; for English both count. Exposed as a LangChain ``BaseRetriever`` so any LangChain chain
can use it; the assistant calls ``search`` to keep the scores.
"""

from __future__ import annotations

from functools import lru_cache

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from kb_assistant.language import detect_language
from kb_assistant.schema import Candidate, Chunk, Query
from kb_assistant.store import KnowledgeBase

# (dense weight, keyword weight) per question language
# Measured (eval/README.md): English paraphrases are matched by meaning more than by words; MiniLM is nearly blind
# to Chinese, where BM25 over jieba tokens carries the ranking.
FUSION_WEIGHTS = {"en": (0.9, 0.1), "zh": (0.15, 0.85)}


def hybrid_search(
    index: KnowledgeBase, query: Query | str, *, k: int, dense: bool = True, keyword: bool = True
) -> list[Candidate]:
    """The ``k`` best live chunks by meaning and by words, fused, for the query's standalone question and under
    its filters; the query vector is computed here unless a stage before (the cache) already set it."""
    query = Query.of(query, index.name) if isinstance(query, str) else query
    text, lang, filters = query.standalone, query.language, query.filters or None
    index.refresh()  # once per query: a newer published KB version (an ingest elsewhere) is picked up here
    by_id: dict[str, Candidate] = {}
    if dense and query.vector is None:
        query.vector = index.embeddings.embed_query(text)
    if dense:
        for hit in index.dense_search(query.vector, k, where=filters):
            by_id[hit.chunk.id] = Candidate(hit.chunk, dense=hit.score)
    if keyword:
        kw = index.keyword.search(text, k, filters)
        top = kw[0][1] if kw else 1.0
        missing = [cid for cid, _ in kw if cid not in by_id]
        fetched = index.get(missing)
        for cid, raw in kw:
            cand = by_id.get(cid)
            if cand is None:
                if cid not in fetched:
                    continue  # keyword index a moment behind a deletion
                cand = by_id[cid] = Candidate(fetched[cid])
            cand.keyword = raw / top
        if dense:  # every candidate gets its dense score, not only those in the dense top-k
            fill = [cid for cid, c in by_id.items() if c.dense == 0.0]
            for cid, sim in index.similarities(query.vector, fill).items():
                by_id[cid].dense = sim
    for cand in by_id.values():
        # MiniLM cannot compare Chinese with anything: an English question's candidate from a Chinese passage (found
        # through the glossary) is weighed as a Chinese pair, on its words.
        cand.lang = pair = "zh" if lang == "zh" or chunk_language(cand.chunk) == "zh" else "en"
        w_dense, w_kw = fusion_weights(pair, dense=dense, keyword=keyword)
        cand.fused = cand.score = w_dense * cand.dense + w_kw * cand.keyword
    return sorted(by_id.values(), key=lambda c: c.fused, reverse=True)


def chunk_language(chunk: Chunk) -> str:
    return _language_of(chunk.search_text()[:400])


@lru_cache(maxsize=8192)
def _language_of(text: str) -> str:
    return detect_language(text)


def fusion_weights(lang: str, *, dense: bool = True, keyword: bool = True) -> tuple[float, float]:
    if not dense:
        return 0.0, 1.0
    if not keyword:
        return 1.0, 0.0
    return FUSION_WEIGHTS[lang]


class HybridRetriever(BaseRetriever):
    """LangChain face of ``hybrid_search``: Documents with the scores in their metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    index: KnowledgeBase
    k: int = 5

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [
            Document(
                page_content=c.chunk.text,
                id=c.chunk.id,
                metadata={**c.chunk.metadata(), "dense": c.dense, "keyword": c.keyword, "score": c.score},
            )
            for c in hybrid_search(self.index, query, k=self.k)[: self.k]
        ]
