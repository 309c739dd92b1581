"""The Gradio web chat: streaming answers, numbered sources with section/page and the passage on demand.

Thin by design: parse the message and history, call ``Assistant.stream``, render. Nothing here retrieves.
Each browser keeps a random session secret in its localStorage; the session id the chat asks with is derived
from it (``chat_session_id``), so answers that agents give to its tickets are shown when the user comes back: on
load, while the page is open, and at the top of the next answer. Gradio hands the stored state to the server
as the caller sends it, so the state holds only the secret: a session id a caller supplies reads nothing.
"""

from __future__ import annotations

import html
import os
import re
import secrets
from collections.abc import Iterator

from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError, public_message
from kb_assistant.language import is_cjk
from kb_assistant.queue.access import chat_session_id, new_session_secret
from kb_assistant.schema import Answer, Principal, TicketView
from kb_assistant.settings import Settings
from ui.principal import principal_of_request

EXAMPLES = {
    "default": [
        "公司几点上班？",
        "How many days of sick leave do I get?",
        "出差住酒店每晚能报销多少？",
        "What is the gym subsidy?",
    ],
    "sales": ["How long is the LumenDesk free trial?", "LumenDesk 支持哪些集成？"],
}


_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def as_text(text: str) -> str:
    """Text from a document, a user, an LLM or an agent, for Gradio's Markdown: shown exactly as written, inert.

    Every ASCII punctuation mark is backslash-escaped (CommonMark allows it for any), so no HTML, image, link,
    autolink, emphasis or table survives and the browser fetches nothing; a URL stays a plain, visible URL.
    Leading blanks go, so no line becomes a code block (where the escapes would show)."""
    return _PUNCTUATION.sub(r"\\\1", re.sub(r"(?m)^[ \t]+", "", text))


_KEY_MARK = re.compile(r"\\\*\\\*((?:(?!\\\*)[^\n])+?)\\\*\\\*")


def as_answer_text(text: str) -> str:
    """An answer for Gradio's Markdown: inert like ``as_text``, except that the key sentence an extractive answer
    marks ``**…**`` is shown bold (what is inside stays escaped)."""
    return _KEY_MARK.sub(r"**\1**", as_text(text))


def from_text(markdown: str) -> str:
    """Undo ``as_text``: the text as written (history read back from the chat goes to the LLM like this)."""
    return _ESCAPED.sub(r"\1", markdown)


def _user_text(message, convert):
    """A chat message with ``convert`` applied to its text if the user wrote it (dicts: Gradio's message format)."""
    if not isinstance(message, dict) or message.get("role") != "user":
        return message
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": convert(content)}
    if isinstance(content, list):
        parts = [
            convert(p) if isinstance(p, str)
            else {**p, "text": convert(p["text"])} if isinstance(p, dict) and isinstance(p.get("text"), str)
            else p
            for p in content
        ]  # fmt: skip
        return {**message, "content": parts}
    return message


def _text_chatbot(**kwargs):
    """Gradio's Chatbot, but the user's own messages are shown as text: Gradio would render them as Markdown
    and HTML (an image in a question is fetched). Python sees them as typed; only the browser gets them escaped.
    The instance's methods are wrapped (a subclass would make Gradio write a .pyi file next to this one)."""
    import gradio as gr

    chatbot = gr.Chatbot(**kwargs)
    postprocess, preprocess = chatbot.postprocess, chatbot.preprocess
    chatbot.postprocess = lambda value: postprocess([_user_text(m, as_text) for m in value] if value else value)
    chatbot.preprocess = lambda payload: [_user_text(m, from_text) for m in preprocess(payload)]
    return chatbot


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
            text = message_text(content)
            if role == "assistant":  # our Markdown: the answer without its sources, as the LLM wrote it
                text = from_text(text.split("\n\n**Sources**")[0].split("\n\n**来源**")[0])
            history.append({"role": role, "content": text})
    return history


def render_sources(answer: Answer) -> str:
    """Numbered sources; each opens to show the passage. KB text is never markup here: the label is escaped HTML
    on one line (so the HTML block holds), the passage is ``as_text``."""
    if not answer.citations:
        return ""
    title = "来源" if answer.language == "zh" else "Sources"
    lines = [f"\n\n**{title}**\n"]
    for c in answer.citations:
        where = " · ".join(x for x in (c.section, f"p. {c.page}" if c.page else "") if x)
        label = html.escape(" ".join((f"[{c.n}] {c.source}" + (f" — {where}" if where else "")).split()))
        lines.append(f"<details><summary>{label}</summary>\n\n{as_text(c.snippet)}\n\n</details>\n")
    return "\n".join(lines)


def respond(
    assistant: Assistant,
    message: str,
    history: list,
    kb: str | None,
    session_id: str | None = None,
    principal: Principal | None = None,
) -> Iterator[str]:
    text = ""
    try:
        for event in assistant.stream(
            message_text(message), history=to_history(history), kb=kb or "default", session_id=session_id,
            principal=principal or Principal(),
        ):  # fmt: skip
            if event.type == "delta":
                text += event.text
                yield as_answer_text(text)
            else:
                yield as_answer_text(event.answer.text) + render_sources(event.answer)
    except KBError as exc:
        yield f"⚠️ {as_text(public_message(str(exc)))}"  # no server paths or URLs


def new_session() -> dict:
    return {"secret": new_session_secret(), "shown": []}


