"""One Query travels through the stages: its filters reach the vector search, its embedding is computed once and
reused by rerank, and a keyword backend that cannot apply a filter says so instead of ignoring it."""

from __future__ import annotations

import pytest

from kb_assistant.schema import Chunk, Query


def test_a_query_of_a_question_alone_is_its_own_standalone_question_in_its_language():
    zh, en = Query.of("公司几点上班？", "hr"), Query.of("When does the office open?")
    assert (zh.kb, zh.standalone, zh.language) == ("hr", "公司几点上班？", "zh")
    assert (en.kb, en.standalone, en.language, en.filters, en.vector) == ("default", en.text, "en", {}, None)


@pytest.fixture
def two_documents(settings, embeddings):
    from kb_assistant.store import KnowledgeBase

    index = KnowledgeBase(settings, "filters", embeddings)
    index.add([
        Chunk(id="a1", text="Parking is free in the basement garage for every employee.", source="a.md"),
        Chunk(id="b1", text="Visitors park in the street; the garage is for employees.", source="b.md"),
        Chunk(id="b2", text="The canteen serves lunch from 12:00 to 14:00.", source="b.md"),
    ])  # fmt: skip
    return index


def test_the_querys_filters_reach_the_vector_search(two_documents):
    from kb_assistant.retrieval import hybrid_search

    everything = hybrid_search(two_documents, Query.of("Where can I park?", "filters"), k=3, keyword=False)
    assert {c.chunk.source for c in everything} == {"a.md", "b.md"}
    only_b = Query.of("Where can I park?", "filters", filters={"source": "b.md"})
    found = hybrid_search(two_documents, only_b, k=3, keyword=False)
    assert [c.chunk.id for c in found][:1] == ["b1"] and {c.chunk.id for c in found} == {"b1", "b2"}


def test_the_question_is_embedded_once_for_retrieval_and_rerank(two_documents, monkeypatch):
    from kb_assistant.rerank import EvidenceReranker
    from kb_assistant.retrieval import hybrid_search

    calls = []
    real = two_documents.embeddings.embed_query
    monkeypatch.setattr(two_documents.embeddings, "embed_query", lambda text: calls.append(text) or real(text))
    query = Query.of("Where can I park my car?", "filters")
    EvidenceReranker(two_documents).rerank(query, hybrid_search(two_documents, query, k=3))
    assert calls == ["Where can I park my car?"] and query.vector is not None


def test_a_keyword_backend_that_cannot_filter_refuses_the_filter_rather_than_ignore_it(two_documents):
    from kb_assistant.retrieval import hybrid_search

    with pytest.raises(NotImplementedError, match="filters"):
        hybrid_search(two_documents, Query.of("park", "filters", filters={"source": "b.md"}), k=3)
