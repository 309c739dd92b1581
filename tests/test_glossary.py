"""The glossary: a concept's synonyms and translations count as one word in keyword search and question coverage."""

from __future__ import annotations

import pytest

HANDBOOK_ZH = """# 员工手册

## 工作时间

公司上班时间为周一至周五 10:00–19:00，中午休息 1.5 小时。

## 陪产假

配偶分娩的，男员工可享受 15 天陪产假。
"""

TRAVEL_EN = """# Travel policy

## Hotels

Hotel costs are reimbursed up to CNY 600 per night in tier-1 cities.

## Flights

Economy class for flights under six hours.
"""

GLOSSARY = "# ours\n上班时间\t工作时间\toffice hours\tworking hours\n配偶\t老婆\t妻子\tspouse\twife\n"


@pytest.fixture
def kb(tmp_path, embeddings):
    """A Chinese handbook and an English travel policy, ingested; returns a function making an assistant."""
    from ingest.pipeline import ingest_paths
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "员工手册.md").write_text(HANDBOOK_ZH, encoding="utf-8")
    (docs / "travel.md").write_text(TRAVEL_EN, encoding="utf-8")
    glossary = tmp_path / "ours.tsv"
    glossary.write_text(GLOSSARY, encoding="utf-8")
    data = tmp_path / "data"
    ingest_paths(Settings(data_dir=data, glossary_builtin=False), [docs], "default")

    def make(files=(glossary,)):
        settings = Settings(data_dir=data, cache_enabled=False, glossary_builtin=False, glossary_files=list(files))
        return Assistant(settings, embeddings=embeddings)

    return make


def test_an_english_question_finds_the_chinese_only_section_through_the_glossary(kb):
    with_glossary = kb().ask("What are the office hours?")
    assert with_glossary.answered, with_glossary
    assert with_glossary.citations[0].source == "员工手册.md"
    assert "10:00–19:00" in with_glossary.text

    without = kb(files=()).ask("What are the office hours?")  # MiniLM cannot match English to Chinese
    assert without.passages[0].source == "travel.md"
    assert not without.answered


def test_a_colloquial_word_is_covered_by_the_handbook_wording(kb):
    with_glossary = kb().ask("老婆生孩子，陪产假有几天？")
    without = kb(files=()).ask("老婆生孩子，陪产假有几天？")
    assert with_glossary.passages[0].section.endswith("陪产假")
    assert with_glossary.confidence > without.confidence  # 老婆 is said as 配偶: the question is better covered
    assert "15 天" in with_glossary.text


@pytest.mark.unit
def test_glossary_terms_match_whole_words_and_plurals():
    from kb_assistant.glossary import Glossary

    g = Glossary([["meeting room", "会议室"], ["leave", "假期"], ["sick leave", "病假"]])
    assert [m.term.text for m in g.matches("How do I book meeting rooms?")] == ["meeting room"]
    assert [m.term.text for m in g.matches("How many days of sick leave?")] == ["sick leave"]  # not also "leave"
    assert g.matches("the meetings are in a roomy hall") == []
    assert "会议室" in g.expansion_tokens("Where are the meeting rooms?")


@pytest.mark.unit
def test_an_english_term_covers_a_passage_only_as_a_phrase():
    from kb_assistant.glossary import Glossary, word_sequence

    (m,) = Glossary([["office hours", "business hours", "上班时间"]]).matches("What are the office hours?")
    said = "Our business hours are 9 to 6."
    scattered = "Business class is allowed on flights over 6 hours."
    assert m.covered_by(said.lower(), word_sequence(said))
    assert not m.covered_by(scattered.lower(), word_sequence(scattered))
    assert m.covered_by("公司上班时间为 10:00–19:00", word_sequence("公司上班时间为 10:00–19:00"))


@pytest.mark.unit
def test_a_kind_of_concept_names_its_broader_concepts_wordings_transitively(tmp_path):
    from kb_assistant.glossary import Glossary

    path = tmp_path / "g.tsv"
    path.write_text("国庆节\tNational Day\n法定节假日\tpublic holiday\n假日\tholiday\n"
                    "National Day > 法定节假日  # a named holiday is governed by the holiday rules\n"
                    "public holiday > 假日\n假日 > 国庆节\n", encoding="utf-8")  # fmt: skip
    g = Glossary.load([path])
    (m,) = g.matches("国庆节加班怎么算？")
    assert {t.text for t in m.broader} == {"法定节假日", "public holiday", "假日", "holiday"}  # the cycle ends
    (m,) = g.matches("Do I work on public holidays?")
    assert {t.text for t in m.broader} == {"假日", "holiday", "国庆节", "national day"}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("年假\tannual leave\n病假\n", "line 2"),
        ("年假\tannual leave\n\n病假 > 假期\n", r"line 3: '病假' is no term of any concept"),
        ("年假\tannual leave\n年假 > \n", "line 2: a link is 'narrower > broader'"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)
def test_a_bad_glossary_file_is_a_clear_error_naming_the_file_and_line(tmp_path, content, message):
    from kb_assistant.glossary import Glossary, GlossaryError

    path = tmp_path / "g.tsv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(GlossaryError, match=message) as err:
        Glossary.load([path])
    assert "g.tsv" in str(err.value)
    with pytest.raises(GlossaryError, match="does not exist"):
        Glossary.load([tmp_path / "missing.tsv"])


@pytest.mark.unit
def test_the_bundled_glossary_loads_and_every_term_belongs_to_one_concept():
    from kb_assistant.glossary import BUILTIN, Glossary

    g = Glossary.load([BUILTIN])
    assert len(g) >= 100
    seen: dict[str, int] = {}
    for n, concept in enumerate(g.concepts):
        for term in concept:
            assert seen.setdefault(term.text, n) == n, f"{term.text!r} is in two concepts of {BUILTIN}"
