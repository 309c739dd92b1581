"""The pipeline's stages on their own, fast: text primitives, the cache's keys and guard, condensing without an LLM,
rerank's ordering and coverage, the query-vector memo and the gap log's similarity, with a fake embedding.

No embedding model, no Chroma, no server: ``pytest -m unit``. What each test expects is what the code's docstrings
and comments promise.
"""

from __future__ import annotations

import numpy as np
import pytest

from kb_assistant.cache.detectors import numbers
from kb_assistant.cache.guard import near_miss_reason
from kb_assistant.cache.keys import is_personal, normalize_question, wording_key
from kb_assistant.condense import LLMCondenser, TopicCarryover, previous_user_question
from kb_assistant.language import detect_language, normalise, query_terms, split_sentences, tokenize

pytestmark = pytest.mark.unit


def idf(token: str) -> float:
    return 2.0  # every word equally rare


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# --- text --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("公司几点上班？", "zh"),
        ("How many days of annual leave do I get?", "en"),
        ("VPN 怎么连？", "zh"),  # three Chinese characters against three Latin letters: a real share
        ("The handbook (员工手册) says every employee gets twenty days of annual leave each year.", "en"),
        ("", "en"),
    ],
)
def test_a_text_is_chinese_when_chinese_characters_are_a_real_share_of_its_letters(text, lang):
    assert detect_language(text) == lang


def test_sentences_split_at_their_ends_but_never_inside_a_time_or_a_decimal():
    assert split_sentences("Lunch is 1.5 hours. Work starts at 10:00; it ends at 19:00.") == [
        "Lunch is 1.5 hours.",
        "Work starts at 10:00;",
        "it ends at 19:00.",
    ]
    assert split_sentences("上班时间为10:00。午休1.5小时！\n\n加班需审批") == [
        "上班时间为10:00。",
        "午休1.5小时！",
        "加班需审批",
    ]


def test_tokens_are_lower_cased_content_words_with_times_and_hyphenated_words_kept_whole():
    assert tokenize("How many days of Annual Leave do I get?") == ["days", "annual", "leave"]
    assert "how" in tokenize("How many days?", keep_stopwords=True)
    assert tokenize("COVID-19 rules from 10:00") == ["covid-19", "rules", "10:00"]
    zh = tokenize("公司几点上班")
    assert "上班" in zh and "公司" not in zh and "几点" not in zh  # 公司 and 几点 are Chinese stopwords


def test_query_terms_add_what_the_question_word_asks_for():
    assert "时间" in query_terms("公司几点上班？")  # 几点 asks for a 时间
    assert "时间" not in tokenize("公司几点上班？")
    terms = query_terms("When is payday?")
    assert "payday" in terms and "time" in terms
    assert len(terms) == len(set(terms))


def test_normalise_keeps_letters_and_digits_only_half_width_and_case_folded():
    assert normalise("ＡＢＣ　Leave？ 10:00") == "abcleave1000"
    assert normalise(None) == ""


# --- the cache's keys and guard ----------------------------------------------------------------------------------
def test_the_exact_key_is_one_for_case_width_spacing_punctuation_and_script():
    assert normalize_question("How many DAYS of leave?") == normalize_question("how many days of leave")
    assert normalize_question("公司幾點上班？") == normalize_question("公司几点上班")
    assert normalize_question("How many days of leave?") != normalize_question("How many days of sick leave?")


def test_the_wording_key_drops_function_words_but_keeps_modals_and_question_words_that_change_the_question():
    assert wording_key("Can I get annual leave?") == wording_key("Do I get annual leave?")
    assert wording_key("Can I get annual leave?") != wording_key("Must I take annual leave?")
    assert wording_key("Why is the office closed?") != wording_key("Where is the office closed?")
    assert wording_key("怎么申请年假") == wording_key("如何申请年假")  # 怎么 / 如何: one way of asking
    assert wording_key("holidays") == wording_key("holiday")  # light stemming
    assert wording_key("VPN VPN") == "vpn*2"  # a multiset: a repeated word is counted


@pytest.mark.parametrize(
    ("question", "personal"),
    [
        ("I have a fever, can I stay home?", True),
        ("What if I am sick on a business trip?", False),  # a condition, not the asker's situation
        ("Do I have to wear a badge?", False),  # an obligation
        ("Is my expense claim approved?", True),
        ("我的工资什么时候发？", True),
        ("工资什么时候发？", False),
    ],
)
def test_a_question_about_the_askers_own_situation_is_personal(question, personal):
    assert is_personal(question) is personal


