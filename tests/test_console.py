"""The agent console: login, tickets filtered and worked through, details rendered inert, the gap view."""

from __future__ import annotations

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.settings import Settings
from ui.console import ConsoleActions, build_console_app, console_auth, gap_rows, render_ticket_html, ticket_rows

XSS = '<img src=x onerror="alert(1)">'


@pytest.fixture
def assistant(sample_data_dir, embeddings, tmp_path):
    return Assistant(
        Settings(data_dir=sample_data_dir, database_url=f"sqlite:///{tmp_path / 'q.db'}"), embeddings=embeddings
    )


def test_console_login_accepts_only_agents_with_their_password(assistant):
    assistant.queue.add_user("anna", "correct horse battery")
    check = console_auth(assistant.queue)
    assert check("anna", "correct horse battery")
    assert not check("anna", "correct horse") and not check("mallory", "correct horse battery")


def test_questions_and_answers_with_html_render_inert_in_the_console(assistant):
    history = [{"role": "user", "content": "<script>steal()</script>"}]
    answer = assistant.ask(f"Does the company sponsor a ski trip? {XSS}", history=history, session_id="s")
    assistant.queue.answer(answer.ticket_id, "<b onmouseover=alert(2)>No</b>", "anna")
    page = render_ticket_html(assistant.queue.get(answer.ticket_id))
    for raw in ("<img", "<script>", "<b onmouseover"):
        assert raw not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page and "&lt;script&gt;steal()" in page
    assert "&lt;b onmouseover=alert(2)&gt;No&lt;/b&gt;" in page


def test_agent_works_a_ticket_filtered_claimed_answered_and_closed_in_the_console(assistant):
    dog = assistant.ask("Can I bring my dog to the office?", session_id="s1").ticket_id
    handoff = assistant.ask("转人工，工资条有问题", session_id="s2").ticket_id
    sales = assistant.ask("Does the company sponsor an annual ski trip?", kb="sales").ticket_id
    rows = ticket_rows(assistant.queue)
    assert [r[0] for r in rows] == [dog, handoff, sales]
    assert [r[0] for r in ticket_rows(assistant.queue, kb="sales")] == [sales]
    assert [r[0] for r in ticket_rows(assistant.queue, reason="handoff")] == [handoff]
    assert ticket_rows(assistant.queue, age="older than 1 hour") == []
    assert len(ticket_rows(assistant.queue, age="last 24 hours")) == 3

    actions = ConsoleActions(assistant)
    message, page = actions.show(dog)
    assert "low_confidence" in page and "Passages retrieved" in page and "Can I bring my dog" in page
    message, page = actions.claim(dog, "anna")
    assert message.startswith("Claimed") and "claimed by anna" in page
    assert ticket_rows(assistant.queue)[0][1] == "claimed @anna"
    message, _ = actions.promote(dog, "")
    assert "only an answered ticket" in message  # not yet answered: refused, with the reason
    message, _ = actions.answer(dog, "Dogs are welcome on Fridays.", "anna")
    assert message.startswith("Answered")
    message, _ = actions.close_not_ours(handoff, "Payroll questions go to payroll@example.com", "anna")
    assert "not our question" in message
    assert [r[0] for r in ticket_rows(assistant.queue)] == [sales]
    assert [r[0] for r in ticket_rows(assistant.queue, status="answered")] == [dog]
    assert assistant.queue.get(handoff).status == "closed"
    assert actions.answer(handoff, "too late", "anna")[0].startswith("⚠️")
    assert actions.answer(dog, "x" * (assistant.settings.max_answer_chars + 1), "anna")[0].startswith("⚠️")


def test_the_console_shows_the_gap_view_and_builds_as_a_blocks_app(assistant):
    import gradio as gr

    for q in ("Can I bring my dog to the office?", "Am I allowed to bring a dog to work?", "Is there a choir?"):
        assistant.ask(q)
    rows, _ = gap_rows(assistant)
    assert rows[0][1] == 2 and "dog" in rows[0][3] and rows[1][1] == 1
    assert isinstance(build_console_app(assistant), gr.Blocks)
