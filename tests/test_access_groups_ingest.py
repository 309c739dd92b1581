"""Access groups at ingest: `kb ingest PATH --groups` limits a source, `--all` keeps its groups, changing them
re-publishes visibility without re-embedding, a sub-folder's ``.kb-groups`` file gives it its own groups, and
`kb status` shows them (real Chroma, the real MiniLM, the `kb` command in-process)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kb_assistant.cli import app
from kb_assistant.schema import Principal

OUTSIDER, MANAGER = Principal.of("otto"), Principal.of("maria", "managers")


@pytest.fixture
def kb(tmp_path, monkeypatch, embeddings):
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("kb_assistant.embeddings.make_embeddings", lambda settings: embeddings)
    handbook = tmp_path / "handbook"
    (handbook / "reviews").mkdir(parents=True)
    (handbook / "leave.md").write_text("# Leave\n\nEvery employee has 25 days of annual leave.\n")
    (handbook / "reviews" / "guide.md").write_text(
        "# Performance reviews\n\nManagers rate each report on the Kestrel-9 scale before 31 January.\n"
    )
    plan = tmp_path / "plan"
    plan.mkdir()
    (plan / "restructuring.md").write_text("# Restructuring\n\nThe Harrowgate office closes in spring.\n")
    return tmp_path, handbook, plan


def kb_cmd(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


def chunks_seen(tmp_path, principal: Principal) -> set[str]:
    from kb_assistant.settings import Settings
    from kb_assistant.store import KnowledgeBase

    index = KnowledgeBase(Settings(data_dir=tmp_path / "data"), "hr", None)
    return {c.source for c in index.view(principal).all_chunks()}


def test_a_source_ingested_with_groups_is_seen_only_by_them_and_keeps_them_on_all(kb):
    tmp_path, handbook, plan = kb
    assert kb_cmd("ingest", str(handbook), "--kb", "hr").exit_code == 0
    assert kb_cmd("ingest", str(plan), "--kb", "hr", "--groups", "managers,hr-team").exit_code == 0
    assert chunks_seen(tmp_path, OUTSIDER) == {"leave.md", "reviews/guide.md"}
    assert chunks_seen(tmp_path, MANAGER) == {"leave.md", "reviews/guide.md", "restructuring.md"}
    status = json.loads(kb_cmd("status", "--kb", "hr", "--json").stdout)[0]
    assert status["source_groups"][str(plan.resolve())]["groups"] == ["hr-team", "managers"]
    assert status["source_groups"][str(handbook.resolve())]["groups"] == []
    assert "groups: hr-team, managers" in kb_cmd("status", "--kb", "hr").stdout

    (plan / "timeline.md").write_text("# Timeline\n\nThe Harrowgate move starts in March.\n")
    assert kb_cmd("ingest", "--all").exit_code == 0  # the new file of the remembered source keeps its groups
    assert chunks_seen(tmp_path, OUTSIDER) == {"leave.md", "reviews/guide.md"}
    assert "timeline.md" in chunks_seen(tmp_path, MANAGER)


def test_changing_a_sources_groups_republishes_visibility_without_re_embedding(kb):
    tmp_path, handbook, plan = kb
    assert kb_cmd("ingest", str(plan), "--kb", "hr", "--groups", "managers").exit_code == 0
    assert chunks_seen(tmp_path, OUTSIDER) == set()
    result = kb_cmd("ingest", str(plan), "--kb", "hr", "--no-groups", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["embedded"] == 0 and report["unchanged"] == 1
    assert chunks_seen(tmp_path, OUTSIDER) == {"restructuring.md"}
    assert kb_cmd("ingest", str(plan), "--kb", "hr", "--groups", "board").exit_code == 0
    assert chunks_seen(tmp_path, OUTSIDER) == set() and chunks_seen(tmp_path, MANAGER) == set()


def test_a_sub_folders_kb_groups_file_limits_it_and_removing_the_file_opens_it(kb):
    tmp_path, handbook, _ = kb
    (handbook / "reviews" / ".kb-groups").write_text("# managers' guides\nmanagers\n")
    assert kb_cmd("ingest", str(handbook), "--kb", "hr").exit_code == 0
    assert chunks_seen(tmp_path, OUTSIDER) == {"leave.md"}
    assert chunks_seen(tmp_path, MANAGER) == {"leave.md", "reviews/guide.md"}
    status = json.loads(kb_cmd("status", "--kb", "hr", "--json").stdout)[0]
    assert status["source_groups"][str(handbook.resolve())]["folders"] == {"reviews": ["managers"]}

    (handbook / "reviews" / ".kb-groups").unlink()
    assert kb_cmd("ingest", str(handbook), "--kb", "hr").exit_code == 0
    assert chunks_seen(tmp_path, OUTSIDER) == {"leave.md", "reviews/guide.md"}


def test_a_kb_groups_file_naming_no_group_fails_its_documents_instead_of_opening_them(kb):
    tmp_path, handbook, _ = kb
    (handbook / "reviews" / ".kb-groups").write_text("# TODO: who may read this?\n")
    result = kb_cmd("ingest", str(handbook), "--kb", "hr")
    assert result.exit_code == 1 and "names no group" in result.stderr and "guide.md" in result.stderr
    assert chunks_seen(tmp_path, OUTSIDER) == {"leave.md"} and chunks_seen(tmp_path, MANAGER) == {"leave.md"}


def test_groups_for_a_path_inside_a_source_are_refused_with_the_way_to_do_it(kb):
    _, handbook, _ = kb
    assert kb_cmd("ingest", str(handbook), "--kb", "hr").exit_code == 0
    result = kb_cmd("ingest", str(handbook / "reviews"), "--kb", "hr", "--groups", "managers")
    assert result.exit_code != 0 and ".kb-groups" in result.output
    bad = kb_cmd("ingest", str(handbook), "--kb", "hr", "--groups", "CN=Managers")
    assert bad.exit_code != 0 and "'CN=Managers'" in bad.output


def test_kb_access_offers_a_kb_only_to_the_groups_it_names(kb):
    _, handbook, _ = kb
    assert kb_cmd("ingest", str(handbook), "--kb", "hr").exit_code == 0
    assert kb_cmd("access", "hr", "--groups", "hr-team").stdout.strip() == "hr: offered to hr-team"
    assert kb_cmd("access").stdout.strip() == "hr: hr-team"
    closed = kb_cmd("ask", "How many days of annual leave?", "--kb", "hr", "--user", "otto")
    assert closed.exit_code != 0 and "no knowledge base named 'hr' (known: none)" in closed.output
    member = kb_cmd("ask", "How many days of annual leave?", "--kb", "hr", "--groups", "hr-team")
    assert member.exit_code == 0 and "25 days" in member.stdout
    assert kb_cmd("access", "hr", "--groups", " , ").exit_code != 0  # names no group: refused, nothing changed
    assert kb_cmd("access").stdout.strip() == "hr: hr-team"
    assert kb_cmd("access", "hr", "--everyone").exit_code == 0
    assert kb_cmd("ask", "How many days of annual leave?", "--kb", "hr").exit_code == 0
