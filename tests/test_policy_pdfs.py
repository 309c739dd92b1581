"""CI gate on real documents: the policy_pdfs set (../shared/datasets/policy_pdfs beside the clone) through
`kb eval`, with our answers, the plain top-1-chunk baseline and the ideal-extract ceiling from one run.

The gates sit at what the code reaches today (eval/README.md, "policy_pdfs"), to be raised as answers improve;
the baseline and the ceiling do not depend on our code, so theirs check the yardstick itself."""

from __future__ import annotations

from pathlib import Path

import pytest

POLICY_PDFS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "policy_pdfs"


@pytest.mark.slow
@pytest.mark.timeout(2400)  # a cold run builds the KB from five PDFs first; no timed assertion here
@pytest.mark.skipif(not POLICY_PDFS.is_dir(), reason=f"{POLICY_PDFS} is absent (CI has ../shared beside the clone)")
def test_policy_pdf_answers_stay_at_the_measured_share_correct_and_wrong_beside_the_baseline_and_the_ceiling(
    tmp_path, embeddings
):
    from eval.command import evaluate
    from kb_assistant.settings import Settings

    result, failed = evaluate(
        Settings(data_dir=tmp_path / "data"),
        POLICY_PDFS,
        out=tmp_path / "report",
        fail_under=["correct=0.37", "baseline_correct=0.26", "ceiling_correct=0.66"],
        fail_over=["wrong=0.46"],
        embeddings=embeddings,
        say=lambda message: None,
    )
    overall = result["presence"]["overall"]
    assert overall["ours"]["scored"] == 611 and result["presence"]["skipped"] == 32
    assert not failed, (failed, overall)
    assert (tmp_path / "report" / "report.html").exists()
