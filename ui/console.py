"""The agent console (Gradio): the human queue for HR/admin agents, behind a login.

Open tickets filterable by KB, reason and age; claim; the conversation, the passages and why it escalated;
write the answer; close (answered / not our question); "Add to the knowledge base"; the gap log.
Thin: every action is one call on ``Assistant.queue`` or ``ingest.promote.promote``. Everything a user or an agent
typed is escaped before it is shown (``render_ticket_html``): questions and answers render inert.

``build_console_app(assistant)`` returns the Blocks (to mount at /console); ``launch`` runs it standalone.
"""

from __future__ import annotations

import html
import os
import tempfile
from datetime import UTC, datetime, timedelta

import gradio as gr  # at module level: Gradio resolves the `gr.Request` annotations below against these globals

from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError
from kb_assistant.queue.models import format_ticket_id
from kb_assistant.queue.store import TicketQueue
from kb_assistant.settings import Settings

ALL = "(all)"
REASONS = ["low_confidence", "not_in_context", "no_citation", "handoff", "downvote"]
STATUSES = ["open", "claimed", "answered", "closed", "all"]
AGES = {"any age": (None, None), "older than 1 hour": (timedelta(hours=1), None),
        "older than 1 day": (timedelta(days=1), None), "older than 1 week": (timedelta(weeks=1), None),
        "last 24 hours": (None, timedelta(days=1))}  # fmt: skip
TICKET_COLUMNS = ["ticket", "status", "kb", "reason", "age", "asked", "question", "groups"]
PAGE_SIZE = 100  # tickets per console page
GAP_COLUMNS = ["rank", "count", "kb", "question", "also asked as", "tickets", "groups"]


def console_auth(queue: TicketQueue):
    """Gradio's auth callable: a user from `kb user add NAME --role agent` and their password."""

    def check(username: str, password: str) -> bool:
        try:
            return queue.check_password(username, password)
        except KBError:
            return False

    return check


