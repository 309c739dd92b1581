"""The app's ASGI middleware: the request-body size limit (413 before the app reads a byte too many; larger for the
admin's uploads) and the per-route request metrics.
"""

from __future__ import annotations

import json
import time

from ui.api_errors import error_body
from ui.metrics import Metrics

# the admin's document uploads (signed-in admins only) may carry files up to KB_MAX_FILE_MB, several per request
ADMIN_UPLOAD_PATHS = ("/admin/gradio_api/upload", "/admin/api/kbs/")
ADMIN_UPLOAD_FILES = 10


class BodySizeLimitMiddleware:
    """Refuses request bodies over ``KB_MAX_REQUEST_BYTES`` with 413: by Content-Length before reading, else
    (a chunked body) by counting while it is read here, before the app sees any of it."""

    def __init__(self, app, limit: int, larger: dict[str, int] | None = None):
        self.app, self.limit, self.larger = app, limit, larger or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next((n for prefix, n in self.larger.items() if path.startswith(prefix)), self.limit)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(send, limit)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await self._refuse(send, limit)
                return
            if not message.get("more_body"):
                break
        replayed = [False]

        async def replay():
            if not replayed[0]:
                replayed[0] = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # later calls wait for the disconnect, as streaming responses do

        await self.app(scope, replay, send)

    async def _refuse(self, send, limit: int) -> None:
        setting = "KB_MAX_REQUEST_BYTES" if limit == self.limit else f"{ADMIN_UPLOAD_FILES} × KB_MAX_FILE_MB"
        body = json.dumps(error_body(
            f"the request body is over the limit of {limit} bytes ({setting}): send less",
            "invalid_request_error", "request_too_large",
        )).encode()  # fmt: skip
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class RequestMetricsMiddleware:
    """Counts requests by route template (not raw path: ticket ids must not become label values)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None)
            if path is None or "{rest:path}" in path:
                endpoint = "other"
            elif path in ("", "/") or not path.startswith(("/api", "/v1", "/healthz", "/metrics", "/widget")):
                endpoint = "ui"
            else:
                endpoint = path
            self.metrics.observe_request(endpoint, scope.get("method", ""), status[0], time.perf_counter() - start)
