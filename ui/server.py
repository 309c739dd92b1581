"""The one server: the FastAPI app, wired, with the operations and widget routes; health probes; `kb serve`.

``build_app`` puts together the errors (``ui.api_errors``), the API-key check (``ui.api_auth``), the /api routes
(``ui.api_routes``), the OpenAI-compatible /v1 routes (``ui.openai_routes``), the middleware (``ui.middleware``)
and the Gradio UIs. Nothing here retrieves or answers. Every error is JSON ``{"error": {"message", "type"}}`` (the
OpenAI shape, so OpenAI clients show the message); bad input is a 4xx, never a 500.

    POST /api/ask  /api/feedback  GET /api/tickets/{id}    ui/api_routes.py
    GET  /v1/models  POST /v1/chat/completions             ui/openai_routes.py
    GET  /healthz  /metrics       liveness (checks the vector store) and Prometheus metrics
    GET  /widget.js  /widget/demo the embeddable chat widget and a page that embeds it
    /admin  /admin/api            the admin pages and their HTTP API (admins only: ui/admin_app.py)
    /console  /                   the Gradio agent console (when present) and the Gradio chat
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Query
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from kb_assistant.apikeys import ApiKeyStore
from kb_assistant.assistant import Assistant
from kb_assistant.errors import public_message
from kb_assistant.settings import KB_NAME_RE, Settings
from ui.api_auth import api_key_dependency
from ui.api_errors import ApiError, install_error_handlers
from ui.api_routes import add_api_routes, add_local_ingest_route
from ui.metrics import Metrics
from ui.middleware import ADMIN_UPLOAD_FILES, ADMIN_UPLOAD_PATHS, BodySizeLimitMiddleware, RequestMetricsMiddleware
from ui.openai_routes import add_openai_routes

WIDGET_DIR = Path(__file__).parent / "widget"
log = logging.getLogger("kb_assistant.server")


def build_app(assistant: Assistant, settings: Settings | None = None, *, mount_ui: bool = True) -> FastAPI:
    settings = settings or assistant.settings
    keys = ApiKeyStore.for_settings(settings)
    metrics = Metrics(getattr(assistant, "llm_health", None))
    app = FastAPI(
        title="kb-assistant",
        version="0.1.0",
        description='Cited answers from your handbooks and FAQs. Errors: {"error": {"message", "type"}}. '
        "When API keys exist (kb apikey create), /api and /v1 need `Authorization: Bearer KEY`.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.assistant, app.state.metrics, app.state.keys = assistant, metrics, keys
    app.state.local_token = None  # set by serve(): lets `kb ingest` on this data dir hand its job to us

    install_error_handlers(app)  # errors as JSON
    api_key = api_key_dependency(keys)
    add_api_routes(app, assistant, settings, metrics, api_key)
    add_openai_routes(app, assistant, settings, metrics, api_key)

    # --- operations ---------------------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["operations"])
    def healthz():
        """200 when every knowledge base answers a real (cheap) vector-store probe, 503 otherwise, naming it."""
        try:
            kbs = assistant.knowledge_bases()
            for kb in kbs:
                probe_kb(assistant, kb)
        except Exception as exc:  # the store is down, or a KB would fail its questions: that is what this is for
            log.warning("healthz: %s: %s", type(exc).__name__, exc)
            return JSONResponse({"status": "error", "error": public_message(f"{type(exc).__name__}: {exc}")},
                                status_code=503)  # fmt: skip
        return {"status": "ok", "knowledge_bases": kbs}

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus_metrics():
        """Prometheus text format."""
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # --- the widget -------------------------------------------------------------------------------------------------
    @app.get("/widget.js", tags=["widget"], include_in_schema=False)
    def widget_js():
        return FileResponse(WIDGET_DIR / "widget.js", media_type="text/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})  # fmt: skip

    @app.get("/widget/demo", tags=["widget"], response_class=HTMLResponse)
    def widget_demo(
        kb: str = "default",
        lang: Literal["zh", "en"] = "zh",
        key: str = Query("", max_length=200),
        poll_ms: int = Query(10000, ge=1000, le=600_000),
    ):
        """A page that embeds the widget with one script tag (``?kb=sales&lang=en``)."""
        if not KB_NAME_RE.match(kb):
            raise ApiError(400, f"invalid knowledge-base name {kb!r}", "invalid_request_error", "invalid_kb_name")
        page = (WIDGET_DIR / "demo.html").read_text(encoding="utf-8")
        for name, value in (("LANG", lang), ("KB", kb), ("KEY", key), ("POLL_MS", str(poll_ms))):
            page = page.replace("{{" + name + "}}", html.escape(value, quote=True))
        return HTMLResponse(page)

    add_local_ingest_route(app, assistant, settings)

    # registered last, so the routes above match first
    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    def _no_such_endpoint(rest: str):  # JSON, not the chat UI's HTML 404
        raise ApiError(404, "no such endpoint: see /api/docs", "invalid_request_error", "not_found")

    # --- middleware: metrics inside, CORS outside (it answers pre-flight requests) ------------------------------
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    uploads = max(settings.max_request_bytes, int(settings.max_file_mb * 1e6) * ADMIN_UPLOAD_FILES)
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_request_bytes,
                       larger={p: uploads for p in ADMIN_UPLOAD_PATHS})  # fmt: skip
    origins = settings.allowed_origins
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"] if "*" in origins else origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Ticket-Token"],
        max_age=600,
    )

    if mount_ui:
        mount_gradio_uis(app, assistant)
    return app


def mount_gradio_uis(app, assistant: Assistant) -> None:
    """The admin pages at /admin, the agent console at /console (agents log in) and the chat at /."""
    import gradio as gr

    from ui.admin_app import mount_admin
    from ui.chat import build_chat_app
    from ui.console import build_console_app, console_auth

    mount_admin(app, assistant)  # /admin/api and the admin pages at /admin
    gr.mount_gradio_app(
        app, build_console_app(assistant), path="/console", footer_links=[], auth=console_auth(assistant.queue),
        auth_message="kb-assistant agent console: sign in as an agent (kb user add NAME --role agent)",
    )  # fmt: skip
    chat = build_chat_app(assistant).queue(default_concurrency_limit=8)
    gr.mount_gradio_app(app, chat, path="/", footer_links=[])


class KnowledgeBaseUnhealthy(Exception):
    pass


_STARTED_AT = time.time()


def probe_kb(assistant: Assistant, kb: str) -> None:
    """What a question does, cheaply: the collection answers a nearest-neighbour query with one of its own
    vectors. With embedded Chroma, a KB version published by another process is refused too: this process's
    Chroma cannot see what that process wrote, so questions reaching it would fail."""
    index = assistant.index(kb)
    state = index.state()
    writer = state.get("writer_pid")
    if (
        not assistant.settings.chroma_url
        and writer not in (None, os.getpid())
        and float(state.get("published_at", 0)) > _STARTED_AT
    ):
        raise KnowledgeBaseUnhealthy(
            f"knowledge base {kb!r} was changed by another process (pid {writer}) while this server runs on "
            "embedded Chroma: restart the server; ingest through it (kb ingest does while it runs) or use "
            "KB_CHROMA_URL"
        )
    index.vectors.probe()


def warm_up(assistant: Assistant) -> None:
    """Load the model and every KB's indexes, and open (migrate) the queue's and the cache's databases, before the
    first user waits (and before threads race to)."""
    assistant.embeddings  # noqa: B018
    assistant.chat_model  # noqa: B018 - the LLM client, when one is configured
    for kb in assistant.knowledge_bases():
        assistant.index(kb)
    assistant.queue.available()  # an unreachable queue database is not fatal: escalations are spooled
    if assistant.settings.cache_enabled:
        assistant.cache  # noqa: B018


def serve(settings: Settings) -> None:
    """`kb serve`: everything on one port."""
    import uvicorn

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ingest.handoff import registered_server

    assistant = Assistant(settings)
    with registered_server(settings, settings.port) as local_token:  # `kb ingest` elsewhere hands its job to us
        warm_up(assistant)
        app = build_app(assistant, settings)
        app.state.local_token = local_token
        print(f"kb-assistant on http://{settings.host}:{settings.port}  (API docs: /api/docs, widget demo: "
              "/widget/demo)", flush=True)  # fmt: skip
        # proxy_headers off: the peer address is the TCP peer's, which ui/principal checks against the SSO proxies
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5,
                    proxy_headers=False)  # fmt: skip


@contextmanager
def running(app, host: str = "127.0.0.1"):
    """Run ``app`` with uvicorn in a background thread on a free port; yields the base URL. For tests and
    benchmark scripts that need a real HTTP server in-process."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
