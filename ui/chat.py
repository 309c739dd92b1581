"""The Gradio web chat: streaming answers, numbered sources with section/page and the passage on demand.

Thin by design: parse the message and history, call ``Assistant.stream``, render. Nothing here retrieves.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterator

from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError
from kb_assistant.schema import Answer
from kb_assistant.settings import Settings

EXAMPLES = {
    "default": [
        "公司几点上班？",
        "How many days of sick leave do I get?",
        "出差住酒店每晚能报销多少？",
        "What is the gym subsidy?",
    ],
    "sales": ["How long is the LumenDesk free trial?", "LumenDesk 支持哪些集成？"],
}


def message_text(content) -> str:
    """Gradio message content as plain text (a string, or a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(message_text(p) for p in content)
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    return ""


def to_history(messages: list) -> list[dict]:
    """The chat's messages as OpenAI-style history, sources stripped from the assistant's turns."""
    history = []
    for m in messages or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", "")
        if role in ("user", "assistant"):
            history.append(
                {"role": role, "content": message_text(content).split("\n\n**Sources**")[0].split("\n\n**来源**")[0]}
            )
    return history


def render_sources(answer: Answer) -> str:
    """Numbered sources; each opens to show the passage. Passages are escaped: KB text is never HTML here."""
    if not answer.citations:
        return ""
    title = "来源" if answer.language == "zh" else "Sources"
    lines = [f"\n\n**{title}**\n"]
    for c in answer.citations:
        where = " · ".join(x for x in (c.section, f"p. {c.page}" if c.page else "") if x)
        label = html.escape(f"[{c.n}] {c.source}" + (f" — {where}" if where else ""))
        lines.append(f"<details><summary>{label}</summary>\n\n{html.escape(c.snippet)}\n\n</details>\n")
    return "\n".join(lines)


def respond(assistant: Assistant, message: str, history: list, kb: str | None) -> Iterator[str]:
    text = ""
    try:
        for event in assistant.stream(message_text(message), history=to_history(history), kb=kb or "default"):
            if event.type == "delta":
                text += event.text
                yield html.escape(text, quote=False)
            else:
                yield html.escape(event.answer.text, quote=False) + render_sources(event.answer)
    except KBError as exc:
        yield f"⚠️ {html.escape(str(exc), quote=False)}"


def build_chat_app(assistant: Assistant):
    import gradio as gr

    kbs = assistant.knowledge_bases() or ["default"]
    default_kb = "default" if "default" in kbs else kbs[0]
    kb_picker = gr.Dropdown(choices=kbs, value=default_kb, label="Knowledge base / 知识库", visible=len(kbs) > 1)

    def fn(message, history, kb):
        yield from respond(assistant, message, history, kb)

    examples = [[q, kb] for kb in kbs for q in EXAMPLES.get(kb, [])]
    return gr.ChatInterface(
        fn=fn,
        additional_inputs=[kb_picker],
        examples=examples or None,
        title="kb-assistant",
        description="Ask about the handbook in Chinese or English · 用中文或英文提问，答案附带出处。",
        chatbot=gr.Chatbot(height=560, render_markdown=True, sanitize_html=True, placeholder="公司几点上班？"),
        fill_height=True,
        api_name="chat",
    )


def launch(settings: Settings) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    assistant = Assistant(settings)
    assistant.embeddings  # load the model before the first user waits for it  # noqa: B018
    app = build_chat_app(assistant)
    print(f"kb-assistant chat on http://{settings.host}:{settings.port}", flush=True)
    app.queue(default_concurrency_limit=8).launch(
        server_name=settings.host, server_port=settings.port, show_error=True, inbrowser=False
    )