def test_numbers_ignore_a_times_zero_minutes_and_words_are_numbers_too():
    assert numbers("a taxi after 21:00") == numbers("a taxi after 21")
    assert numbers("Is COVID-19 covered?") == frozenset()  # a name, not a number
    assert "5" in numbers("carry over 5 days") and numbers("carry over 5 days") != numbers("carry over 6 days")


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("Is lunch free for employees?", "Is lunch not free for employees?", "negation"),
        ("Is 5 days not enough?", "Is 6 days enough?", "negation"),  # negation is checked before numbers
        ("Is the taxi limit 100 CNY?", "Is the taxi limit 200 CNY?", "number"),
        ("Why was the claim rejected?", "How was the claim rejected?", "question kind"),
        ("Is the canteen open on Monday?", "Is the canteen open on Friday?", "date"),
    ],
)
def test_the_guard_names_the_first_difference_it_finds(a, b, reason):
    assert near_miss_reason(a, b, idf) == reason
    assert near_miss_reason(b, a, idf) == reason  # symmetric for these differences


def test_the_same_question_is_no_near_miss():
    for q in ("How many days of annual leave do I get?", "公司几点上班？"):
        assert near_miss_reason(q, q, idf) is None


# --- condensing without an LLM -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("previous", "follow_up", "standalone"),
    [  # the examples kb_assistant/condense.py's docstring promises
        ("公司几点上班？", "那周末呢？", "周末 公司几点上班"),
        ("How many days of annual leave do I get?", "and sick leave?", "How many days of sick leave do I get?"),
        (
            "How many days of annual leave do full-time employees get?",
            "and part-time?",
            "How many days of annual leave do part-time employees get?",
        ),
        ("How many days of annual leave do I get?", "and contractors?", "contractors days annual leave"),
    ],
)
def test_an_elliptical_follow_up_borrows_the_topic_of_the_previous_question(previous, follow_up, standalone):
    assert TopicCarryover().condense(follow_up, user(previous)) == standalone


def test_a_question_of_its_own_or_one_without_history_is_left_as_it_is():
    carry = TopicCarryover()
    assert carry.condense("那周末呢？", None) == "那周末呢？"
    question = "How do I reset my VPN password?"
    assert carry.condense(question, user("How many days of annual leave do I get?")) == question


def test_the_previous_question_is_the_last_non_empty_user_message():
    history = [
        {"role": "user", "content": "公司几点上班？"},
        {"role": "assistant", "content": "10:00–19:00 [1]"},
        {"role": "user", "content": "  "},
    ]
    assert previous_user_question(history) == "公司几点上班？"
    assert previous_user_question([{"role": "assistant", "content": "hi"}]) is None
    assert previous_user_question(None) is None


class _Reply:
    def __init__(self, content):
        self.content = content


class _ChatModel:
    """A chat model that returns a fixed reply, or raises it when it is an exception; it records its prompts."""

    def __init__(self, reply):
        self.reply, self.prompts = reply, []

    def invoke(self, prompt):
        self.prompts.append(prompt)
        if isinstance(self.reply, Exception):
            raise self.reply
        return _Reply(self.reply)


def test_the_llm_condenser_keeps_the_first_line_of_the_rewrite_and_shows_the_history_in_its_prompt():
    model = _ChatModel("周末需要上班吗？\n(说明：补全了主语)")
    standalone = LLMCondenser(model).condense("那周末呢？", user("公司几点上班？"))
    assert standalone == "周末需要上班吗？"
    (prompt,) = model.prompts
    assert "公司几点上班？" in prompt and "那周末呢？" in prompt and "{history}" not in prompt


def test_the_llm_condenser_falls_back_to_topic_carryover_when_the_llm_fails_and_skips_it_without_history():
    failing = _ChatModel(RuntimeError("connection refused"))
    assert LLMCondenser(failing).condense("那周末呢？", user("公司几点上班？")) == "周末 公司几点上班"
    unused = _ChatModel("never asked")
    assert LLMCondenser(unused).condense("公司几点上班？", []) == "公司几点上班？"
    assert unused.prompts == []


# --- rerank --------------------------------------------------------------------------------------------------------
def _candidate(cid, source, *, score=0.0, kind="text", question="", text=None):
    from kb_assistant.schema import Candidate, Chunk

    chunk = Chunk(id=cid, text=text if text is not None else cid, source=source, kind=kind, question=question)
    return Candidate(chunk=chunk, score=score)


def test_repeats_of_one_faq_question_or_one_text_go_after_the_distinct_passages():
    from kb_assistant.rerank import distinct_first

    a = _candidate("a", "faq.csv", kind="faq", question="When is payday?", text="On the 10th.")
    a_again = _candidate("a2", "faq-copy.csv", kind="faq", question="when is PAYDAY", text="On the 10th!")
    b = _candidate("b", "handbook.md", text="Lunch is 1.5 hours.")
    b_again = _candidate("b2", "handbook-old.md", text="Lunch is 1.5 hours.")
    c = _candidate("c", "handbook.md", text="Parking is in B2.")
    ranked = distinct_first([a, a_again, b, b_again, c])
    assert [x.chunk.id for x in ranked] == ["a", "b", "c", "a2", "b2"]


