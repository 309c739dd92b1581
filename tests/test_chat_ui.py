"""The Gradio chat's handler: it streams, shows numbered sources with the passage, and renders HTML inert."""

from __future__ import annotations

import pytest

from ui.chat import build_chat_app, from_text, respond, to_history


def test_chat_streams_the_answer_and_lists_numbered_sources_with_the_passage(sample_assistant):
    outputs = list(respond(sample_assistant, "公司几点上班？", [], "default"))
    final = outputs[-1]
    assert "10:00" in from_text(final) and "来源" in final
    assert "<details><summary>[" in final and "员工手册-考勤与工时.md" in final


def test_chat_passes_its_history_so_follow_ups_work(sample_assistant):
    history = [
        {"role": "user", "content": "How many days of annual leave do I get?"},
        {"role": "assistant", "content": "10 days [1]\n\n**Sources**\n..."},
    ]
    assert to_history(history)[1]["content"] == "10 days [1]"
    final = list(respond(sample_assistant, "and sick leave?", history, "default"))[-1]
    assert "12" in from_text(final)


def test_question_with_html_is_rendered_inert(sample_assistant):
    final = list(respond(sample_assistant, "<img src=x onerror=alert(1)>", [], "default"))[-1]
    assert "<img" not in final


def test_chat_app_builds_with_a_knowledge_base_picker(sample_assistant):
    app = build_chat_app(sample_assistant)
    picker = app.additional_inputs[0]
    assert set(picker.choices and [c[0] if isinstance(c, tuple) else c for c in picker.choices]) == {"default", "sales"}


def test_the_chat_keeps_a_session_and_shows_the_agents_answer_when_the_user_comes_back(
    sample_data_dir, embeddings, tmp_path
):
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings
    from ui.chat import render_replies, session_id, unseen_replies

    assistant = Assistant(
        Settings(data_dir=sample_data_dir, database_url=f"sqlite:///{tmp_path / 'q.db'}"), embeddings=embeddings
    )
    chat = build_chat_app(assistant)
    outputs = list(chat.fn("Is there a company choir I can join?", [], "default", None))  # a new browser: no state
    text, state = outputs[-1]
    assert "ticket #T-000001" in from_text(text) and len(state["secret"]) >= 32 and "session_id" not in state
    assert [v.id for v in assistant.replies(session_id(state))] == ["T-000001"]

    assistant.queue.answer("T-000001", "Yes <script>alert(1)</script> on Fridays.", "anna")
    state, fresh = unseen_replies(assistant, state)  # the user comes back: page load
    shown = render_replies(fresh)
    assert "Our reply** (ticket #T-000001)" in shown and "on Fridays" in shown
    assert "<script>" not in shown and r"\<script\>" in shown  # an agent's answer renders inert too
    assert unseen_replies(assistant, state)[1] == []  # shown once
    # a reply that arrives later is put in front of the next answer in the chat
    again = from_text(list(chat.fn("Does the company sponsor an annual ski trip?", [], "default", state))[-1][0])
    assistant.queue.answer(again.split("#")[-1].rstrip(")"), "No, but the social club runs one.", "anna")
    text, state = list(chat.fn("How many days of sick leave do I get?", [], "default", state))[-1]
    assert text.startswith("**Our reply** (ticket #T-000002)") and "social club" in text and "12" in from_text(text)


@pytest.mark.unit
def test_the_key_sentence_of_an_answer_is_bold_and_what_it_holds_stays_inert():
    from ui.chat import as_answer_text

    shown = as_answer_text("**Staff get 10 days <img src=x onerror=alert(1)>.** The rest [1]")
    assert shown.startswith("**Staff get 10 days \\<img src\\=x") and shown.count("**") == 2
    assert shown.count("<img") == shown.count("\\<img") == 1 and "\\[1\\]" in shown
