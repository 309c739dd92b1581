"""The admin pages (Gradio, at /admin): knowledge bases and documents, ingest runs, the dashboard, and the users and
API keys tab (``ui.admin_users_page``).

Only admins sign in here (``admin_login``: password *and* role); every handler checks the role again on the
server (``require_admin`` on the request's user), so an agent calling an endpoint directly is refused too.
Thin: each handler is one call on ``DocumentLibrary`` or ``ui.dashboard``; user-written text renders inert
(Dataframes and Markdown built from escaped strings).
"""

from __future__ import annotations

import html
import os
import queue as queue_mod
import tempfile
import threading
from pathlib import Path

import gradio as gr  # at module level: Gradio resolves the `gr.Request` annotations below against these globals

from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError
from ui.admin import DocumentLibrary, admin_login, report_line, require_admin
from ui.admin_users_page import users_tab

DOC_COLUMNS = ["document", "status", "reason", "chunks", "groups", "changed", "last synced", "source"]
CHUNK_COLUMNS = ["#", "section", "page", "text"]
RUN_COLUMNS = ["run", "started", "finished", "status", "summary", "failed files"]
ALL = "(all)"
DAY_AXIS = {"x": "day", "x_label_angle": -45, "height": 250, "y_lim": [0, None]}  # counts start at zero


def _e(text) -> str:
    return html.escape(str(text or ""), quote=True)


def doc_rows(library: DocumentLibrary, kb: str) -> list[list]:
    return [
        [d.source, d.status, d.reason, d.chunks, d.groups, d.changed, d.synced, "upload" if d.uploaded else d.root]
        for d in library.documents(kb)
    ]


def chunk_rows(library: DocumentLibrary, kb: str, key: str) -> list[list]:
    return [[n, c.section, c.page or "", c.text] for n, c in enumerate(library.chunks(kb, key), start=1)]


def run_rows(library: DocumentLibrary, kb: str) -> list[list]:
    rows = []
    for r in library.runs(kb):
        failed = "; ".join(f"{Path(f['path']).name}: {f['reason']}" for f in (r["report"] or {}).get("failed", []))
        rows.append([r["id"], r["started"], r["finished"] or "", r["status"], r["summary"], failed])
    return rows