def session_id(state: dict) -> str:
    """The id the chat asks and reads replies with, derived from the browser's secret (never taken from it)."""
    return chat_session_id(state["secret"])


def unseen_replies(assistant: Assistant, state: dict | None) -> tuple[dict, list[TicketView]]:
    """The session's tickets that agents have answered or closed since the user last saw them (marked seen).
    A state without a usable secret (a new browser, or one made up by a caller) starts a new session."""
    state = dict(state or {}) if isinstance(state, dict) else {}
    secret = state.get("secret")
    if not isinstance(secret, str) or len(secret) < 16:
        state = new_session()
    state = {"secret": state["secret"], "shown": [str(x) for x in state.get("shown") or []][-200:]}
    try:
        views = assistant.replies(session_id(state))
    except KBError:  # the queue database is down: the chat still answers
        return state, []
    shown = set(state.get("shown") or [])
    fresh = [v for v in views if v.status in ("answered", "closed") and v.answer and v.id not in shown]
    state["shown"] = sorted(shown | {v.id for v in fresh})
    return state, fresh


def render_replies(replies: list[TicketView]) -> str:
    """Agents' answers to the user's earlier questions; ``as_text`` like everything else (inert)."""
    blocks = []
    for v in replies:
        zh = is_cjk(v.question)
        head = f"**我们的回复**（工单号 {v.id}）" if zh else f"**Our reply** (ticket #{v.id})"
        blocks.append(f"{head} — {as_text(v.question)}\n\n{as_text(v.answer or '')}")
    return "\n\n---\n\n".join(blocks)


def _browser_secret(settings: Settings) -> str:
    """The key that encrypts the session id in the browser; kept in the data dir so it survives restarts."""
    path = settings.path("chat-secret")
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def build_chat_app(assistant: Assistant):
    import gradio as gr

    # The page itself names only the KBs open to everyone; on load the picker offers the KBs the visitor may use
    # (``ui.principal``: SSO headers from a trusted proxy), and every question is asked as that principal.
    kbs = assistant.knowledge_bases(Principal()) or ["default"]
    default_kb = "default" if "default" in kbs else kbs[0]
    # allow_custom_value: the choices a visitor is offered differ per visitor; Assistant.stream decides what they
    # may ask (a KB closed to them reads as one that does not exist)
    kb_picker = gr.Dropdown(
        choices=kbs, value=default_kb, label="Knowledge base / 知识库", visible=len(kbs) > 1, allow_custom_value=True
    )
    session = gr.BrowserState(
        {"secret": "", "shown": []}, storage_key="kb-assistant-chat", secret=_browser_secret(assistant.settings)
    )
    settings = assistant.settings

    def fn(message, history, kb, state, request: gr.Request = None):
        state, fresh = unseen_replies(assistant, state)
        prefix = render_replies(fresh) + "\n\n---\n\n" if fresh else ""
        principal = principal_of_request(settings, request)
        for text in respond(assistant, message, history, kb, session_id=session_id(state), principal=principal):
            yield prefix + text, state

    def offer_kbs(kb, request: gr.Request = None):
        mine = assistant.knowledge_bases(principal_of_request(settings, request)) or ["default"]
        value = kb if kb in mine else ("default" if "default" in mine else mine[0])
        return gr.update(choices=mine, value=value, visible=len(mine) > 1)

    for handler in (fn, offer_kbs):  # Gradio injects the request by the annotation's class, not its name
        handler.__annotations__["request"] = gr.Request

    def show_replies(state, panel):
        state, fresh = unseen_replies(assistant, state)
        if not fresh:
            return state, gr.update()
        text = render_replies(fresh) + ("\n\n---\n\n" + panel if panel else "")
        return state, gr.update(value=text, visible=True)

    examples = [[q, kb] for kb in kbs for q in EXAMPLES.get(kb, [])]
    chat = gr.ChatInterface(
        fn=fn,
        additional_inputs=[kb_picker, session],
        # open: Gradio mounts the components of a closed accordion only when it is opened, and the session's
        # BrowserState reads and writes localStorage only while mounted (closed, every reload was a new session)
        additional_inputs_accordion=gr.Accordion(label="Knowledge base / 知识库", open=True),
        additional_outputs=[session],
        examples=examples or None,
        title="kb-assistant",
        description="Ask about the handbook in Chinese or English · 用中文或英文提问，答案附带出处。",
        chatbot=_text_chatbot(
            height=560, render_markdown=True, sanitize_html=True, latex_delimiters=[], placeholder="公司几点上班？"
        ),
        fill_height=True,
        api_name="chat",
    )
    with chat:
        replies_panel = gr.Markdown(visible=False, sanitize_html=True, latex_delimiters=[])
        chat.load(show_replies, [session, replies_panel], [session, replies_panel])
        chat.load(offer_kbs, [kb_picker], [kb_picker])
        gr.Timer(30).tick(show_replies, [session, replies_panel], [session, replies_panel])
    return chat


def launch(settings: Settings) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    assistant = Assistant(settings)
    assistant.embeddings  # load the model before the first user waits for it  # noqa: B018
    app = build_chat_app(assistant)
    print(f"kb-assistant chat on http://{settings.host}:{settings.port}", flush=True)
    app.queue(default_concurrency_limit=8).launch(
        server_name=settings.host, server_port=settings.port, show_error=True, inbrowser=False
    )