def _age(dt: datetime) -> str:
    secs = (datetime.now(UTC) - (dt if dt.tzinfo else dt.replace(tzinfo=UTC))).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{int(secs // size)}{unit}"
    return f"{int(secs)}s"


def ticket_rows(
    queue: TicketQueue, kb: str = ALL, reason: str = ALL, status: str = "open", age: str = "any age", page: int = 1
):
    return ticket_page(queue, kb, reason, status, age, page)[0]


def ticket_page(
    queue: TicketQueue, kb: str = ALL, reason: str = ALL, status: str = "open", age: str = "any age", page: int = 1
) -> tuple[list[list], str]:
    """One page of tickets (oldest first) and a line saying which ones of how many."""
    older, newer = AGES.get(age, (None, None))
    filters = dict(
        kb=None if kb in (ALL, "", None) else kb, reason=None if reason in (ALL, "", None) else reason,
        status=status or "open", older_than=older, newer_than=newer,
    )  # fmt: skip
    total = queue.count_tickets(**filters)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, int(page or 1)), pages)
    tickets = queue.list_tickets(**filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    rows = [
        [format_ticket_id(t.id), t.status + (f" @{t.claimed_by}" if t.status == "claimed" else ""), t.kb, t.reason,
         _age(t.created_at), len(t.requests), t.question, t.scope or "-"]
        for t in tickets
    ]  # fmt: skip
    first = (page - 1) * PAGE_SIZE + 1
    shown = f" · {first}–{first + len(rows) - 1} shown · page {page} of {pages}" if rows else ""
    summary = f"{total} tickets{shown}"
    return rows, summary


def _e(text) -> str:
    return html.escape(str(text or ""), quote=True)


def render_ticket_html(ticket) -> str:
    """One ticket for the agent; every user- or agent-written string is escaped (inert HTML)."""
    tid = format_ticket_id(ticket.id)
    parts = [
        f"<h3>{tid} · {_e(ticket.status)} · KB {_e(ticket.kb)}</h3>",
        f"<p><b>Why it came here:</b> {_e(ticket.reason)} · opened {_e(ticket.created_at)}"
        + (f" · claimed by {_e(ticket.claimed_by)}" if ticket.claimed_by else "")
        + "</p>",
        f"<p><b>Question:</b> {_e(ticket.question)}</p>",
        f"<p><b>Asked by groups:</b> {_e(ticket.scope or 'no group')} (your answer reaches only askers of these "
        "groups; adding it to the KB makes it visible to them unless you widen it)</p>",
    ]
    if ticket.standalone_question and ticket.standalone_question != ticket.question:
        parts.append(f"<p><b>Standalone form:</b> {_e(ticket.standalone_question)}</p>")
    if ticket.requests:
        items = "".join(
            f"<li>{_e(r.question)} <small>({_e(r.session_id or '-')}, {_e(r.created_at)})</small>"
            + (f" — <i>comment:</i> {_e(r.comment)}" if r.comment else "")
            + "</li>"
            for r in ticket.requests
        )
        parts.append(f"<p><b>Asked {len(ticket.requests)} time(s):</b></p><ul>{items}</ul>")
    if ticket.conversation:
        turns = "".join(f"<li><b>{_e(m.get('role'))}:</b> {_e(m.get('content'))}</li>" for m in ticket.conversation)
        parts.append(f"<p><b>Conversation before it:</b></p><ul>{turns}</ul>")
    if ticket.bad_answer:
        parts.append(f"<p><b>Answer the user voted down:</b> {_e(ticket.bad_answer)}</p>")
    if ticket.passages:
        rows = "".join(
            f"<tr><td>[{_e(p.get('n'))}]</td><td>{float(p.get('score', 0)):.2f}</td>"
            f"<td>{_e(p.get('source'))}<br><small>{_e(p.get('section'))}</small></td><td>{_e(p.get('text'))}</td></tr>"
            for p in ticket.passages
        )
        parts.append(
            "<p><b>Passages retrieved (they did not answer it):</b></p>"
            f"<table><tr><th>#</th><th>score</th><th>source</th><th>text</th></tr>{rows}</table>"
        )
    else:
        parts.append("<p><i>No passages were retrieved.</i></p>")
    if ticket.answer:
        parts.append(f"<p><b>Answer</b> ({_e(ticket.answered_by)}): {_e(ticket.answer)}</p>")
    if ticket.promoted_source:
        parts.append(f"<p>In the knowledge base as <code>{_e(ticket.promoted_source)}</code></p>")
    return "\n".join(parts)


def gap_rows(assistant: Assistant, kb: str = ALL, since_days: float | None = None):
    from kb_assistant.queue.gaps import gap_clusters

    since = datetime.now(UTC) - timedelta(days=since_days) if since_days else None
    clusters = gap_clusters(assistant.queue, assistant.embeddings, kb=None if kb in (ALL, "", None) else kb,
                            since=since)  # fmt: skip
    rows = [
        [rank, c.count, c.kb, c.question, " | ".join(c.examples[1:]), " ".join(c.tickets), ",".join(c.groups) or "-"]
        for rank, c in enumerate(clusters, start=1)
    ]
    return rows, clusters


class ConsoleActions:
    """What the console's buttons do; each returns (message, ticket html). Testable without a browser."""

    def __init__(self, assistant: Assistant):
        self.assistant = assistant
        self.queue = assistant.queue

    def show(self, ticket_id: str) -> tuple[str, str]:
        if not (ticket_id or "").strip():
            return "Pick a ticket in the table.", ""
        try:
            t = self.queue.get(ticket_id)
        except KBError as exc:
            return f"⚠️ {_e(exc)}", ""
        return "", render_ticket_html(t)

    def _do(self, ticket_id: str, action, done: str) -> tuple[str, str]:
        if not (ticket_id or "").strip():
            return "Pick a ticket in the table first.", ""
        try:
            t = action()
        except KBError as exc:
            return f"⚠️ {_e(exc)}", self.show(ticket_id)[1]
        return done, render_ticket_html(t)

    def claim(self, ticket_id: str, agent: str):
        return self._do(ticket_id, lambda: self.queue.claim(ticket_id, agent), f"Claimed {ticket_id}.")

    def answer(self, ticket_id: str, text: str, agent: str):
        return self._do(
            ticket_id, lambda: self.queue.answer(ticket_id, text, agent),
            f"Answered {ticket_id}: everyone who asked sees it in their chat.",
        )  # fmt: skip

    def close_not_ours(self, ticket_id: str, note: str, agent: str):
        return self._do(
            ticket_id, lambda: self.queue.close(ticket_id, agent, note), f"Closed {ticket_id} as not our question."
        )

    def promote(self, ticket_id: str, question: str):
        def action():
            from ingest.promote import promote  # ingesting: loaded only when an agent promotes

            promote(self.assistant, ticket_id, (question or "").strip() or None)
            return self.queue.get(ticket_id)

        return self._do(ticket_id, action, f"Added {ticket_id} to the knowledge base: asked again, it is answered.")


def build_console_app(assistant: Assistant):
    actions = ConsoleActions(assistant)
    kbs = [ALL, *assistant.knowledge_bases()]

    def agent_of(request: gr.Request | None) -> str:
        return (getattr(request, "username", None) or "agent") if request else "agent"

    with gr.Blocks(title="kb-assistant · agent console") as app:
        gr.Markdown("## Agent console · 人工工单\nQuestions the knowledge base could not answer. Answer them once; "
                    "add good answers to the knowledge base so they are answered automatically next time.")  # fmt: skip
        with gr.Tab("Tickets"):
            with gr.Row():
                kb = gr.Dropdown(kbs, value=ALL, label="Knowledge base")
                reason = gr.Dropdown([ALL, *REASONS], value=ALL, label="Reason")
                status = gr.Dropdown(STATUSES, value="open", label="Status")
                age = gr.Dropdown(list(AGES), value="any age", label="Age")
                page = gr.Number(1, label="Page", minimum=1, precision=0, scale=0)
                refresh = gr.Button("Refresh", scale=0)
            count = gr.Markdown()
            table = gr.Dataframe(headers=TICKET_COLUMNS, datatype=["str"] * 8, interactive=False, wrap=True)
            with gr.Row():
                ticket_id = gr.Textbox(label="Ticket", placeholder="T-000123 (or click a row)", scale=1)
                claim = gr.Button("Claim", scale=0)
            message = gr.Markdown()
            detail = gr.HTML()
            answer = gr.Textbox(label="Answer (or a note to the user when closing as not our question)", lines=5,
                                max_length=assistant.settings.max_answer_chars)  # fmt: skip
            with gr.Row():
                send = gr.Button("Send answer · close as answered", variant="primary")
                not_ours = gr.Button("Close · not our question")
            with gr.Row():
                faq_question = gr.Textbox(label="FAQ question (empty: the ticket's question)", scale=3)
                promote = gr.Button("Add to the knowledge base", scale=1)

            filters = [kb, reason, status, age, page]
            listing = {"fn": lambda *f: ticket_page(assistant.queue, *f), "inputs": filters, "outputs": [table, count]}
            refresh.click(**listing)
            for f in filters:
                f.change(**listing)
            app.load(**listing)

            def pick(evt: gr.SelectData):
                row = evt.row_value or []
                tid = row[0] if row else ""
                return (tid, *actions.show(tid))

            table.select(pick, None, [ticket_id, message, detail])
            ticket_id.submit(actions.show, ticket_id, [message, detail])

            # the signed-in agent comes from Gradio's request (it injects a parameter annotated gr.Request)
            def do_claim(tid, request: gr.Request):
                return actions.claim(tid, agent_of(request))

            def do_answer(tid, text, request: gr.Request):
                return actions.answer(tid, text, agent_of(request))

            def do_close(tid, note, request: gr.Request):
                return actions.close_not_ours(tid, note, agent_of(request))

            claim.click(do_claim, ticket_id, [message, detail]).then(**listing)
            send.click(do_answer, [ticket_id, answer], [message, detail]).then(**listing)
            not_ours.click(do_close, [ticket_id, answer], [message, detail]).then(**listing)
            promote.click(actions.promote, [ticket_id, faq_question], [message, detail])

        with gr.Tab("Gaps"):
            gr.Markdown("Unanswered questions grouped by meaning, most asked first: what the knowledge base lacks.")
            with gr.Row():
                gap_kb = gr.Dropdown(kbs, value=ALL, label="Knowledge base")
                gap_days = gr.Number(value=30, label="Last N days (0 = all)", precision=0)
                gap_refresh = gr.Button("Refresh", scale=0)
            gaps = gr.Dataframe(headers=GAP_COLUMNS, interactive=False, wrap=True)
            gap_csv = gr.File(label="CSV")

            def load_gaps(kb_name, days):
                from kb_assistant.queue.gaps import write_csv

                rows, clusters = gap_rows(assistant, kb_name, float(days or 0) or None)
                path = os.path.join(tempfile.mkdtemp(prefix="kb-gaps-"), "gaps.csv")
                write_csv(clusters, path)
                return rows, path

            gap_refresh.click(load_gaps, [gap_kb, gap_days], [gaps, gap_csv])
    return app


def launch(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    assistant = Assistant(settings)
    if not assistant.queue.users():
        print("No agents yet: create one with  kb user add NAME --role agent", flush=True)
    app = build_console_app(assistant)
    host, port = host or settings.host, port or settings.console_port
    print(f"kb-assistant agent console on http://{host}:{port}", flush=True)
    app.queue(default_concurrency_limit=4).launch(
        server_name=host, server_port=port, auth=console_auth(assistant.queue),
        auth_message="kb-assistant agent console: sign in as an agent (kb user add NAME --role agent)",
        show_error=True, inbrowser=False,
    )  # fmt: skip
