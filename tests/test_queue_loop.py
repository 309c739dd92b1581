"""Closing the loop: question → holding reply → ticket → agent answer → the user sees it → added to the KB →
the same question and its paraphrases answered automatically. Through the API and through `kb`."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from ingest.promote import promote
from kb_assistant.assistant import Assistant
from kb_assistant.cli import app
from kb_assistant.settings import Settings

HANDBOOK = """# Leave

## Sick leave
Every employee receives 12 days of paid sick leave per calendar year.

## Annual leave
Full-time employees receive 10 days of annual leave per year.

# 考勤
公司上班时间为 10:00，下班时间为 19:00。
"""


@pytest.fixture
def hr(tmp_path, embeddings, monkeypatch):
    """A small KB 'hr' of its own (promotion writes into it), and the environment `kb` reads."""
    from ingest.pipeline import ingest_paths

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text(HANDBOOK, encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data")
    assert ingest_paths(settings, [docs], "hr").ok
    monkeypatch.setenv("KB_DATA_DIR", str(settings.data_dir))
    return Assistant(settings, embeddings=embeddings)


def test_an_agents_answer_reaches_the_user_and_once_in_the_kb_answers_the_question_and_paraphrases(hr):
    asked = hr.ask("Can I bring my dog to the office?", kb="hr", session_id="alice")
    assert not asked.answered and asked.ticket_id == "T-000001" and "(ticket #T-000001)" in asked.text
    zh = hr.ask("公司有没有从火车站出发的班车？", kb="hr", session_id="alice")
    assert not zh.answered and zh.ticket_id == "T-000002"

    hr.queue.claim("T-000001", "anna")
    hr.queue.answer("T-000001", "Yes: dogs are welcome on Fridays once registered with reception.", "anna")
    hr.queue.answer("T-000002", "有。每天早上 8:30 有班车从虹桥火车站北广场出发到公司。", "anna")
    replies = {v.id: v for v in hr.replies("alice")}
    assert replies["T-000001"].status == "answered" and replies["T-000001"].answer.startswith("Yes: dogs")
    assert hr.ticket("T-000001", asked.ticket_token).answered_at is not None

    version = hr.index("hr").state()["version"]
    assert promote(hr, "T-000001") == "curated-faq/T-000001.csv"
    promote(hr, "T-000002")
    assert hr.index("hr").state()["version"] == version + 2
    assert hr.queue.get("T-000001").promoted_source == "curated-faq/T-000001.csv"

    for question in ("Can I bring my dog to the office?", "Am I allowed to bring a dog to work?",
                     "公司有没有从火车站出发的班车？", "火车站有班车到公司吗？"):  # fmt: skip
        answer = hr.ask(question, kb="hr", session_id="bob")
        assert answer.answered, (question, answer.confidence)
        assert answer.citations[0].source.startswith("curated-faq/T-00000")
        assert ("dogs are welcome" in answer.text) or ("8:30" in answer.text)
    [dog] = [c for c in hr.index("hr").all_chunks() if c.source == "curated-faq/T-000001.csv"]
    assert dog.kind == "faq" and dog.question == "Can I bring my dog to the office?"
    assert hr.queue.get("T-000001").answered_by == "anna"  # who answered stays with the ticket
    assert (hr.settings.data_dir / "curated" / "hr" / "curated-faq" / "T-000001.csv").is_file()  # an editable file
    # the KB's other answers are untouched, and an unrelated question still goes to a person
    assert "12 days" in hr.ask("How many days of sick leave do I get?", kb="hr").text
    ski = hr.ask("Does the company sponsor an annual ski trip?", kb="hr", session_id="bob")
    assert not ski.answered and ski.ticket_id == "T-000003"
    assert [v.question for v in hr.replies("bob")] == ["Does the company sponsor an annual ski trip?"]


def test_only_an_answered_ticket_can_be_added_to_the_kb(hr):
    from kb_assistant.errors import KBError

    ticket = hr.ask("Is there a company choir I can join?", kb="hr").ticket_id
    with pytest.raises(KBError, match="only an answered ticket"):
        promote(hr, ticket)


def test_the_queue_from_the_command_line(hr, tmp_path):
    run = CliRunner().invoke
    for q in ("Can I bring my dog to the office?", "Is there a company choir I can join?"):
        result = run(app, ["ask", q, "--kb", "hr", "--session", "carol"])
        assert result.exit_code == 0 and "ticket #T-00000" in result.stdout, result.output
    listed = json.loads(run(app, ["queue", "list", "--json", "--kb", "hr"]).stdout)
    assert [t["id"] for t in listed] == ["T-000001", "T-000002"] and listed[0]["passages"]
    assert "low_confidence" in run(app, ["queue", "list"]).stdout

    shown = run(app, ["queue", "show", "T-000001"])
    assert "Can I bring my dog to the office?" in shown.stdout and "passages retrieved" in shown.stdout
    assert "claimed by anna" in run(app, ["queue", "claim", "T-000001", "--agent", "anna"]).stdout
    result = run(app, ["queue", "answer", "T-000001", "--agent", "anna", "--promote"],
                 input="Yes: dogs are welcome on Fridays once registered with reception.\n")  # fmt: skip
    assert result.exit_code == 0 and "curated-faq/T-000001.csv" in result.stdout, result.output
    closed = json.loads(run(app, ["queue", "close", "T-000002", "--note", "Ask the social club.", "--json"]).stdout)
    assert closed["status"] == "closed" and closed["resolution"] == "not_ours"
    assert run(app, ["queue", "close", "T-000002"]).exit_code == 1  # already closed: says so
    assert run(app, ["queue", "show", "T-999"]).exit_code == 1

    replies = json.loads(run(app, ["replies", "carol", "--json"]).stdout)
    assert [(r["status"], r["answer"]) for r in replies] == [
        ("answered", "Yes: dogs are welcome on Fridays once registered with reception."),
        ("closed", "Ask the social club."),
    ]
    again = json.loads(run(app, ["ask", "Am I allowed to bring a dog to work?", "--kb", "hr", "--json"]).stdout)
    assert again["answered"] and again["citations"][0]["source"] == "curated-faq/T-000001.csv"

    fb = run(app, ["feedback", again["id"], "down", "--comment", "Not on Fridays any more", "--session", "carol"])
    assert fb.exit_code == 0 and "ticket T-000003" in fb.stdout

    added = run(app, ["user", "add", "anna", "--role", "agent", "--password-stdin"], input="s3cret-passw0rd\n")
    assert added.exit_code == 0 and hr.queue.check_password("anna", "s3cret-passw0rd")
    assert run(app, ["user", "add", "bob", "--password-stdin"], input="short\n").exit_code == 1
    anna = ("anna", "s3cret-passw0rd")
    assert run(app, ["user", "disable", "anna"]).exit_code == 0 and not hr.queue.check_password(*anna)
    assert "anna  agent  disabled" in run(app, ["user", "list"]).stdout
    assert run(app, ["user", "enable", "anna"]).exit_code == 0 and hr.queue.check_password(*anna)
    assert run(app, ["user", "remove", "zed"]).exit_code == 1  # no such user: the reason, not a traceback

    out = tmp_path / "gaps.csv"
    gaps = run(app, ["gaps", "--kb", "hr", "--since", "1d", "--csv", str(out)])
    assert gaps.exit_code == 0 and "choir" in gaps.stdout
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert {r["question"] for r in rows} >= {"Is there a company choir I can join?"}
    assert run(app, ["gaps", "--since", "yesterday"]).exit_code == 2
