"""The answer confidence (kb_assistant/answer/confidence.py): its features, the fitted model's file, the threshold
that comes with it, and how eval.calibrate chooses that threshold."""

from __future__ import annotations

import json

import pytest

from kb_assistant.schema import Candidate, Chunk

pytestmark = pytest.mark.unit


def passage(cid: str, *, coverage: float, score: float, dense: float = 0.6, keyword: float = 0.5, source="a.pdf"):
    chunk = Chunk(id=cid, text="Probation lasts six months. Notice is one month.", source=source)
    return Candidate(chunk=chunk, dense=dense, keyword=keyword, score=score, coverage=coverage)


def test_a_lead_counts_in_proportion_to_the_kb_size_and_as_typical_where_the_kb_is_too_small_to_tell():
    from kb_assistant.answer.confidence import TYPICAL_LEAD, evidence_features

    ranked = [passage("a", coverage=0.9, score=0.8), passage("b", coverage=0.4, score=0.3)]
    large = evidence_features(ranked, "en", kb_size=5000)
    tiny = evidence_features(ranked, "en", kb_size=1)
    unknown = evidence_features(ranked, "en")
    assert large["margin"] == pytest.approx(0.5) and large["coverage_lead"] == pytest.approx(0.5)
    assert tiny["margin"] == unknown["margin"] == TYPICAL_LEAD
    assert tiny["coverage_lead"] == unknown["coverage_lead"] == TYPICAL_LEAD


def test_features_say_whether_dense_and_keyword_retrieval_agree_and_how_many_passages_rival_the_best():
    from kb_assistant.answer.confidence import evidence_features

    ranked = [
        passage("a", coverage=0.9, score=0.8, dense=0.5, keyword=1.0),
        passage("b", coverage=0.85, score=0.7, dense=0.7, keyword=0.2),
        passage("c", coverage=0.2, score=0.6, dense=0.4, keyword=0.1, source="b.pdf"),
    ]
    f = evidence_features(ranked, "en")
    assert f["keyword_agrees"] == 1.0 and f["dense_agrees"] == 0.0
    assert f["rivals"] == pytest.approx(2 / 3)  # itself and b are within 0.1 of the best coverage
    assert f["same_document"] == pytest.approx(2 / 3)
    assert f["dense_en"] == 0.5 and f["dense_zh"] == 0.0 and f["zh"] == 0.0


def test_the_fitted_confidence_is_a_probability_that_rises_with_coverage_and_falls_with_a_missing_concept():
    from kb_assistant.answer.confidence import answer_confidence

    def confidence(coverage, missing=()):
        ranked = [passage("a", coverage=coverage, score=0.8), passage("b", coverage=0.3, score=0.5)]
        return answer_confidence(ranked, "en", missing, kb_size=500, model="fitted")

    assert 0.0 < confidence(0.2) < confidence(0.9) < 1.0
    assert confidence(0.9, missing=["shuttle bus"]) < confidence(0.9)
    assert answer_confidence([], "en", model="fitted") == 0.0


def test_the_default_threshold_is_the_weighted_confidences_or_the_one_the_fitted_model_was_calibrated_with():
    from kb_assistant.answer.confidence import calibrated_threshold
    from kb_assistant.settings import Settings

    assert Settings().confidence_threshold == 0.25
    assert Settings(confidence_model="fitted").confidence_threshold == calibrated_threshold()
    assert Settings(confidence_model="fitted", confidence_threshold=0.5).confidence_threshold == 0.5


def test_a_damaged_model_file_is_a_clear_error_naming_the_file_and_the_command_that_refits_it(tmp_path, monkeypatch):
    from kb_assistant.answer import confidence

    bad = tmp_path / "confidence_model.json"
    bad.write_text(json.dumps({"parts": {"scope": {"features": ["coverage"], "mean": []}}, "threshold": 0.3}))
    monkeypatch.setattr(confidence, "MODEL_FILE", bad)
    confidence.load_model.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"confidence_model\.json.*python -m eval\.calibrate"):
            confidence.load_model()
    finally:
        confidence.load_model.cache_clear()


def test_calibration_chooses_the_threshold_with_fewest_wrong_policy_answers_that_keeps_the_refusal_gate():
    from eval.calibrate import choose_threshold

    def row(set_name, confidence, *, answerable=True, verdict=None):
        r = {"set": set_name, "confidence": confidence, "answered_any": True, "answerable": answerable}
        return r | ({"verdict": verdict} if verdict else {})

    refusal = [row("golden", c) for c in (0.5, 0.6, 0.7, 0.8)] + [
        row("golden", c, answerable=False) for c in (0.1, 0.2, 0.3, 0.45)
    ]
    policy = [row("policy_pdfs", 0.35, verdict="wrong"), row("policy_pdfs", 0.9, verdict="correct")]
    # every unanswerable refused from 0.46 on, no answerable one until 0.51: 0.46 refuses the wrong 0.35 answer too
    assert choose_threshold(refusal + policy) == 0.46
