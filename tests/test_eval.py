"""`kb eval`: dataset formats, metrics, reports, compare and fail-under gates, on small real datasets."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from eval import datasets, metrics, runner
from eval.datasets import DatasetError, EvalItem
from kb_assistant.schema import Answer, Citation


@pytest.fixture
def faq_files(tmp_path):
    faq = tmp_path / "faq.csv"
    with open(faq, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer", "link"])
        w.writerow(["How do I reset my password?", "Open the IT portal and choose Reset password.", "x"])
        w.writerow(["When is payday?", "Salaries are paid on the 10th of every month.", "y"])
        w.writerow(["Where can I park my car?", "Parking spaces are in basement B2 and cost 300 CNY a month.", "z"])
    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["question_1", "question_2", "similar"])
        w.writerow(["How do I reset my password?", "I forgot my password, how can I change it?", "1"])
        w.writerow(["When is payday?", "On which day do we get our salary?", "1"])
        w.writerow(["When is payday?", "How much is my salary?", "0"])
        w.writerow(["Not in the FAQ?", "Something else", "1"])
    return faq, pairs


@pytest.fixture
def squad_file(tmp_path):
    data = {
        "data": [
            {
                "title": "考勤",
                "paragraphs": [
                    {
                        "context": "公司实行弹性工作制，上班时间为周一至周五10:00至19:00，中午休息1.5小时。",
                        "qas": [{"id": "q1", "question": "公司几点上班？", "answers": [{"text": "10:00至19:00"}]}],
                    },
                    {
                        "context": "员工每年享有5天带薪病假，需提交医院开具的病假单。",
                        "qas": [{"id": "q2", "question": "每年有几天带薪病假？", "answers": [{"text": "5天"}]}],
                    },
                ],
            }
        ]
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.unit
def test_faq_pairs_become_one_question_per_paraphrase_of_a_known_faq_question(faq_files):
    faq, pairs = faq_files
    ds = datasets.load(faq, paraphrases=pairs)
    assert ds.kind == "faq"
    assert [i.question for i in ds.items] == [
        "I forgot my password, how can I change it?",
        "On which day do we get our salary?",
    ]  # similar=0 rows and questions the FAQ does not hold are left out


@pytest.mark.unit
def test_bad_dataset_files_get_errors_that_name_the_file(tmp_path, faq_files):
    faq, _ = faq_files
    with pytest.raises(DatasetError, match="--paraphrases"):
        datasets.load(faq)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "x", "answerable": true}\nnot json\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"broken\.jsonl:2"):
        datasets.load(broken)
    bad_pairs = tmp_path / "pairs.csv"
    bad_pairs.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="question_1"):
        datasets.load(faq, paraphrases=bad_pairs)
    with pytest.raises(DatasetError, match="no such dataset"):
        datasets.load(tmp_path / "missing.json")


@pytest.mark.unit
def test_token_f1_and_keyword_presence():
    assert metrics.token_f1("Salaries are paid on the 10th", "paid on the 10th") > 0.7
    assert metrics.token_f1("nothing alike", "paid on the 10th") == 0.0
    assert metrics.token_f1("上班时间为10:00至19:00", "10:00至19:00") > 0.6
    assert metrics.keyword_present("周一至周五 10:00–19:00。[1]", "10:00–19:00")
    assert not metrics.keyword_present("周一至周五", "10:00–19:00")


@pytest.mark.unit
def test_faithfulness_counts_cited_sentences_supported_by_their_passage():
    passage = Citation(
        n=1, source="h.md", chunk_id="c", snippet="Salaries are paid on the 10th of every month.", score=1
    )
    good = Answer(
        question="q", text="Salaries are paid on the 10th. [1]", answered=True, confidence=1, passages=[passage]
    )
    bad = Answer(question="q", text="You get a bonus of 3 months in December. [1]", answered=True, confidence=1,
                 passages=[passage])  # fmt: skip
    assert metrics.faithfulness(good) == (1, 1)
    assert metrics.faithfulness(bad) == (0, 1)


@pytest.mark.unit
def test_refusal_precision_and_recall_and_the_calibrated_threshold():
    rows = [{"answerable": True, "answered_any": True, "confidence": c} for c in (0.9, 0.8, 0.6, 0.35)] + [
        {"answerable": False, "answered_any": True, "confidence": c} for c in (0.1, 0.2, 0.4)
    ]
    assert metrics.refusal_pr(rows, 0.3) == (1.0, round(2 / 3, 4))
    assert metrics.refusal_pr(rows, 0.5) == (0.75, 1.0)
    chosen = runner.calibrate(rows)["chosen"]
    assert 0.4 < chosen["threshold"] <= 0.6 and chosen["recall"] == 1.0


@pytest.mark.unit
def test_item_matches_by_source_faq_question_or_answer_text():
    p = Citation(
        n=1, source="docs/leave-policy.md", section="When is payday?", chunk_id="c", snippet="paid on the 10th", score=1
    )
    assert EvalItem("q", expected_sources=["leave-policy.md"]).is_right(p)
    assert EvalItem("q", expected_questions=["when is payday"]).is_right(p)
    assert EvalItem("q", expected_answer="the 10th").is_right(p)
    assert not EvalItem("q", expected_sources=["other.md"]).is_right(p)


def test_kb_eval_on_an_faq_set_writes_json_and_html_with_the_stage_ablation(tmp_path, faq_files, monkeypatch):
    from kb_assistant.cli import app

    faq, pairs = faq_files
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval", str(faq), "--paraphrases", str(pairs), "--ablate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for column in ("dense", "bm25", "fusion", "full"):
        assert column in result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["summary"]["hit@5"] == 1.0  # three FAQ entries: the right one is always in the top 5
    assert set(report["ablations"]) == {"dense", "bm25", "fusion", "full"}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64" in html and "Latency per stage" in html


def test_kb_eval_fail_under_exits_1_and_compare_shows_deltas(tmp_path, squad_file, monkeypatch):
    from kb_assistant.cli import app

    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "r1"
    ok = CliRunner().invoke(app, ["eval", str(squad_file), "--out", str(out), "--fail-under", "hit@1=0.9"])
    assert ok.exit_code == 0, ok.output
    gated = CliRunner().invoke(
        app, ["eval", str(squad_file), "--out", str(tmp_path / "r2"), "--compare", str(out / "report.json"),
              "--fail-under", "mrr=1.01"],
    )  # fmt: skip
    assert gated.exit_code == 1
    assert "Δ vs old" in gated.output and "mrr = 1.0 < 1.01" in gated.output


def test_kb_eval_cache_pairs_prints_the_threshold_table_and_the_rejected_near_misses(tmp_path, monkeypatch):
    from kb_assistant.cli import app

    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "question_1,question_2,label\n"
        "How many days of annual leave do I get?,How many annual leave days do I get?,1\n"
        "Can I carry over unused annual leave?,Can I cash out unused annual leave?,0\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["eval", "--cache-pairs", f"{pairs}:en"])
    assert result.exit_code == 0, result.output
    assert "<- default" in result.output
    assert "Can I cash out unused annual leave?" in result.output.split("rejected near-miss pairs")[1]
    bad = CliRunner().invoke(app, ["eval", "--cache-pairs", f"{pairs}:fr"])
    assert bad.exit_code == 2 and "LANG en or zh" in bad.output
