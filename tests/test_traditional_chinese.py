"""Traditional Chinese is first-class: Traditional and Simplified spellings of one word match each other in keyword
search, the glossary, the cache's keys and the missing-concept check (OpenCC), in both directions."""

from __future__ import annotations

import pytest

from kb_assistant.cache.keys import normalize_question, wording_key
from kb_assistant.glossary import Glossary
from kb_assistant.language import to_simplified, tokenize


@pytest.mark.unit
def test_traditional_and_simplified_spellings_give_the_same_tokens():
    assert to_simplified("公司幾點上班？資訊安全") == "公司几点上班？资讯安全"
    assert to_simplified("Annual leave: 20 days") == "Annual leave: 20 days"  # no Chinese: as it is
    assert tokenize("員工每年享有帶薪病假") == tokenize("员工每年享有带薪病假")


def test_a_traditional_question_about_the_simplified_handbook_gets_the_same_answer(sample_assistant):
    simplified = sample_assistant.ask("公司几点上班？")
    traditional = sample_assistant.ask("公司幾點上班？")
    assert traditional.answered and traditional.language == "zh"
    assert "10:00" in traditional.text and "19:00" in traditional.text
    assert traditional.citations[0].source == simplified.citations[0].source == "员工手册-考勤与工时.md"
    assert traditional.text == simplified.text


def test_a_simplified_question_about_a_traditional_handbook_finds_it_and_the_glossary_knows_its_terms(
    settings, embeddings
):
    from kb_assistant.assistant import Assistant
    from kb_assistant.schema import Chunk
    from kb_assistant.store import KnowledgeBase

    index = KnowledgeBase(settings, "default", embeddings)
    index.add([
        Chunk(id="hours", text="公司上班時間為週一至週五 10:00–19:00，中午休息 1.5 小時。", source="員工手冊.md",
              section="工作時間"),
        Chunk(id="sick", text="員工每年享有 5 天帶薪病假，需提交醫院開具的病假單。", source="員工手冊.md",
              section="病假"),
        Chunk(id="holiday", text="法定節假日加班的，按小時工資的 300% 支付加班費。", source="員工手冊.md",
              section="加班補償"),
    ])  # fmt: skip
    assistant = Assistant(settings.model_copy(update={"cache_enabled": False}), embeddings=embeddings)
    sick = assistant.ask("每年有几天带薪病假？")
    assert sick.answered and "5 天" in sick.text and sick.citations[0].section == "病假"
    # the glossary is written in Simplified: 国庆节 is a 法定节假日 whichever script the question or KB uses
    assert index.missing_concepts("國慶節來公司加班有加班費嗎？") == []
    assert index.missing_concepts("国庆节来公司加班有加班费吗？") == []
    assert index.missing_concepts("公司有上下班班車嗎？") == ["班车"]  # the topic no passage says, in both scripts
    assert index.missing_concepts("公司有上下班班车吗？") == ["班车"]


@pytest.mark.unit
def test_a_glossary_written_in_traditional_matches_simplified_questions_and_back():
    glossary = Glossary([["上班時間", "工作時間", "office hours"]])
    for question in ("上班时间是几点？", "上班時間是幾點？"):
        [match] = glossary.matches(question)
        assert {t.text for t in match.alternatives} == {"工作时间", "office hours"}


@pytest.mark.unit
def test_the_cache_keys_of_traditional_and_simplified_wordings_are_one_question():
    assert normalize_question("公司幾點上班？") == normalize_question("公司几点上班?")
    assert wording_key("請問公司怎麼申請年假？") == wording_key("请问公司怎么申请年假？")
    assert wording_key("公司幾點上班？") != wording_key("公司幾點下班？")  # a different question stays different
