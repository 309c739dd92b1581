"""Language helpers in one place: the word lists are data, one CJK range serves detection and tokenizing, Snowball
folds English words for the symmetric comparisons, and the glossary's folding conflates nothing but plurals."""

from __future__ import annotations

import pytest

from kb_assistant.language import (
    CJK,
    EN_STOPWORDS,
    ZH_STOPWORDS,
    detect_language,
    fold_plural,
    is_cjk,
    stem,
    tokenize,
)

pytestmark = pytest.mark.unit


def test_the_stopword_lists_are_read_from_their_data_files_and_leave_tokens():
    assert {"the", "is", "what"} <= EN_STOPWORDS and {"的", "了", "吗"} <= ZH_STOPWORDS
    assert not any(w.startswith("#") for w in EN_STOPWORDS | ZH_STOPWORDS)  # the files' comment lines
    assert tokenize("What is the leave policy?") == ["leave", "policy"]


def test_one_cjk_range_serves_detection_and_tokenizing_extension_a_and_compatibility_ideographs_included():
    for ch in ("公", "\u3400", "\uf900"):
        assert CJK.match(ch) and is_cjk(ch)
    assert detect_language("公司几点上班？") == "zh" and detect_language("When does work start?") == "en"
    assert tokenize("公司几点上班") and all(is_cjk(t) for t in tokenize("公司几点上班"))


@pytest.mark.parametrize(
    ("a", "b"),
    [("holidays", "holiday"), ("working", "work"), ("policies", "policy"), ("women", "woman"), ("doctor's", "doctor")],
)
def test_snowball_folds_the_forms_of_a_word_together(a, b):
    assert stem(a) == stem(b)


def test_short_words_and_acronyms_are_not_cut_and_degrees_fold_only_on_request():
    assert [stem(w) for w in ("aed", "pto", "hr", "a")] == ["aed", "pto", "hr", "a"]
    assert stem("warmer") == "warmer" and stem("warmer", degree=True) == stem("warm") == stem("warmest", degree=True)
    assert stem("公司") == "公司"


def test_the_glossarys_folding_conflates_plurals_and_possessives_only():
    assert [fold_plural(w) for w in ("rooms", "policies", "employee's", "class")] == [
        "room",
        "policy",
        "employee",
        "class",
    ]
    assert fold_plural("business") != fold_plural("busy") and fold_plural("paye") != fold_plural("pay")