def build_admin_app(assistant: Assistant):
    library = DocumentLibrary(assistant)
    q = assistant.queue

    def admin_of(request: gr.Request | None) -> str:
        try:
            return require_admin(q, getattr(request, "username", None) if request else None)
        except KBError as exc:
            raise gr.Error(str(exc)) from None

    def kb_choices(request: gr.Request):
        admin_of(request)
        kbs = assistant.knowledge_bases()
        return gr.update(choices=kbs, value=kbs[0] if kbs else None), gr.update(choices=[ALL, *kbs], value=ALL)

    with gr.Blocks(title="kb-assistant · admin") as app:
        gr.Markdown("## Admin · 知识库管理\nKnowledge bases, their documents and what people ask. "
                    "Agents work the tickets in the [agent console](/console).")  # fmt: skip
        with gr.Tab("Documents", id="documents"):
            with gr.Row():
                kb = gr.Dropdown([], label="Knowledge base", scale=2, elem_id="admin-kb")
                new_kb = gr.Textbox(label="New knowledge base", placeholder="hr-policies", scale=2)
                create = gr.Button("Create", scale=0)
            message = gr.Markdown(elem_id="admin-message")
            files = gr.File(label="Upload documents (drag and drop; several at once)", file_count="multiple",
                            elem_id="admin-upload")  # fmt: skip
            upload = gr.Button("Upload and ingest", variant="primary", elem_id="admin-ingest")
            progress = gr.Markdown(elem_id="admin-progress")
            gr.Markdown("### Documents")
            docs = gr.Dataframe(headers=DOC_COLUMNS, interactive=False, wrap=True, elem_id="admin-docs")
            with gr.Row():
                key = gr.Textbox(label="Document (click a row)", scale=3, elem_id="admin-doc-key")
                show = gr.Button("Show chunks", scale=0)
                delete = gr.Button("Delete document", variant="stop", scale=0, elem_id="admin-delete")
                restore = gr.Button("Restore", scale=0, elem_id="admin-restore")
            chunk_title = gr.Markdown()
            chunks = gr.Dataframe(headers=CHUNK_COLUMNS, interactive=False, wrap=True, elem_id="admin-chunks")
            gr.Markdown("### Sources and ingest runs")
            with gr.Row():
                source = gr.Dropdown([], label="Remembered source", scale=3)
                resync = gr.Button("Re-sync", scale=0)
            runs = gr.Dataframe(headers=RUN_COLUMNS, interactive=False, wrap=True)

        with gr.Tab("Dashboard", id="dashboard"):
            with gr.Row():
                dash_kb = gr.Dropdown([ALL], value=ALL, label="Knowledge base")
                days = gr.Number(value=30, label="Last N days", precision=0, minimum=1)
                dash_refresh = gr.Button("Refresh", scale=0, elem_id="dash-refresh")
            totals = gr.Markdown(elem_id="dash-totals")
            with gr.Row():
                questions_plot = gr.LinePlot(**DAY_AXIS, y="questions", title="Questions per day")
                outcomes_plot = gr.BarPlot(**DAY_AXIS, y="count", color="outcome", title="Answered vs escalated",
                                           )  # fmt: skip
            with gr.Row():
                tokens_plot = gr.BarPlot(**DAY_AXIS, y="llm_tokens", title="LLM tokens per day")
                cost_plot = gr.LinePlot(**DAY_AXIS, y="cost", title="Estimated LLM cost per day ($)")
            with gr.Row():
                cache_plot = gr.BarPlot(**DAY_AXIS, y="cache_hits", title="Cache hits per day")
                reasons_plot = gr.BarPlot(x="reason", y="count", title="Escalations by reason", height=250,
                                          y_lim=[0, None])  # fmt: skip
            top_q = gr.Dataframe(label="Top questions", interactive=False, wrap=True, elem_id="dash-top")
            gaps = gr.Dataframe(label="Top unanswered gaps, grouped by meaning", interactive=False, wrap=True,
                                elem_id="dash-gaps")  # fmt: skip
            gr.Markdown("The gap log of `kb gaps`, with the other wordings of each gap: work them in the "
                        "[agent console › Gaps](/console) — answer once, add the answer to the KB.")  # fmt: skip
            with gr.Row():
                cited = gr.Dataframe(label="Most cited documents", interactive=False)
                never = gr.Dataframe(label="Never cited documents", interactive=False)
            comments = gr.Dataframe(label="👍/👎 comments", interactive=False, wrap=True)
            csv_file = gr.File(label="CSV export")

        accounts_load = users_tab(assistant, admin_of)
        app.load(**accounts_load)

        # --- documents ------------------------------------------------------------------------------------
        def listing(kb_name, request: gr.Request):
            admin_of(request)
            if not kb_name:
                return [], gr.update(choices=[], value=None), []
            try:
                srcs = library.sources(kb_name)
                return (doc_rows(library, kb_name), gr.update(choices=srcs, value=srcs[0] if srcs else None),
                        run_rows(library, kb_name))  # fmt: skip
            except KBError as exc:
                raise gr.Error(str(exc)) from None

        refresh_docs = {"fn": listing, "inputs": kb, "outputs": [docs, source, runs]}
        app.load(kb_choices, None, [kb, dash_kb]).then(**refresh_docs)
        kb.change(**refresh_docs)

        def do_create(name, request: gr.Request):
            admin_of(request)
            try:
                made = library.create_kb(name)
            except KBError as exc:
                return f"⚠️ {_e(exc)}", gr.update(), gr.update()
            kbs = assistant.knowledge_bases()
            return (f"Created knowledge base **{_e(made)}**: upload documents into it.",
                    gr.update(choices=kbs, value=made), gr.update(choices=[ALL, *kbs]))  # fmt: skip

        create.click(do_create, new_kb, [message, kb, dash_kb])

        def do_upload(kb_name, paths, request: gr.Request):
            """Streams a line per file as the pipeline settles it, then the run's report."""
            admin_of(request)
            if not kb_name:
                yield "⚠️ Pick or create a knowledge base first.", gr.update()
                return
            paths = [p if isinstance(p, str) else getattr(p, "name", str(p)) for p in (paths or [])]
            if not paths:
                yield "⚠️ Choose one or more files to upload.", gr.update()
                return
            events: queue_mod.Queue = queue_mod.Queue()
            outcome: dict = {}

            def work():
                try:
                    outcome["result"] = library.upload(
                        kb_name, [(Path(p).name, Path(p)) for p in paths], on_file=lambda n, err: events.put((n, err))
                    )
                except KBError as exc:
                    outcome["error"] = str(exc)
                finally:
                    events.put(None)

            threading.Thread(target=work, daemon=True).start()
            lines = [f"Ingesting {len(paths)} file(s) into **{_e(kb_name)}** …"]
            yield "\n\n".join(lines), gr.update()
            while (event := events.get()) is not None:
                name, err = event
                lines.append(f"- ❌ `{_e(name)}` — {_e(err)}" if err else f"- ✅ `{_e(name)}` ingested")
                yield "\n".join(lines), gr.update()
            if "error" in outcome:
                lines.append(f"⚠️ {_e(outcome['error'])}")
            else:
                result = outcome["result"]
                done = "**Done.**" if not result.refused else f"**Done; {len(result.refused)} file(s) refused.**"
                lines.append(f"\n{done} {_e(report_line(result.report))}")
            yield "\n".join(lines), doc_rows(library, kb_name)

        upload.click(do_upload, [kb, files], [progress, docs]).then(**refresh_docs)

        def pick(kb_name, evt: gr.SelectData, request: gr.Request):
            admin_of(request)
            rows = library.documents(kb_name) if kb_name else []
            n = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
            return rows[n].key if isinstance(n, int) and 0 <= n < len(rows) else ""

        docs.select(pick, kb, key)

        def do_show(kb_name, doc_key, request: gr.Request):
            admin_of(request)
            try:
                rows = chunk_rows(library, kb_name, doc_key)
            except KBError as exc:
                return f"⚠️ {_e(exc)}", []
            return f"**{_e(doc_key.rpartition('::')[2])}**: {len(rows)} chunk(s), as the KB holds them", rows

        show.click(do_show, [kb, key], [chunk_title, chunks])
        key.submit(do_show, [kb, key], [chunk_title, chunks])

        def do_delete(kb_name, doc_key, request: gr.Request):
            admin = admin_of(request)
            try:
                report = library.delete(kb_name, doc_key, by=admin)
            except KBError as exc:
                return f"⚠️ {_e(exc)}", gr.update(), gr.update()
            name = doc_key.rpartition("::")[2]
            return f"Deleted **{_e(name)}**. {_e(report_line(report))}", doc_rows(library, kb_name), ""

        delete.click(do_delete, [kb, key], [message, docs, key]).then(**refresh_docs)

        def do_restore(kb_name, doc_key, request: gr.Request):
            admin_of(request)
            try:
                report = library.restore(kb_name, doc_key)
            except KBError as exc:
                return f"⚠️ {_e(exc)}", gr.update()
            name = doc_key.rpartition("::")[2]
            return f"Restored **{_e(name)}**. {_e(report_line(report))}", doc_rows(library, kb_name)

        restore.click(do_restore, [kb, key], [message, docs]).then(**refresh_docs)

        def do_resync(kb_name, root, request: gr.Request):
            admin_of(request)
            try:
                report = library.resync(kb_name, root)
            except KBError as exc:
                return f"⚠️ {_e(exc)}"
            failed = "".join(f"\n- ❌ `{_e(Path(f.path).name)}` — {_e(f.reason)}" for f in report.failed)
            return f"Re-synced `{_e(root)}`. {_e(report_line(report))}{failed}"

        resync.click(do_resync, [kb, source], message).then(**refresh_docs)

        # --- dashboard ------------------------------------------------------------------------------------
        def load_dashboard(kb_name, n_days, request: gr.Request):
            from ui.dashboard import dashboard_for, write_csv

            admin_of(request)
            d = dashboard_for(assistant, None if kb_name in (ALL, "", None) else kb_name, float(n_days or 30))
            t = d.totals
            text = (
                f"**{t['questions']}** questions · **{t['answered']}** answered ({t['answered_share']:.0%}) · "
                f"**{t['escalated']}** escalated · cache hits **{t['cache_hits']}** (saved ≈{t['cache_saved_s']} s, "
                f"≈{t['cache_saved_tokens_est']} LLM tokens) · 👍 **{t['thumbs_up']}** 👎 **{t['thumbs_down']}** · "
                f"answer time median **{t['median_ms']} ms**, p95 **{t['p95_ms']} ms** · LLM tokens "
                f"**{t['llm_tokens']}**, estimated cost **${t['cost']:.4f}**"
            )
            path = write_csv(d, Path(tempfile.mkdtemp(prefix="kb-dash-")) / "dashboard.csv")
            return (text, d.per_day, d.outcomes, d.per_day, d.per_day, d.per_day, d.reasons, d.top_questions,
                    d.top_gaps, d.most_cited, d.never_cited, d.comments, str(path))  # fmt: skip

        dash_outputs = [totals, questions_plot, outcomes_plot, tokens_plot, cost_plot, cache_plot, reasons_plot,
                        top_q, gaps, cited, never, comments, csv_file]  # fmt: skip
        dash_refresh.click(load_dashboard, [dash_kb, days], dash_outputs)
        dash_kb.change(load_dashboard, [dash_kb, days], dash_outputs)
    return app


def mount_admin(app, assistant: Assistant) -> None:
    """The admin HTTP API at /admin/api and the admin pages at /admin (admins only)."""
    from ui.admin_api import admin_router

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app.include_router(admin_router(assistant))
    gr.mount_gradio_app(
        app, build_admin_app(assistant), path="/admin", footer_links=[], auth=admin_login(assistant.queue),
        auth_message="kb-assistant admin: sign in as an admin (kb user add NAME --role admin)",
    )  # fmt: skip
