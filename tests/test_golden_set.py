"""The golden set (eval/datasets/golden.jsonl) through the same Assistant.ask as the chat."""

from __future__ import annotations

import pytest

from eval import runner
from eval.datasets import load_golden


@pytest.mark.unit
def test_golden_set_is_well_formed_and_covers_both_languages_and_unanswerables():
    items = load_golden().items
    assert len(items) >= 60
    assert sum(i.lang == "zh" for i in items) >= 20
    assert sum(not i.answerable for i in items) >= 15
    assert all(i.expected_sources for i in items if i.answerable)


def test_expected_source_is_in_the_top_5_and_unanswerable_questions_are_handed_over(sample_assistant):
    golden = load_golden()
    rows = runner.run(golden, sample_assistant.settings, kb="default", embeddings=sample_assistant.embeddings)
    summary = runner.summarise(rows, sample_assistant.settings.confidence_threshold)
    misses = [r["question"] for r in rows if r["answerable"] and not r["rank"]]
    assert summary["hit@5"] >= 0.94, misses
    assert summary["mrr"] >= 0.85
    # at the default threshold: measured 0.857 / 0.90 (eval/README.md); the target is 0.9 / 0.9
    threshold = sample_assistant.settings.confidence_threshold
    answered = [r["question"] for r in rows if not r["answerable"] and r["confidence"] >= threshold]
    assert summary["refusal_recall"] >= 0.85, answered
    refused = [r["question"] for r in rows if r["answerable"] and r["confidence"] < threshold]
    assert summary["refusal_precision"] >= 0.8, refused
