"""The golden set (eval/datasets/golden.jsonl) through the same Assistant.ask as the chat."""

from __future__ import annotations

from eval.golden import DATASETS, evaluate_golden, load_golden


def test_golden_set_is_well_formed_and_covers_both_languages_and_unanswerables():
    items = load_golden(DATASETS / "golden.jsonl")
    assert len(items) >= 60
    assert sum(i.lang == "zh" for i in items) >= 20
    assert sum(not i.answerable for i in items) >= 15
    assert all(i.expected_sources for i in items if i.answerable)


def test_expected_source_is_in_the_top_5_for_at_least_90_percent_of_answerable_questions(sample_assistant):
    report = evaluate_golden(sample_assistant, load_golden(DATASETS / "golden.jsonl"))
    misses = [r["item"].question for r in report["rows"] if r["item"].answerable and not r["rank"]]
    assert report["hit@5"] >= 0.90, misses
