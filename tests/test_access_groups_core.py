"""Access groups inside every stage of a question: a principal's view of a KB searches, ranks, counts and fetches
only what it may see (real Chroma, the real MiniLM). The surfaces are tests/test_access_groups.py."""

from __future__ import annotations

import pytest

from kb_assistant.schema import Chunk, Principal, Query

SECRET_EN = "Zorbulax bands: managers earn 9,931,004 per year"
SECRET_ZH = "绝密薪资带宽：经理年薪玖佰玖拾叁万"

PUBLIC = [
    Chunk(id="p1", text="Salary is paid on the 10th of every month into your bank account.", source="pay.md",
          section="Pay > Payday"),
    Chunk(id="p2", text="The canteen serves lunch from 12:00 to 14:00 on working days.", source="canteen.md"),
    Chunk(id="p3", text="工资每月10日发放到员工的银行账户。", source="工资.md", section="工资 > 发薪日"),
]  # fmt: skip
RESTRICTED = [
    Chunk(id="r1", text=f"Salary bands for managers. {SECRET_EN}.", source="bands.md", section="Salary bands"),
    Chunk(id="r2", text=f"经理薪资带宽。{SECRET_ZH}。", source="带宽.md", section="薪资带宽"),
    Chunk(id="r3", text="Salary bands are reviewed by managers every year.", source="bands.md", section="Review"),
]  # fmt: skip
MANAGER, OUTSIDER = Principal.of("maria", "managers"), Principal.of("otto")


@pytest.fixture
def hr(settings, embeddings):
    from kb_assistant.store import KnowledgeBase

    index = KnowledgeBase(settings, "hr", embeddings)
    index.add(PUBLIC)
    index.add(RESTRICTED, groups=["managers"])
    return index


def search(index, principal, text, k=3, **kw):
    from kb_assistant.retrieval import hybrid_search

    view = index.view(principal)
    return [c.chunk.id for c in hybrid_search(view, Query.of(text, index.name, principal=principal), k=k, **kw)][:k]


@pytest.mark.parametrize("kw", [{}, {"keyword": False}, {"dense": False}], ids=["hybrid", "dense", "keyword"])
def test_an_outsider_retrieves_k_visible_passages_and_a_manager_the_restricted_ones(hr, kw):
    assert {"r1", "r2", "r3"} & set(search(hr, MANAGER, "What are the salary bands for managers?", **kw))
    for question in ["What are the salary bands for managers?", "Zorbulax", "经理薪资带宽", "玖佰玖拾叁万"]:
        found = search(hr, OUTSIDER, question, **kw)
        assert not {"r1", "r2", "r3"} & set(found), question
    assert len(search(hr, OUTSIDER, "salary bands managers", k=3, keyword=False)) == 3  # k visible, not k - hidden


def test_an_outsiders_statistics_count_only_the_chunks_it_may_see(hr):
    from kb_assistant.language import tokenize

    outsider, manager = hr.view(OUTSIDER).stats, hr.view(MANAGER).stats
    secret_word = tokenize("zorbulax")[0]
    assert manager.df(secret_word) == 1 and manager.idf(secret_word) > 0
    assert outsider.df(secret_word) == 0 and outsider.idf(secret_word) == 0.0  # as if the KB never said it
    assert outsider.df(tokenize("salary")[0]) == 1 and manager.df(tokenize("salary")[0]) == 3
    assert hr.view(OUTSIDER).count() == 3 and hr.view(MANAGER).count() == 6
    assert hr.view(MANAGER) is hr  # nothing hidden from a manager: the KB itself, unchanged figures


def test_a_word_only_restricted_documents_use_does_not_make_the_kb_say_a_concept_for_an_outsider(hr):
    from kb_assistant.store import KnowledgeBase

    # "bonus" is a glossary concept; only a restricted chunk says it
    hr.add([Chunk(id="r4", text="The annual bonus for managers is two months' pay.", source="bonus.md")], ["managers"])
    hr = KnowledgeBase(hr.settings, "hr", hr.embeddings)
    question = "How is the bonus calculated?"
    assert not hr.view(MANAGER).missing_concepts(question)
    assert hr.view(OUTSIDER).missing_concepts(question), "the outsider's KB never says bonus"


def test_an_outsider_cannot_fetch_or_score_a_hidden_chunk_by_its_id(hr):
    view = hr.view(OUTSIDER)
    assert set(view.get(["p1", "r1", "r2"])) == {"p1"}
    assert set(view.similarities(hr.embeddings.embed_query("salary"), ["p1", "r1"])) == {"p1"}
    assert view.visible(["p1"]) and not view.visible(["p1", "r1"])


def test_widening_a_chunks_groups_publishes_it_without_re_embedding(hr, monkeypatch):
    tokens = hr.published_tokens()
    visibility = {cid: sorted(g) for cid, g in hr.groups().items() if cid != "r3"}
    monkeypatch.setattr(hr.embeddings, "embed_documents", lambda texts: pytest.fail("re-embedded"))
    hr.publish(hr.version + 1, tokens, visibility)
    assert "r3" in search(hr, OUTSIDER, "Who reviews the salary bands every year?", keyword=False)
    got = hr.vectors.collection.get(ids=["r3", "r1"], include=["metadatas"])
    meta = dict(zip(got["ids"], got["metadatas"], strict=True))
    assert "restricted" not in meta["r3"] and meta["r1"]["groups"] == ["managers"]
