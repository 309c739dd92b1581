"""The semantic cache: repeats and paraphrases served fast, near misses and personal questions never, stale never.

Real MiniLM, real Chroma, real SQLite; a tiny KB written per test where documents must change.
"""

from __future__ import annotations

import threading

import pytest

from kb_assistant.cache.guard import near_miss_reason
from kb_assistant.cache.keys import is_personal, normalize_question, wording_key

HOURS_EN = "Office hours are Monday to Friday, {start} to 19:00, with a lunch break from 12:00 to 13:30."
HOURS_ZH = "公司上班时间为周一至周五 {start}，下班时间为 19:00。"
LEAVE = """# Leave policy

## Annual leave

Every employee gets 15 days of paid annual leave per calendar year.

## Carrying over leave

You may carry over up to 5 unused days of annual leave into the next calendar year.

## Sick leave

Every employee receives 12 days of paid sick leave per calendar year.
"""


def write_kb(folder, start="10:00"):
    folder.mkdir(parents=True, exist_ok=True)
    hours = f"# Working hours\n\n## Office hours\n\n{HOURS_EN.format(start=start)}\n\n## 工作时间\n\n"
    (folder / "hours.md").write_text(hours + HOURS_ZH.format(start=start) + "\n", encoding="utf-8")
    (folder / "leave.md").write_text(LEAVE, encoding="utf-8")
    return folder


@pytest.fixture
def kb_assistant(settings, embeddings, tmp_path):
    from ingest.pipeline import ingest_paths
    from kb_assistant.assistant import Assistant

    docs = write_kb(tmp_path / "docs")
    assert ingest_paths(settings, [docs], "default").ok
    assistant = Assistant(settings, embeddings=embeddings)
    assistant.docs = docs
    return assistant


def idf(token: str) -> float:
    return 2.0  # every word equally rare: the guard then works on the words alone


# --- the guard, the key, the personal detector --------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize(
    "a, b, reason",
    [
        ("Can I carry over unused annual leave?", "Can I cash out unused annual leave?", "content words"),
        ("How many days of leave do I get?", "How many days of sick leave do I get?", "content words"),
        ("Is parking free for employees?", "Is parking not free for employees?", "negation"),
        ("Can I expense a taxi after 21:00?", "Can I expense a taxi after 22:00?", "number"),
        ("Is the office open on Saturday?", "Is the office open on Sunday?", "date"),
        ("What is the office address in Shanghai?", "What is the office address in Berlin?", "named entity"),
        ("上班时间", "下班时间", "key word"),
        ("公司几点上班？", "公司几点下班？", "key word"),
        ("年假可以顺延吗", "年假不可以顺延吗", "negation"),
        ("出差补贴每天100元吗", "出差补贴每天200元吗", "number"),
        ("周末要打卡吗", "工作日要打卡吗", "date"),
        ("为什么报销被退回", "报销被退回怎么办", "question kind"),
        ("花呗怎么开通", "借呗怎么开通", "key word"),
    ],
)
def test_near_miss_pairs_are_rejected_with_the_reason(a, b, reason):
    assert near_miss_reason(a, b, idf).startswith(reason)
    assert near_miss_reason(b, a, idf) is not None


@pytest.mark.unit
@pytest.mark.parametrize(
    "a, b",
    [
        ("How many days of annual leave do I get?", "How many annual leave days do I get?"),
        ("What is a novel coronavirus?", "What is the novel coronavirus?"),
        ("Does COVID-19 spread through food?", "Can COVID-19 spread through food?"),
        ("Am I at risk in the United States?", "Am I at risk in the US?"),
        ("公司几点上班？", "公司上班是几点"),
        ("怎么开通借呗", "借呗如何开通"),
        ("What is community spread?", "What does community spread mean?"),
        (
            "What should I do after close contact with a sick colleague?",
            "How should I act after close contact with a sick colleague?",
        ),
        ("How can I protect my child from infection?", "What can I do to protect my child?"),
        ("Will warm weather stop the outbreak?", "Does warmer weather stop the outbreak?"),
        ("Can pregnant women get the vaccine?", "Can a pregnant woman get the vaccine?"),
        ("Is the virus found in feces?", "Can the virus be found in the feces of patients?"),
    ],
)
def test_rewordings_of_the_same_question_pass_the_guard(a, b):
    assert near_miss_reason(a, b, idf) is None


