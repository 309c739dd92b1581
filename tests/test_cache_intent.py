"""What two questions ask (kb_assistant/cache/intent.py): the answer type, and content words without a counterpart.

Unit tests with word vectors made up for the test (nothing is loaded); the cache's tests use the real model."""

from __future__ import annotations

import pytest

from kb_assistant.cache.intent import WordVectors, answer_type, types_agree, unmatched_words

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "question, kind",
    [
        ("How many days of leave do I get?", "amount"),
        ("How much does the company pay for lunch?", "amount"),
        ("How long should loan records be kept?", "duration"),
        ("How often are passwords changed?", "frequency"),
        ("When is the office open?", "time"),
        ("What time does the office open?", "time"),
        ("Where is the visa form?", "where"),
        ("Why was my claim refused?", "why"),
        ("According to the policy, who approves overtime?", "who"),
        ("How do I apply for leave?", "how"),
        ("What is the purpose of the policy?", "what"),
        ("Under what circumstances can overtime be refused?", "what"),
        ("Can I carry over unused leave?", "yes-no"),
        ("Is there a limit on overtime?", "yes-no"),
        ("Reports needed for Help Desk management?", None),
    ],
)
def test_the_answer_type_is_read_from_the_word_that_opens_the_question(question, kind):
    assert answer_type(question) == kind


@pytest.mark.parametrize(
    "a, b, agree",
    [
        ("amount", "amount", True),
        ("what", "time", True),  # "what is the deadline" asks for a time
        ("what", "how", True),
        ("amount", "duration", False),
        ("who", "where", False),
        ("yes-no", "what", False),  # a verdict is not a thing
        ("yes-no", "amount", False),
        (None, "who", True),  # not recognisably a question: nothing to compare
    ],
)
def test_answer_types_agree_when_equal_or_one_is_a_what(a, b, agree):
    assert types_agree(a, b) is agree
    assert types_agree(b, a) is agree


class _Vectors:
    """Embeddings where the words of each group are one direction and every other word its own."""

    GROUPS = [{"purpose", "point"}, {"importance", "significance"}]

    def embed_documents(self, texts):
        import zlib

        import numpy as np

        out = []
        for text in texts:
            group = next((sorted(g)[0] for g in self.GROUPS if text in g), text)
            out.append(np.random.default_rng(zlib.crc32(group.encode())).normal(size=16).tolist())
        return out


def _unmatched(a, b, **kw):
    from kb_assistant.cache.detectors import content_words
    from kb_assistant.cache.guard import UNKNOWN_WORD_WEIGHT

    return unmatched_words(
        a, b, lambda t: 2.0, content=content_words, weight=lambda t, idf: idf(t) or UNKNOWN_WORD_WEIGHT,
        same_word=lambda x, y: x == y, **kw,
    )  # fmt: skip


def test_a_word_swapped_for_a_near_neighbour_has_a_counterpart_and_an_unrelated_one_has_none():
    words = WordVectors(_Vectors())
    same = _unmatched("What's the point of an SLA?", "What is the purpose of an SLA?", words=words, word_similarity=0.9)
    assert (same.a, same.b, same.share) == ([], [], 0.0)
    other = _unmatched(
        "What is the scope of an SLA?", "What is the purpose of an SLA?", words=words, word_similarity=0.9
    )
    assert (other.a, other.b, other.share) == (["scope"], ["purpose"], 0.5)


def test_a_clause_one_question_adds_is_left_without_a_counterpart():
    found = _unmatched(
        "What are the two types of observation, and how do they differ?", "What are the two types of observation?"
    )
    assert found.a == ["differ"] and found.b == [] and found.share_a > 0


def test_words_of_one_glossary_concept_are_counterparts():
    from kb_assistant.glossary import load_glossary

    glossary = load_glossary(True, [])
    found = _unmatched("How do I request PTO?", "How do I request annual leave?", glossary=glossary)
    assert (found.a, found.b) == ([], [])
    assert _unmatched("How do I request PTO?", "How do I request annual leave?").share > 0
