"""`kb eval` on the token-presence format (the shape of ../shared/datasets/policy_pdfs): small PDFs built here."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from eval import datasets, metrics
from eval.datasets import DatasetError

PAGES = {
    "Leave_Policy.pdf": [
        "1. Annual leave. Every employee is entitled to 20 working days of paid annual leave per calendar year.",
        "2. Unused leave. Up to 5 days of unused annual leave may be carried over to the next year.",
        "3. Sick leave. Employees receive 10 days of paid sick leave and must provide a medical certificate.",
    ],
    "Security_Policy.pdf": [
        "4. Passwords. Passwords must be at least 12 characters long and changed every 90 days.",
        "5. Devices. Lost laptops must be reported to the IT service desk within 24 hours.",
    ],
}
QUESTIONS = [
    ("How many days of paid annual leave do employees get?", "20 working days.", "['20 working days']",
     "Leave_Policy.pdf"),
    ("How many days of unused leave may be carried over?", "Up to 5 days.", "['5 days', 'carried over']",
     "Leave_Policy.pdf"),
    ("Is a medical certificate needed for sick leave?", "Yes.", "['Yes']", "Leave_Policy.pdf"),
    ("How long must passwords be?", "At least 12 characters.", "['12 characters']", "Security_Policy.pdf"),
    ("Within how many hours must a lost laptop be reported?", "24 hours.", "['24 hours', 'IT service desk']",
     "Security_Policy.pdf"),
]  # fmt: skip


def _pdf(path, lines):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for line in lines:
        pdf.multi_cell(0, 6, line)
        pdf.ln(3)
    pdf.output(str(path))


@pytest.fixture
def policy_folder(tmp_path):
    folder = tmp_path / "policies"
    folder.mkdir()
    for name, lines in PAGES.items():
        _pdf(folder / name, lines)
    for document in PAGES:
        with open(folder / f"token_presence_{document[:-4]}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["question", "answer", "tokens_present", "document"])
            w.writerows(q for q in QUESTIONS if q[3] == document)
    (folder / "LICENSE.txt").write_text("not a document of the knowledge base", encoding="utf-8")
    return folder


@pytest.mark.unit
def test_a_token_presence_folder_asks_every_question_that_keeps_a_token_once_yes_and_no_are_dropped(policy_folder):
    ds = datasets.load(policy_folder)
    assert ds.kind == "token_presence"
    assert len(ds.items) == 4 and ds.skipped == 1  # the Yes-only question is not scored
    assert [p.name for p in ds.documents] == ["Leave_Policy.pdf", "Security_Policy.pdf"]
    assert ds.items[1].tokens == ["5 days", "carried over"] and ds.items[1].expected_sources == ["Leave_Policy.pdf"]
    one = datasets.load(policy_folder / "token_presence_Security_Policy.csv")
    assert [i.document for i in one.items] == ["Security_Policy.pdf"] * 2
    assert len(one.documents) == 2  # one csv is asked of its folder's whole knowledge base


@pytest.mark.unit
def test_a_tokens_present_cell_that_is_not_a_list_literal_names_the_file_and_line(policy_folder):
    bad = policy_folder / "token_presence_Leave_Policy.csv"
    bad.write_text("question,answer,tokens_present,document\nq,a,[unclosed,Leave_Policy.pdf\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"token_presence_Leave_Policy\.csv:2: tokens_present"):
        datasets.load(bad)


@pytest.mark.unit
def test_an_answer_is_correct_with_80_percent_of_its_tokens_in_its_first_600_characters():
    tokens = ["confidentiality", "30 days", "written notice", "employer", "termination"]
    reply = "The ﬁrm's conﬁdentiality clause [1]: 30   days' WRITTEN\nnotice by the Employer."
    assert metrics.token_share(reply, tokens) == pytest.approx(0.8)  # ligatures, case and spacing folded
    assert metrics.presence_verdict(0.8) == "correct"
    assert metrics.presence_verdict(0.6) == "partial"
    assert metrics.presence_verdict(0.4) == "wrong"
    late = "x" * 600 + " confidentiality 30 days written notice employer termination"
    assert metrics.token_share(late, tokens) == 0.0  # past the first 600 characters nothing counts


@pytest.mark.unit
def test_the_ideal_window_is_the_best_600_characters_of_the_document():
    document = "termination " + "filler " * 200 + "notice of 30 days to the employer before termination"
    share, start = metrics.best_window(document, ["30 days", "employer", "termination", "absent"])
    assert share == pytest.approx(0.75)
    assert document[start:].startswith("30 days")


@pytest.mark.unit
def test_the_chance_level_is_the_best_window_of_another_document_than_the_questions_own():
    from types import SimpleNamespace

    from eval.extract_baseline import chance

    texts = {
        "Leave.pdf": "Employees get 20 working days of annual leave.",
        "Security.pdf": "Passwords are changed every 90 days. Report a lost laptop within 24 hours.",
    }
    items = [
        SimpleNamespace(document="Leave.pdf", tokens=["days", "annual leave"]),  # half of it by chance elsewhere
        SimpleNamespace(document="Leave.pdf", tokens=["days"]),  # any document with "days" passes
        SimpleNamespace(document="Security.pdf", tokens=["24 hours"]),  # its own words only: never by chance
    ]
    rows = chance(items, texts)
    assert [(r["share"], r["verdict"]) for r in rows] == [(0.5, "partial"), (1.0, "correct"), (0.0, "wrong")]
    assert rows[1]["source"] == "Security.pdf" and rows[2]["source"] == "Leave.pdf"
    assert chance(items[:2], {"Leave.pdf": texts["Leave.pdf"]}) is None  # one document: no other to compare


def test_kb_eval_on_a_pdf_folder_reports_ours_beside_the_plain_baseline_and_the_ceiling(
    tmp_path, policy_folder, monkeypatch
):
    from kb_assistant.cli import app

    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "report"
    args = ["eval", str(policy_folder), "--out", str(out), "--fail-under", "ceiling_correct=1.0"]
    result = CliRunner().invoke(app, [*args, "--fail-over", "wrong=1.0"])
    assert result.exit_code == 0, result.output
    assert "ideal 600-char extract" in result.output and "plain top-1 chunk" in result.output
    assert "Leave_Policy.pdf (2 questions)" in result.output and "← configured" in result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    overall = report["presence"]["overall"]
    assert overall["ceiling"]["correct"] == 1.0  # every token is in its document
    assert "chance: another document's best window" in result.output
    assert overall["chance"]["correct"] < 1.0 and report["summary"]["chance_correct"] == overall["chance"]["correct"]
    assert overall["ours"]["scored"] == 4 and report["presence"]["skipped"] == 1
    assert sum(overall["ours"][v] for v in ("correct", "partial", "wrong", "refused")) == pytest.approx(1.0)
    assert report["summary"]["correct"] == overall["ours"]["correct"]
    assert len(report["presence"]["curve"]) == 21
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Answers by confidence threshold" in html and "ideal 600-char window" in html

    gated = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "r2"), "--fail-over", "wrong=-0.1"])
    assert gated.exit_code == 1
    assert "fail-over: wrong =" in gated.output and "> -0.1" in gated.output


def test_the_plain_baseline_is_minilm_whatever_embedding_model_is_measured(tmp_path, policy_folder, monkeypatch):
    from kb_assistant.cli import app

    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    reports = {}
    for model in ("", "all-mpnet-base-v2"):  # the second reads the first's cached MiniLM chunk vectors
        monkeypatch.setenv("KB_EMBEDDING_MODEL", model)
        out = tmp_path / f"report-{model or 'minilm'}"
        result = CliRunner().invoke(app, ["eval", str(policy_folder), "--out", str(out)])
        assert result.exit_code == 0, result.output
        reports[model] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    baselines = [[r["baseline"] for r in report["rows"]] for report in reports.values()]
    assert baselines[0] == baselines[1]
    assert reports[""]["settings"]["embedding_model"] != reports["all-mpnet-base-v2"]["settings"]["embedding_model"]