NOVEL = "A novel coronavirus is a new coronavirus that has not been previously identified."
CARRY = "You may carry over up to 5 unused days of annual leave into the next calendar year."


@pytest.mark.unit
@pytest.mark.parametrize(
    "a, b, answer, reason",
    [
        ("What is a new coronavirus?", "What is a novel coronavirus?", "", "content words"),
        ("Can I cash out unused annual leave?", "Can I carry over unused annual leave?", CARRY, "content words"),
        ("Can I donate unused annual leave?", "Can I carry over unused annual leave?", CARRY, "content words"),
        ("How many days of sick leave do I get?", "How many days of leave do I get?", CARRY, "content words"),
        (
            "Is the office open on Sunday?",
            "Is the office open on Saturday?",
            "The office is open on Saturday mornings and closed on Sunday.",
            "date",
        ),
        (
            "What is the office address in Berlin?",
            "What is the office address in Shanghai?",
            "Our Shanghai office is at 1 Century Avenue; the Berlin office is listed on the intranet.",
            "named entity",
        ),
        ("Is parking not free for employees?", "Is parking free for employees?", "Parking is not free.", "negation"),
    ],
)
def test_a_swapped_word_passes_only_when_the_cached_answer_says_it_and_never_for_names_dates_or_negation(
    a, b, answer, reason
):
    assert near_miss_reason(a, b, idf, answer=answer).startswith(reason)


@pytest.mark.unit
@pytest.mark.parametrize(
    "a, b, answer",
    [
        ("What is a new coronavirus?", "What is a novel coronavirus?", NOVEL),
        (
            "Why is the name of the disease coronavirus disease 2019?",
            "Why is the disease being called coronavirus disease 2019?",
            "The name of the disease was announced in February.",
        ),
        ("How many days of paid leave do I get per calendar year?", "How many days of paid leave do I get per year?",
         "Every employee gets 15 days of paid annual leave per calendar year."),
    ],
)  # fmt: skip
def test_a_swapped_word_the_cached_answer_says_passes(a, b, answer):
    assert near_miss_reason(a, b, idf) is not None
    assert near_miss_reason(a, b, idf, answer=answer) is None


@pytest.mark.unit
def test_wordings_of_one_glossary_concept_are_no_conflict():
    from kb_assistant.glossary import load_glossary

    glossary = load_glossary(True, [])
    assert near_miss_reason("How do I request PTO?", "How do I request annual leave?", idf, glossary=glossary) is None
    assert near_miss_reason("How do I request PTO?", "How do I request annual leave?", idf) is not None
    assert near_miss_reason("How do I request sick leave?", "How do I request PTO?", idf, glossary=glossary)
    assert near_miss_reason("How do I request sick leave?", "How do I request annual leave?", idf, glossary=glossary)


@pytest.mark.unit
@pytest.mark.parametrize(
    "a, b",
    [
        ("When is someone infectious?", "How long is someone infectious?"),  # both ask for a time
        ("What about imported animals?", "Are there regulations about importing animals?"),  # not next to 'animals'
        ("Should I be tested for the flu?", "Should I test myself for the flu?"),
    ],
)
def test_frame_words_and_detached_words_are_not_content_swaps(a, b):
    assert near_miss_reason(a, b, idf) is None
    assert near_miss_reason(b, a, idf) is None


@pytest.mark.unit
@pytest.mark.parametrize(
    "a, b",
    [
        ("How many days of paid sick leave do I get per year?", "How many days of paid sick leave can I get per year?"),
        ("How many days of annual leave do I get?", "How many annual leave days do I get?"),
        ("公司几点上班？", "公司上班是几点？"),
        ("怎么开通借呗", "借呗如何开通"),
        ("花呗能用吗", "花呗可以用吗？"),
    ],
)
def test_questions_differing_only_in_function_words_share_the_wording_key(a, b):
    assert wording_key(a) == wording_key(b)