def test_passages_reorder_only_within_their_document():
    from kb_assistant.rerank import within_documents

    h1 = _candidate("h1", "handbook.md", score=0.2)
    h2 = _candidate("h2", "handbook.md", score=0.9)
    x = _candidate("x", "expenses.pdf", score=1.0)
    across = {"h1": 0.8, "x": 0.5, "h2": 0.1}  # the handbook holds places 1 and 3, the expenses note place 2
    assert [c.chunk.id for c in within_documents([x, h2, h1], across)] == ["h2", "x", "h1"]


@pytest.fixture
def stats(tmp_path):
    """Corpus statistics of a real BM25 keyword index (bm25s on disk, no Chroma) over three small passages."""
    from kb_assistant.glossary import Glossary
    from kb_assistant.store.keyword import BM25Search
    from kb_assistant.store.stats import BM25Stats

    texts = {
        "annual": "Every employee gets 15 days of paid annual leave.",
        "sick": "Sick leave needs a doctor's certificate.",
        "parking": "Parking leave rules: the car park closes at 22:00.",
    }
    ids = sorted(texts)
    BM25Search.build(tmp_path, ids, {cid: tokenize(t) for cid, t in texts.items()})
    return BM25Stats(BM25Search(tmp_path, ids), Glossary([]))


def test_coverage_is_the_idf_weighted_share_of_the_questions_words_a_passage_holds(stats):
    from kb_assistant.rerank import weighted_coverage

    question = "How many days of annual leave do I get?"
    assert weighted_coverage(question, "15 days of paid annual leave", stats) == pytest.approx(1.0)
    # 'leave' is in every passage: it weighs least, so a passage holding only it covers little
    only_leave = weighted_coverage(question, "leave", stats)
    only_annual = weighted_coverage(question, "annual", stats)
    assert 0.0 < only_leave < only_annual < 1.0
    assert stats.idf("leave") < stats.idf("annual")
    assert weighted_coverage(question, "The office closes at 22:00.", stats) == 0.0
    assert weighted_coverage("?", "anything", stats) == 0.0  # no content words: nothing to cover


def test_a_word_the_kb_never_uses_weighs_most_so_no_passage_covers_a_question_about_it(stats):
    from kb_assistant.rerank import weighted_coverage

    assert stats.idf("sabbatical") == 0.0
    covered = weighted_coverage("How long is sabbatical leave?", "Sick leave needs a doctor's certificate.", stats)
    assert covered < 0.1  # 'leave' is covered, 'sabbatical' (unknown: weight 4) is not


# --- with a fake embedding ---------------------------------------------------------------------------------------
def test_the_fake_embedding_is_deterministic_and_needs_no_model(fake_embeddings):
    a = fake_embeddings.embed_query("How many days of annual leave do I get?")
    assert len(a) == 384
    assert a == fake_embeddings.embed_query("How many days of annual leave do I get?")
    assert a != fake_embeddings.embed_query("How many days of sick leave do I get?")


def test_the_query_memo_runs_the_model_once_per_recent_query_and_never_memoises_documents(fake_embeddings):
    from langchain_core.embeddings import Embeddings

    from kb_assistant.embeddings import QueryMemo

    calls: list[str] = []

    class Counting(Embeddings):
        def embed_query(self, text):
            calls.append(text)
            return fake_embeddings.embed_query(text)

        def embed_documents(self, texts):
            calls.extend(texts)
            return fake_embeddings.embed_documents(texts)

    memo = QueryMemo(Counting(), size=2)
    first = memo.embed_query("q1")
    assert memo.embed_query("q1") == first == fake_embeddings.embed_query("q1")
    assert calls == ["q1"]  # the second ask came from the memo
    memo.embed_query("q2")
    memo.embed_query("q1")  # q1 is now the most recent
    memo.embed_query("q3")  # evicts q2, the least recently used
    memo.embed_query("q1")
    memo.embed_query("q2")
    assert calls == ["q1", "q2", "q3", "q2"]
    memo.embed_documents(["d", "d"])
    assert calls[-2:] == ["d", "d"]  # documents always go to the model


def test_the_gap_logs_similarity_leans_on_shared_words_for_chinese_and_on_the_vectors_otherwise(fake_embeddings):
    from kb_assistant.queue.gaps import _Member, similarity

    def member(text):
        vec = np.asarray(fake_embeddings.embed_query(text), dtype=np.float32)
        vec /= np.linalg.norm(vec)
        return _Member(text, vec, frozenset(tokenize(text)), detect_language(text) == "zh")

    en = member("Is there a shuttle bus?")
    assert similarity(en, member("Is there a shuttle bus?")) == pytest.approx(1.0)
    # the same words, other punctuation: unrelated fake vectors, and for English only the vectors count
    assert abs(similarity(en, member("Is there a shuttle bus ?!"))) < 0.3
    zh_a, zh_b = member("公司有班车吗"), member("公司有班车吗？")
    assert zh_a.words == zh_b.words
    cos = float(np.dot(zh_a.vector, zh_b.vector))
    assert similarity(zh_a, zh_b) == pytest.approx(0.4 * cos + 0.6)  # for Chinese the shared words weigh 0.6
    assert similarity(zh_a, zh_b) > 0.45
