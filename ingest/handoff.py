"""One writer for an embedded data dir: while `kb serve` runs on it, `kb ingest` hands its job to the server.

Embedded Chroma (no ``KB_CHROMA_URL``) is single-process: vectors another process writes are invisible to the
server's open client, and its questions then fail (``InternalError: Error finding id``). So the server records
itself in the data dir — an fcntl lock held for its lifetime (released by the OS if it dies) and ``server.json``
(pid, port, a random local token; mode 0600) — and an ingest on that data dir POSTs the job to the server on
127.0.0.1, which runs the same pipeline in its own process and publishes the KB version itself. An ingest that
cannot reach it is refused with a message naming the server and the fix; never a silent break.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kb_assistant.errors import KBError
from kb_assistant.files import write_atomic
from kb_assistant.settings import Settings

SERVER_FILE = "server.json"
TOKEN_HEADER = "X-KB-Local-Token"
INGEST_PATH = "/api/local/ingest"


class ServerRunning(KBError):
    """A server owns this embedded data dir and the job could not be handed to it."""


@dataclass
class RunningServer:
    pid: int
    port: int
    token: str

    def describe(self) -> str:
        return f"kb serve (pid {self.pid}, port {self.port})"


def _lock_path(settings: Settings) -> Path:
    return settings.path("locks", "server.lock")


@contextmanager
def registered_server(settings: Settings, port: int) -> Iterator[str | None]:
    """Held by `kb serve` while it runs: yields the local token ingests must send (None with a Chroma server,
    which any number of processes may write)."""
    if settings.chroma_url:
        yield None
        return
    fd = os.open(_lock_path(settings), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = running_server(settings)
            raise ServerRunning(
                f"another {other.describe() if other else 'kb serve'} already serves this data dir with embedded "
                "Chroma, which allows one process: stop it, or give this one its own KB_DATA_DIR"
            ) from None
        token = secrets.token_urlsafe(32)
        record = settings.path(SERVER_FILE)
        write_atomic(record, json.dumps({"pid": os.getpid(), "port": port, "token": token}), mode=0o600)
        try:
            yield token
        finally:
            record.unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the lock


def running_server(settings: Settings) -> RunningServer | None:
    """The server that owns this embedded data dir, if one runs in another process."""
    if settings.chroma_url or not _lock_path(settings).exists():
        return None
    fd = os.open(_lock_path(settings), os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None  # nobody holds it: no server (a stale server.json is left by a killed one)
        except BlockingIOError:
            pass
    finally:
        os.close(fd)
    try:
        info = json.loads(settings.path(SERVER_FILE).read_text(encoding="utf-8"))
        server = RunningServer(pid=int(info["pid"]), port=int(info["port"]), token=str(info["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        server = RunningServer(pid=0, port=0, token="")  # starting up: the record is not written yet
    return None if server.pid == os.getpid() else server


def refuse_if_served(settings: Settings) -> None:
    """The pipeline's guard: writing an embedded data dir that another process serves is refused."""
    server = running_server(settings)
    if server is not None:
        raise ServerRunning(_refusal(settings, server, "this ingest would write under it"))


def _refusal(settings: Settings, server: RunningServer, why: str) -> str:
    return (
        f"{server.describe()} is serving this data dir with embedded Chroma, which allows one writer, and {why}: "
        "stop the server and ingest again, or run a Chroma server (chroma run --path DIR) and point both at it "
        "with KB_CHROMA_URL"
    )


def hand_off(settings: Settings, server: RunningServer, job: dict) -> list[dict]:
    """Run ``job`` in the server (it waits for the whole ingest); returns the reports as dicts."""
    import httpx

    if not server.port or not server.token:
        raise ServerRunning(_refusal(settings, server, "it is still starting up (try again in a moment)"))
    try:
        r = httpx.post(
            f"http://127.0.0.1:{server.port}{INGEST_PATH}", json=job, headers={TOKEN_HEADER: server.token},
            timeout=httpx.Timeout(None, connect=10.0),
        )  # fmt: skip
    except httpx.HTTPError as exc:
        raise ServerRunning(_refusal(settings, server, f"it could not be reached on 127.0.0.1 ({exc})")) from None
    if r.status_code != 200:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {r.status_code}"
        if r.status_code < 500 and r.status_code not in (401, 403, 404):
            raise KBError(message)  # the job itself was refused (an unknown source, a bad KB name …)
        raise ServerRunning(_refusal(settings, server, f"it did not take the job ({message})"))
    return r.json()["reports"]


def token_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given)