@pytest.mark.unit
@pytest.mark.parametrize(
    "a, b",
    [
        ("上班时间", "下班时间"),
        ("能申请借呗吗", "不能申请借呗吗"),
        ("Can I carry over unused leave?", "Must I carry over unused leave?"),
        ("Why is the office closed?", "When is the office closed?"),
        ("Can I carry over unused annual leave?", "Can I cash out unused annual leave?"),
    ],
)
def test_questions_differing_in_a_meaningful_word_do_not_share_the_wording_key(a, b):
    assert wording_key(a) != wording_key(b)


@pytest.mark.unit
def test_exact_key_ignores_case_width_punctuation_and_spaces():
    assert normalize_question("公司几点上班？") == normalize_question("公司几点上班 ?")
    assert normalize_question("ＡＢＣ　leave？") == normalize_question("abc leave?")
    assert normalize_question("How many days?") == normalize_question("how many  days")


@pytest.mark.unit
@pytest.mark.parametrize(
    "question, personal",
    [
        ("我还剩几天年假？", True),
        ("我的年假还有多少天", True),
        ("我领导不批我的假怎么办", True),
        ("What's my leave balance?", True),
        ("My manager rejected my expense claim", True),
        ("How many days do I have left?", True),
        ("Am I eligible for the bonus?", True),
        ("公司几点上班？", False),
        ("年假有多少天？", False),
        ("How many days of annual leave do I get?", False),
        ("Can I carry over unused leave?", False),
        ("What should I do if I am sick on a business trip?", False),
        ("What if I'm late for my shift?", True),
        ("Do I have to wear a badge in the office?", False),
        ("How can I protect myself from phishing?", False),
        ("I was sick last week, can I still claim the bonus?", True),
    ],
)
def test_personal_question_detector(question, personal):
    assert is_personal(question) is personal


# --- the cache in the pipeline ------------------------------------------------------------------------------------
def test_repeat_and_paraphrase_are_served_from_the_cache(kb_assistant):
    kb_assistant.settings.cache_threshold_en = 0.70  # the embedding layer, off by default, switched on
    first = kb_assistant.ask("How many days of paid sick leave do I get per year?")
    assert first.answered and not first.cached and "12" in first.text
    repeat = kb_assistant.ask("how many days of paid sick leave do i get per year")
    reworded = kb_assistant.ask("How many days of paid sick leave can I get per year?")
    paraphrase = kb_assistant.ask("What is the number of paid sick leave days per year?")
    for answer in (repeat, reworded, paraphrase):
        assert answer.cached and answer.answered
        assert answer.text == first.text and answer.citations == first.citations
        assert answer.id != first.id
        assert "cache" in answer.timings_ms
    assert "retrieve" not in repeat.timings_ms  # an exact repeat needs no evidence
    assert "retrieve" in reworded.timings_ms and "retrieve" in paraphrase.timings_ms  # a paraphrase is checked
    zh = kb_assistant.ask("公司几点上班？")
    assert not zh.cached and "10:00" in zh.text
    assert kb_assistant.ask("公司几点上班").cached
    assert kb_assistant.ask("公司上班是几点？").cached
    stats = kb_assistant.cache.stats("default")
    assert (stats.exact_hits, stats.wording_hits, stats.semantic_hits, stats.entries) == (2, 2, 1, 2)
    assert stats.time_saved_s > 0


class CountingEmbeddings:
    """The real model, counting the questions it embeds."""

    def __init__(self, inner):
        self.inner, self.queries = inner, []

    def embed_query(self, text):
        self.queries.append(text)
        return self.inner.embed_query(text)

    def embed_documents(self, texts):
        return self.inner.embed_documents(texts)


def test_a_rewording_in_other_function_words_is_served_with_one_embedding_for_its_evidence(
    settings, embeddings, kb_assistant
):
    from kb_assistant.assistant import Assistant

    counting = CountingEmbeddings(embeddings)
    assistant = Assistant(settings, embeddings=counting)
    first = assistant.ask("How many days of annual leave do I get?")
    assert first.answered and not first.cached
    counting.queries.clear()
    answer = assistant.ask("How many annual leave days do I get?")
    assert answer.cached and answer.text == first.text
    assert counting.queries == ["How many annual leave days do I get?"]  # the retrieval of the evidence check


