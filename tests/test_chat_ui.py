"""The Gradio chat's handler: it streams, shows numbered sources with the passage, and renders HTML inert."""

from __future__ import annotations

from ui.chat import build_chat_app, respond, to_history


def test_chat_streams_the_answer_and_lists_numbered_sources_with_the_passage(sample_assistant):
    outputs = list(respond(sample_assistant, "公司几点上班？", [], "default"))
    final = outputs[-1]
    assert "10:00" in final and "来源" in final
    assert "<details><summary>[" in final and "员工手册-考勤与工时.md" in final


def test_chat_passes_its_history_so_follow_ups_work(sample_assistant):
    history = [
        {"role": "user", "content": "How many days of annual leave do I get?"},
        {"role": "assistant", "content": "10 days [1]\n\n**Sources**\n..."},
    ]
    assert to_history(history)[1]["content"] == "10 days [1]"
    final = list(respond(sample_assistant, "and sick leave?", history, "default"))[-1]
    assert "12" in final


def test_question_with_html_is_rendered_inert(sample_assistant):
    final = list(respond(sample_assistant, "<img src=x onerror=alert(1)>", [], "default"))[-1]
    assert "<img" not in final


def test_chat_app_builds_with_a_knowledge_base_picker(sample_assistant):
    app = build_chat_app(sample_assistant)
    picker = app.additional_inputs[0]
    assert set(picker.choices and [c[0] if isinstance(c, tuple) else c for c in picker.choices]) == {"default", "sales"}
