"""A KB's state behind small interfaces, composed by ``KnowledgeBase``:

- ``publication``: the published KB version and the live chunk set (is this chunk live?), as this process serves it.
- ``published``: that state in the database (``KB_DATABASE_URL``, else ``published.sqlite``), shared by replicas.
- ``vectors``: the Chroma collection per KB; dense search over the live set, with a ``where`` filter.
- ``keyword``: the ``KeywordSearch`` interface; BM25 (bm25s) is its implementation.
- ``stats``: the ``CorpusStats`` interface (idf, df, does the KB say this concept), over the BM25 index.
- ``knowledge_base``: ``KnowledgeBase``, what the stages are handed.
"""

from kb_assistant.store.keyword import KeywordSearch, keyword_tokens
from kb_assistant.store.knowledge_base import KnowledgeBase
from kb_assistant.store.stats import CorpusStats
from kb_assistant.store.vectors import QUESTION_SUFFIX, Hit, chroma_client, list_kbs, vector_ids

__all__ = [
    "QUESTION_SUFFIX", "CorpusStats", "Hit", "KeywordSearch", "KnowledgeBase", "chroma_client", "keyword_tokens",
    "list_kbs", "vector_ids",
]  # fmt: skip
