"""Extractive answers are whole passages: the key sentence marked inside the passage around it (real keyword index,
real MiniLM for the KB these passages live in)."""

from __future__ import annotations

import pytest

from kb_assistant.answer import Draft
from kb_assistant.answer.extractive import ExtractiveAnswerer
from kb_assistant.answer.spans import SPAN_CHARS, is_question, key_text
from kb_assistant.schema import Candidate, Chunk

LEAVE = (
    "Annual leave\n"
    "Full-time employees receive 20 days of annual leave per year. Leave must be approved in advance by your "
    "manager. Unused leave carries over to the next year up to a limit of 5 days."
)
REMOTE = (
    "Does your Foundation permit employees to work from home?\n"
    "Employees may work from home up to two days per week with the approval of their line manager."
)
CONDITIONS = (
    "The Employer's offer of employment is subject to the following conditions:\n"
    "(a) certified copies of all documents relating to your qualifications;\n"
    "(b) a satisfactory police record check;\n"
    "(c) proof that you are entitled to work in Australia."
)
# one section over two chunks: the sentence that asks for the list ends the first, the list is the second
BENEFITS = "Staff benefits are reviewed every year. Every permanent employee receives the following benefits:"
BENEFITS_LIST = "(a) private health insurance;\n(b) a gym membership;\n(c) a transport allowance."
PROBATION = "Probation lasts six months for every new member of staff."
NOTICE = "Either party may end the contract by giving four weeks of written notice."
FILLER = [f"Clause {i}: the employee shall follow the lawful directions of the employer." for i in range(20)]


@pytest.fixture(scope="module")
def handbook(tmp_path_factory, embeddings):
    from kb_assistant.settings import Settings
    from kb_assistant.store import KnowledgeBase

    settings = Settings(data_dir=tmp_path_factory.mktemp("spans") / "data")
    texts = {"leave": LEAVE, "remote": REMOTE, "conditions": CONDITIONS, "probation": PROBATION, "notice": NOTICE}
    chunks = [Chunk(id=k, text=v, source=f"{k}.pdf", section=k.title(), page=3) for k, v in texts.items()]
    chunks += [Chunk(id=f"f{i}", text=t, source="contract.pdf", section="Duties") for i, t in enumerate(FILLER)]
    chunks += [
        Chunk(id="benefits", text=BENEFITS, source="staff.pdf", section="Benefits", page=4, next_id="benefits-2"),
        Chunk(id="benefits-2", text=BENEFITS_LIST, source="staff.pdf", section="Benefits", page=5),
    ]
    index = KnowledgeBase(settings, "spans", embeddings)
    index.add(chunks)
    return index, {c.id: c for c in chunks}


def _draft(handbook, question: str, *ids: str) -> Draft:
    index, chunks = handbook
    passages = [Candidate(chunk=chunks[i], score=0.8 - 0.1 * n) for n, i in enumerate(ids)]
    items = list(ExtractiveAnswerer(index.stats, following=index.following).generate(question, passages, "en"))
    draft = items[-1]
    assert isinstance(draft, Draft) and draft.found
    return draft


def _answer(handbook, question: str, *ids: str) -> str:
    return _draft(handbook, question, *ids).text


def test_the_answer_is_the_passage_around_the_key_sentence_with_the_key_sentence_marked(handbook):
    text = _answer(handbook, "How many days of annual leave do full-time employees get?", "leave", "remote")
    assert key_text(text).startswith("Full-time employees receive 20 days")
    assert "**Full-time employees receive 20 days of annual leave per year.**" in text
    assert "carries over to the next year up to a limit of 5 days" in text  # the detail that follows comes along
    assert text.endswith("[1]") and len(text) <= SPAN_CHARS + 20


def test_a_question_the_document_asks_is_never_the_key_sentence(handbook):
    text = _answer(handbook, "Does the Foundation permit employees to work from home?", "remote", "leave")
    assert not is_question(key_text(text))
    assert "two days per week" in key_text(text)


def test_a_sentence_that_introduces_a_list_answers_with_its_items(handbook):
    text = _answer(handbook, "What conditions is the offer of employment subject to?", "conditions", "leave")
    for item in ("certified copies", "police record check", "entitled to work in Australia"):
        assert item in text
    assert text.count("\n") >= 3  # the items stay on their own lines


def test_a_sentence_that_ends_its_passage_answers_with_the_list_in_the_chunk_that_follows_it_in_the_section(
    handbook,
):
    text = _answer(handbook, "What benefits does every permanent employee receive?", "benefits", "leave")
    assert "**Every permanent employee receives the following benefits:" in text
    for item in ("private health insurance", "gym membership", "transport allowance"):
        assert item in text
    assert text.endswith("[1]") and "[2]" not in text  # cited as the passage it grew from


def test_the_draft_says_how_much_of_the_question_its_key_sentence_holds(handbook):
    on_topic = _draft(handbook, "How many days of annual leave do full-time employees get?", "leave")
    off_topic = _draft(handbook, "How many days of annual leave do full-time employees get?", "probation")
    assert on_topic.key_coverage > 0.8 > 0.3 > off_topic.key_coverage


def test_a_question_in_two_parts_draws_on_two_passages_each_cited(handbook):
    text = _answer(
        handbook, "How long does probation last and what notice must be given to end the contract?", "probation",
        "notice", "leave",
    )  # fmt: skip
    assert "six months" in text and "four weeks" in text
    assert "[1]" in text and "[2]" in text


def test_a_question_in_one_part_answers_from_one_passage(handbook):
    text = _answer(handbook, "How long does probation last?", "probation", "notice")
    assert "six months" in text and "[2]" not in text


@pytest.mark.unit
@pytest.mark.parametrize(
    ("sentence", "asks"),
    [("Does your Foundation permit employees to work from home?", True), ("员工可以在家办公吗", True),
     ("Employees may work from home (see clause 4).", False), ("员工每年享有 10 天年假。", False)],
)  # fmt: skip
def test_a_sentence_is_a_question_when_it_asks(sentence, asks):
    assert is_question(sentence) is asks