def test_chinese_is_served_only_for_repeats_and_rewordings_by_default(settings, embeddings, kb_assistant):
    from kb_assistant.assistant import Assistant

    counting = CountingEmbeddings(embeddings)
    assistant = Assistant(settings, embeddings=counting)
    first = assistant.ask("公司几点上班？")
    assert first.answered and not first.cached
    assert counting.queries == ["公司几点上班？"]  # one embedding per miss: the cache hands it on to retrieval
    assert assistant.ask("公司上班是几点").cached  # 是 and the word order do not matter
    # MiniLM scores any two such Chinese questions as near duplicates: without a similarity that can tell them
    # apart, the cache answers afresh
    for question in ("公司一般几点开始上班？", "公司几点下班？"):
        answer = assistant.ask(question)
        assert not answer.cached and answer.answered
    # one embedding per question: a rewording's is its evidence check's retrieval
    assert counting.queries == ["公司几点上班？", "公司上班是几点", "公司一般几点开始上班？", "公司几点下班？"]


def counting_retrievals(monkeypatch) -> list[str]:
    import kb_assistant.evidence as evidence_module

    runs, real = [], evidence_module.hybrid_search

    def counting(index, question, **kwargs):
        runs.append(question.standalone)
        return real(index, question, **kwargs)

    monkeypatch.setattr(evidence_module, "hybrid_search", counting)
    return runs


def cite_other_chunk(assistant, question: str, other: str):
    """Re-store ``question``'s cached answer as if it had cited the passage ``other`` tops (a wrong entry)."""
    from kb_assistant.language import detect_language

    right = assistant.ask(question)
    wrong_passage = assistant.ask(other).citations[0]
    wrong = right.model_copy(update={"citations": [wrong_passage], "passages": [wrong_passage]})
    index = assistant.index("default")
    assistant.cache.clear()
    assert assistant.cache.store(index, question, detect_language(question), wrong)
    return right


def test_a_paraphrase_is_served_only_when_its_own_top_passage_is_one_the_cached_answer_cited(kb_assistant, monkeypatch):
    kb_assistant.settings.cache_threshold_en = 0.70  # the embedding layer, off by default, switched on
    right = cite_other_chunk(
        kb_assistant, "How many days of paid sick leave do I get per year?", "What are the office hours?"
    )
    runs = counting_retrievals(monkeypatch)
    answer = kb_assistant.ask("What is the number of paid sick leave days per year?")
    assert not answer.cached and answer.answered and "12 days" in answer.text
    assert answer.citations[0].chunk_id == right.citations[0].chunk_id
    assert len(runs) == 1, "the retrieval of the check answers the question: one retrieval"
    assert kb_assistant.cache.stats().evidence_disagreed == 1
    # the fresh answer was stored; a rewording of it is backed by its own retrieval
    reworded = kb_assistant.ask("How many paid sick leave days are there per year?")
    assert reworded.cached and reworded.citations[0].chunk_id == right.citations[0].chunk_id
    assert kb_assistant.ask("How many days of paid sick leave do I get per year?").cached  # exact: no check


def test_a_paraphrase_is_not_served_when_its_retrieval_is_below_the_answer_threshold(kb_assistant):
    settings, paraphrase = kb_assistant.settings, "What is the number of paid sick leave days per year?"
    settings.cache_threshold_en = 0.70  # the embedding layer, off by default, switched on
    settings.cache_enabled = False
    uncached = kb_assistant.ask(paraphrase)
    assert uncached.confidence < 1.0
    settings.cache_enabled = True
    first = kb_assistant.ask("How many days of paid sick leave do I get per year?")
    assert first.answered and not first.cached
    settings.confidence_threshold = uncached.confidence + 1e-3  # the paraphrase's own retrieval falls short
    answer = kb_assistant.ask(paraphrase)
    assert not answer.cached and not answer.answered
    assert kb_assistant.ask("How many days of paid sick leave do I get per year?").cached


def test_a_lookup_without_an_evidence_check_serves_exact_repeats_only(kb_assistant):
    first = kb_assistant.ask("How many days of paid sick leave do I get per year?")
    index = kb_assistant.index("default")
    assert kb_assistant.cache.lookup(index, "How many days of paid sick leave do I get per year?", "en").answer
    for paraphrase in ("How many days of paid sick leave can I get per year?",
                       "What is the number of paid sick leave days per year?"):  # fmt: skip
        found = kb_assistant.cache.lookup(index, paraphrase, "en", wait=False)
        assert found.answer is None and first.answered


