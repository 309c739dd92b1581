"""Access groups in the human queue: only questions asked with the same groups share a ticket (an agent's answer
reaches only those it was written for), agents see each ticket's groups, and a promoted ticket is visible to its
askers' groups unless the agent widens it (real SQLite, Chroma and MiniLM)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ingest.promote import promote
from kb_assistant.assistant import Assistant
from kb_assistant.cli import app
from kb_assistant.schema import Principal
from kb_assistant.settings import Settings

MANAGER, OTHER_MANAGER, OUTSIDER = (
    Principal.of("maria", "managers"),
    Principal.of("max", "managers"),
    Principal.of("otto", "staff"),
)
QUESTION = "Can I bring my dog to the office?"
SECRET_REPLY = "Managers may bring dogs on Fridays; the Kestrel-7 badge opens the side gate."


@pytest.fixture
def hr(tmp_path, embeddings, monkeypatch):
    from ingest.pipeline import ingest_paths

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text("# Leave\n\nEvery employee receives 12 days of paid sick leave per year.\n")
    settings = Settings(data_dir=tmp_path / "data")
    assert ingest_paths(settings, [docs], "hr").ok
    monkeypatch.setenv("KB_DATA_DIR", str(settings.data_dir))
    return Assistant(settings, embeddings=embeddings)


def test_only_questions_of_the_same_groups_share_a_ticket_and_agents_see_the_groups(hr):
    first = hr.ask(QUESTION, kb="hr", session_id="s-maria", principal=MANAGER)
    second = hr.ask(QUESTION, kb="hr", session_id="s-max", principal=OTHER_MANAGER)
    third = hr.ask(QUESTION, kb="hr", session_id="s-otto", principal=OUTSIDER)
    assert first.ticket_id == second.ticket_id != third.ticket_id

    hr.queue.answer(first.ticket_id, SECRET_REPLY, "anna")
    assert [v.answer for v in hr.replies("s-max")] == [SECRET_REPLY]
    assert [v.answer for v in hr.replies("s-otto")] == [None]  # the outsider's ticket is its own, unanswered

    shown = CliRunner().invoke(app, ["queue", "show", first.ticket_id])
    assert "asked by: managers" in shown.stdout
    listed = CliRunner().invoke(app, ["queue", "list", "--status", "all", "--json"])
    assert sorted(t["groups"] for t in json.loads(listed.stdout)) == [["managers"], ["staff"]]
    gaps = CliRunner().invoke(app, ["gaps", "--json"])
    assert sorted(c["groups"] for c in json.loads(gaps.stdout)) == [["managers"], ["staff"]]


def test_a_promoted_ticket_is_visible_to_its_askers_groups_unless_the_agent_widens_it(hr):
    asked = hr.ask(QUESTION, kb="hr", principal=MANAGER)
    hr.queue.answer(asked.ticket_id, SECRET_REPLY, "anna")
    source = promote(hr, asked.ticket_id)
    assert source == "curated-faq/managers/T-000001.csv"

    manager = hr.ask(QUESTION, kb="hr", principal=MANAGER)
    assert manager.answered and "Kestrel-7" in manager.text
    outsider = hr.ask(QUESTION, kb="hr", principal=OUTSIDER)  # the cache holds the manager's answer: not for otto
    assert not outsider.answered and "Kestrel-7" not in outsider.model_dump_json()

    result = CliRunner().invoke(app, ["queue", "promote", asked.ticket_id, "--everyone"])
    assert result.exit_code == 0 and "curated-faq/T-000001.csv" in result.stdout
    hr.index("hr").refresh()
    assert "Kestrel-7" in hr.ask(QUESTION, kb="hr", principal=OUTSIDER).text