def test_near_miss_questions_get_their_own_answer(kb_assistant):
    kb_assistant.settings.cache_threshold_en = 0.70  # the embedding layer, off by default, switched on
    carry = kb_assistant.ask("Can I carry over unused annual leave?")
    assert carry.answered and "carry over" in carry.text
    cash = kb_assistant.ask("Can I cash out unused annual leave?")
    assert not cash.cached
    assert not kb_assistant.ask("How many days of annual leave do I get?").cached
    assert not kb_assistant.ask("公司几点下班？").cached
    assert kb_assistant.cache.stats().near_misses_rejected >= 1


def test_a_question_that_asks_something_more_or_else_is_not_served_the_cached_answer(kb_assistant, monkeypatch):
    from kb_assistant.cache.semantic import SemanticCache

    kb_assistant.settings.cache_threshold_en = 0.70  # the embedding layer, off by default, switched on
    first = kb_assistant.ask("How many days of paid sick leave do I get per year?")
    assert first.answered and not first.cached
    rejected, real = [], SemanticCache.lookup

    def lookup(self, *args, **kwargs):
        found = real(self, *args, **kwargs)
        rejected.extend(reason for _, reason in found.rejected)
        return found

    monkeypatch.setattr(SemanticCache, "lookup", lookup)
    assert not kb_assistant.ask("How many days of paid sick leave do I get per year, and who approves them?").cached
    assert not kb_assistant.ask("Can I get paid sick leave every year?").cached  # a yes-no question, not how many
    assert any(r.startswith("asks amount+who / amount") for r in rejected), rejected
    assert any(r.startswith("asks yes-no / amount") for r in rejected), rejected
    assert kb_assistant.ask("How many days of paid sick leave can I get per year?").cached  # asks the same


def test_a_question_adding_a_content_word_is_not_served_even_when_the_cached_answer_says_it(kb_assistant):
    # The added word has no counterpart in the cached question: "per calendar year" may narrow what is asked, and an
    # answer's passage says many words other questions ask about (eval/README.md, "what the questions ask").
    kb_assistant.settings.cache_threshold_en = 0.70  # the embedding layer, off by default, switched on
    first = kb_assistant.ask("How many days of paid sick leave do I get per year?")
    assert first.answered and "calendar year" in first.text
    assert not kb_assistant.ask("How many days of paid sick leave do I get per calendar year?").cached
    assert not kb_assistant.ask("How many days of paid sick leave do I get per fiscal year?").cached
    assert kb_assistant.cache.stats().near_misses_rejected >= 2


def test_personal_questions_are_never_cached(kb_assistant):
    for _ in range(2):
        answer = kb_assistant.ask("How many days of annual leave do I have left?")
        assert not answer.cached
    assert kb_assistant.ask("我还剩几天年假？").cached is False
    stats = kb_assistant.cache.stats()
    assert stats.entries == 0 and stats.personal_skipped == 3


def test_unanswered_questions_are_not_cached(kb_assistant):
    for _ in range(2):
        answer = kb_assistant.ask("What will the weather be like in Paris tomorrow?")
        assert not answer.answered and not answer.cached
    assert kb_assistant.cache.stats().entries == 0


def test_follow_up_is_looked_up_by_its_standalone_question(kb_assistant):
    first = kb_assistant.ask("公司几点上班？")
    history = [{"role": "user", "content": "公司几点上班？"}, {"role": "assistant", "content": first.text}]
    follow_up = kb_assistant.ask("那周末呢？", history=history)
    assert follow_up.standalone_question != "那周末呢？"
    assert not follow_up.cached


def test_thumbs_down_evicts_the_entry_and_the_answer_is_not_cached_again(kb_assistant):
    kb_assistant.ask("How many days of paid annual leave do I get?")
    served = kb_assistant.ask("How many days of paid annual leave do I get?")
    assert served.cached
    assert kb_assistant.cache.evict(served.id) is True
    again = kb_assistant.ask("How many days of paid annual leave do I get?")
    assert not again.cached and again.answered
    assert not kb_assistant.ask("How many days of paid annual leave do I get?").cached  # 👎'd answer not re-stored
    stats = kb_assistant.cache.stats()
    assert stats.evicted_feedback == 1 and stats.entries == 0
    assert kb_assistant.cache.evict("no-such-answer") is False


def test_thumbs_down_on_a_served_answer_drops_its_entry_until_its_sources_change(kb_assistant):
    from ingest.pipeline import ingest_paths

    question = "What are the office hours?"
    assert "10:00" in kb_assistant.ask(question).text
    served = kb_assistant.ask(question, user="alice")
    assert served.cached
    feedback = kb_assistant.feedback(served.id, "down", "these are not our hours")  # what the chat's 👎 calls
    assert feedback.rating == "down"
    assert kb_assistant.cache.stats().entries == 0
    for _ in range(2):  # answered afresh, and the 👎'd answer is not stored again
        again = kb_assistant.ask(question)
        assert again.answered and not again.cached and "10:00" in again.text
    assert kb_assistant.cache.stats().entries == 0

    write_kb(kb_assistant.docs, start="9:30")  # its source changes: the new answer may be cached again
    assert ingest_paths(kb_assistant.settings, [kb_assistant.docs], "default").ok
    fresh = kb_assistant.ask(question)
    assert "9:30" in fresh.text and not fresh.cached
    assert kb_assistant.ask(question).cached


def test_cache_list_shows_each_entry_its_sources_and_who_received_it_and_drop_removes_one(kb_assistant, monkeypatch):
    from typer.testing import CliRunner

    from kb_assistant.cli import app

    kb_assistant.ask("What are the office hours?")
    served = kb_assistant.ask("What are the office hours?", user="alice", session_id="s-1")
    kb_assistant.ask("How many days of paid sick leave do I get per year?")
    entries = kb_assistant.cache.entries("default")
    hours = next(e for e in entries if e.question == "What are the office hours?")
    assert hours.hits == 1 and hours.served == [served.id]
    assert hours.sources == ["hours.md › Working hours > Office hours"]
    monkeypatch.setenv("KB_DATA_DIR", str(kb_assistant.settings.data_dir))
    runner = CliRunner()
    out = runner.invoke(app, ["cache", "list", "--kb", "default"])
    assert out.exit_code == 0, out.output
    assert f"#{hours.id} [default, en, answer] 1 hits: What are the office hours?" in out.output
    assert "cites: hours.md › Working hours > Office hours" in out.output
    assert f"{served.id} (user alice, session s-1)" in out.output
    out = runner.invoke(app, ["cache", "drop", str(hours.id)])
    assert out.exit_code == 0 and f"dropped cached answer #{hours.id}" in out.output
    assert [e.question for e in kb_assistant.cache.entries()] == ["How many days of paid sick leave do I get per year?"]
    assert not kb_assistant.ask("What are the office hours?").cached
    out = runner.invoke(app, ["cache", "drop", "9999"])
    assert out.exit_code == 2 and "no cached answer #9999" in out.output


def test_changing_the_hours_document_invalidates_exactly_its_entries(kb_assistant):
    from ingest.pipeline import ingest_paths

    assert "10:00" in kb_assistant.ask("What are the office hours?").text
    assert "15 days" in kb_assistant.ask("How many days of paid annual leave do I get?").text
    assert kb_assistant.ask("What are the office hours?").cached

    write_kb(kb_assistant.docs, start="9:30")
    assert ingest_paths(kb_assistant.settings, [kb_assistant.docs], "default").ok  # re-sync: only hours.md changed

    hours = kb_assistant.ask("What are the office hours?")
    assert not hours.cached and "9:30" in hours.text and "10:00" not in hours.text
    leave = kb_assistant.ask("How many days of paid annual leave do I get?")
    assert leave.cached, "an entry whose chunks did not change stays"
    assert kb_assistant.cache.stats().invalidations == 1


def test_entries_persist_across_a_new_assistant(kb_assistant, embeddings):
    from kb_assistant.assistant import Assistant

    kb_assistant.ask("How many days of paid sick leave do I get per year?")
    fresh = Assistant(kb_assistant.settings, embeddings=embeddings)
    assert fresh.ask("How many days of paid sick leave do I get per year?").cached


def test_ttl_and_size_limit(kb_assistant):
    settings = kb_assistant.settings
    settings.cache_max_entries = 2
    for q in ("What are the office hours?", "How many days of paid sick leave do I get?", "公司几点上班？"):
        kb_assistant.ask(q)
    stats = kb_assistant.cache.stats()
    assert stats.entries == 2 and stats.evicted_lru == 1
    assert not kb_assistant.ask("What are the office hours?").cached  # the least recently used went first
    settings.cache_ttl_s = 1e-9
    assert not kb_assistant.ask("公司几点上班？").cached
    assert kb_assistant.cache.stats().expired >= 1


def test_a_hundred_concurrent_identical_questions_cost_one_full_answer(kb_assistant, monkeypatch):
    import kb_assistant.evidence as evidence_module

    runs, real = [], evidence_module.hybrid_search

    def counting(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(evidence_module, "hybrid_search", counting)
    answers, start = [], threading.Barrier(100)

    def ask():
        start.wait()
        answers.append(kb_assistant.ask("How many days of paid sick leave do I get per year?"))

    threads = [threading.Thread(target=ask) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(answers) == 100 and len(runs) == 1
    assert sum(a.cached for a in answers) == 99
    assert len({a.text for a in answers}) == 1


def test_cache_can_be_switched_off(kb_assistant):
    kb_assistant.settings.cache_enabled = False
    kb_assistant.ask("What are the office hours?")
    assert not kb_assistant.ask("What are the office hours?").cached


def test_cache_stats_and_clear_on_the_command_line(kb_assistant, monkeypatch):
    from typer.testing import CliRunner

    from kb_assistant.cli import app

    kb_assistant.ask("What are the office hours?")
    kb_assistant.ask("What are the office hours?")
    monkeypatch.setenv("KB_DATA_DIR", str(kb_assistant.settings.data_dir))
    runner = CliRunner()
    out = runner.invoke(app, ["cache", "stats", "--kb", "default"])
    assert out.exit_code == 0 and "1 entries" in out.output and "1 hits" in out.output
    out = runner.invoke(app, ["cache", "clear", "--kb", "default"])
    assert out.exit_code == 0 and "cleared 1" in out.output
    assert kb_assistant.cache.stats().entries == 0


@pytest.mark.unit
def test_the_english_threshold_defaults_to_the_one_measured_for_the_embedding_model(monkeypatch):
    from kb_assistant.cache.semantic import similarity_threshold
    from kb_assistant.settings import Settings

    assert similarity_threshold(Settings(), "en") == 1.0  # MiniLM: no embedding layer unless asked for
    assert similarity_threshold(Settings(embedding_model="all-mpnet-base-v2"), "en") == 1.0
    assert similarity_threshold(Settings(embedding_model="all-mpnet-base-v2", cache_threshold_en=0.75), "en") == 0.75
    monkeypatch.setenv("KB_CACHE_THRESHOLD_EN", "0.9")
    assert similarity_threshold(Settings(embedding_model="all-mpnet-base-v2"), "en") == 0.9
    assert similarity_threshold(Settings(embedding_model="all-mpnet-base-v2"), "zh") == 1.0


def test_kb_eval_cache_compare_scores_the_questions_in_order_with_the_cache_on_beside_it_off(tmp_path, monkeypatch):
    import csv
    import json

    from fpdf import FPDF
    from typer.testing import CliRunner

    from kb_assistant.cli import app

    folder = tmp_path / "policies"
    folder.mkdir()
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for line in LEAVE.replace("#", "").split("\n\n"):
        pdf.multi_cell(0, 6, line.strip())
        pdf.ln(3)
    pdf.output(str(folder / "Leave.pdf"))
    questions = [  # a repeat and a rewording among distinct questions about one document
        ("How many days of paid sick leave do employees receive per calendar year?", "['12 days']"),
        ("How many days of annual leave may be carried over?", "['5']"),
        ("How many days of paid sick leave do employees receive per calendar year?", "['12 days']"),
        ("How many days of paid annual leave does every employee get per calendar year?", "['15 days']"),
    ]
    with open(folder / "token_presence_Leave.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer", "tokens_present", "document"])
        w.writerows((q, "", tokens, "Leave.pdf") for q, tokens in questions)
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval", str(folder), "--out", str(out), "--cache-compare"])
    assert result.exit_code == 0, result.output
    assert "semantic cache on vs off" in result.output
    compared = json.loads((out / "report.json").read_text(encoding="utf-8"))["cache_compare"]
    off, first, again = compared["cache off"], compared["cache on, first pass"], compared["cache on, asked again"]
    assert first["hits"] >= 1  # the repeat
    assert again["hits"] == 4  # every question asked again
    assert first["worse"] == again["worse"] == 0
    assert first["correct"] == again["correct"] == off["correct"] > 0


def test_the_pair_evaluation_counts_a_paraphrase_hit_only_where_its_evidence_agrees(embeddings):
    from eval.cache_eval import Evidence, Pair, evaluate_pairs

    cached = "How many days of paid sick leave do I get per year?"
    paraphrase = "How many days of paid sick leave are there per year?"
    elsewhere = "How many paid sick leave days are there per year?"  # asks the same, but tops another passage
    pairs = [Pair(cached, paraphrase, True), Pair(cached, elsewhere, False)]
    evidence = {
        cached: Evidence(frozenset({"sick"}), "sick", 0.9, "Every employee receives 12 days of paid sick leave."),
        paraphrase: Evidence(frozenset({"sick"}), "sick", 0.9),
        elsewhere: Evidence(frozenset({"interns"}), "interns", 0.9),
    }
    rows, details = evaluate_pairs(pairs, embeddings, idf, thresholds=[0.6], evidence=evidence)
    assert (rows[0].hits, rows[0].wrong, rows[0].hit_rate) == (1, 0, 1.0)
    low = {**evidence, paraphrase: Evidence(frozenset({"sick"}), "sick", 0.1)}  # below the answer threshold
    rows, _ = evaluate_pairs(pairs, embeddings, idf, thresholds=[0.6], evidence=low, confidence_threshold=0.25)
    assert rows[0].hits == 0


FAQ = "\n".join(
    [
        "question,answer",
        "How do I reset the VPN password?,Open the self-service portal at https://id.example.internal and choose "
        "Reset VPN password; the new password works within five minutes.",
        'How do I change the email password?,"In Outlook on the web, open Settings, then Security, then Change '
        'password."',
        "Can I bring a guest to the office?,Guests are welcome on weekdays when you register them at reception the "
        "day before.",
        "How do I book a meeting room?,Meeting rooms are booked in the Rooms calendar; a booking longer than four "
        "hours needs the office manager's approval.",
        "",
    ]
)


def test_a_paraphrase_of_an_faq_question_is_served_when_its_own_top_passage_is_that_entry(
    settings, embeddings, tmp_path
):
    from ingest.pipeline import ingest_paths
    from kb_assistant.assistant import Assistant

    (tmp_path / "faq").mkdir()
    (tmp_path / "faq" / "it-faq.csv").write_text(FAQ, encoding="utf-8")
    write_kb(tmp_path / "docs")
    assert ingest_paths(settings, [tmp_path / "faq", tmp_path / "docs"], "default").ok
    assistant = Assistant(settings, embeddings=embeddings)  # default thresholds: 1.0, and 0.65 for FAQ answers
    first = assistant.ask("How do I reset the VPN password?")
    assert first.answered and not first.cached and "self-service portal" in first.text
    paraphrase = assistant.ask("What is the way to reset a VPN password?")
    assert paraphrase.cached and paraphrase.text == first.text
    assert "retrieve" in paraphrase.timings_ms  # served on the evidence of its own retrieval
    # its own top passage is another entry: never the VPN answer
    other = assistant.ask("How can I reset the email password?")
    assert not other.cached and "Outlook" in other.text
    # a document passage answers many questions: its paraphrases keep the general threshold (off by default)
    sick = assistant.ask("How many days of paid sick leave do I get per year?")
    assert sick.answered and not sick.cached and "12" in sick.text
    assert not assistant.ask("What is the number of paid sick leave days per year?").cached
    # and switched off, an FAQ answer is served to exact repeats and rewordings only
    assistant.settings.cache_threshold_faq_en = 1.0
    assert not assistant.ask("What are the steps to reset a VPN password?").cached
