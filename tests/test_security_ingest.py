"""`kb ingest` from another process while `kb serve` runs on the same embedded data dir: the job is handed to the
server (one writer for embedded Chroma), or refused naming the server and the fix; /healthz fails when questions
would. Real processes: the server runs in this test's process on 127.0.0.1, `kb ingest` in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from kb_assistant.assistant import Assistant
from kb_assistant.settings import Settings
from kb_assistant.store.publication import read_state
from kb_assistant.store.published import PublishedKB, PublishedStore
from ui.server import build_app, running, warm_up

REPO = Path(__file__).resolve().parent.parent
PARKING = "Parking\n\nThe staff car park is on level B2. The parking permit code for visitors is ZEBRA-42.\n"


@pytest.fixture
def data_dir(sample_data_dir, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(sample_data_dir, target)
    return target


@pytest.fixture
def new_doc(tmp_path):
    folder = tmp_path / "new-docs"
    folder.mkdir()
    (folder / "parking.md").write_text(PARKING, encoding="utf-8")
    return folder


def kb_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(KB_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "kb_assistant.cli", *args], env=env, cwd=data_dir.parent, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def test_kb_ingest_while_the_server_runs_is_handed_to_it_and_questions_reach_the_new_chunks(
    data_dir, new_doc, embeddings
):
    from fastapi.testclient import TestClient

    from ingest.handoff import registered_server

    settings = Settings(data_dir=data_dir, cache_enabled=False)
    assistant = Assistant(settings, embeddings=embeddings)
    warm_up(assistant)
    app = build_app(assistant, mount_ui=False)
    with running(app) as url, registered_server(settings, int(url.rsplit(":", 1)[1])) as token:
        app.state.local_token = token
        assert (data_dir / "server.json").stat().st_mode & 0o777 == 0o600  # the local token is the owner's only
        done = kb_cli(data_dir, "ingest", str(new_doc), "--kb", "default")
        assert done.returncode == 0, done.stderr
        assert "handing the ingest to it" in done.stderr and "knowledge base 'default'" in done.stdout
        assert "1 added" in done.stdout

        client = TestClient(app)
        r = client.post("/api/ask", json={"question": "What is the parking permit code for visitors?"})
        assert r.status_code == 200, r.text
        assert r.json()["answered"] and "ZEBRA-42" in r.json()["text"]
        assert r.json()["citations"][0]["source"] == "parking.md"
        assert client.get("/healthz").status_code == 200
        # the local endpoint takes jobs only with the server's token
        assert client.post("/api/local/ingest", json={"paths": [str(new_doc)]}).status_code == 403
    assert not (data_dir / "server.json").exists()  # the server record goes with the server


def test_kb_ingest_refuses_naming_the_servers_pid_and_port_when_it_cannot_hand_off(data_dir, new_doc):
    from ingest.handoff import ServerRunning, running_server
    from ingest.pipeline import sync_sources

    version = read_state(Settings(data_dir=data_dir), "default")["version"]
    holder = subprocess.Popen(  # a server that holds the data dir but does not listen (port 9 is discard)
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from kb_assistant.settings import "
         "Settings; from ingest.handoff import registered_server\n"
         "with registered_server(Settings(data_dir=Path(sys.argv[1])), 9):\n    print('ready', flush=True); "
         "time.sleep(300)", str(data_dir)],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        done = kb_cli(data_dir, "ingest", str(new_doc), "--kb", "default")
        assert done.returncode == 2
        message = " ".join(done.stderr.split())
        assert f"pid {holder.pid}" in message and "port 9" in message and "KB_CHROMA_URL" in message
        assert "stop the server" in message and "Traceback" not in done.stderr
        with pytest.raises(ServerRunning, match=f"pid {holder.pid}"):  # the Python API refuses too
            sync_sources(Settings(data_dir=data_dir), [new_doc], "default")
    finally:
        holder.kill()
        holder.wait()
    assert read_state(Settings(data_dir=data_dir), "default")["version"] == version  # nothing was written
    assert running_server(Settings(data_dir=data_dir)) is None  # a killed server's record is stale: ignored


def test_healthz_fails_when_a_kb_was_changed_behind_the_embedded_servers_back(data_dir, embeddings):
    from fastapi.testclient import TestClient

    assistant = Assistant(Settings(data_dir=data_dir, cache_enabled=False), embeddings=embeddings)
    with TestClient(build_app(assistant, mount_ui=False)) as client:
        assert client.get("/healthz").status_code == 200
        store = PublishedStore(Settings(data_dir=data_dir))
        state = store.head("sales").state
        state.update(writer_pid=1, published_at=time.time())  # another process published
        with store.engine.begin() as conn:
            conn.execute(update(PublishedKB).where(PublishedKB.kb == "sales").values(state=state, stamp="other"))
        r = client.get("/healthz")
        assert r.status_code == 503
        assert "'sales'" in r.json()["error"] and "another process" in r.json()["error"]
        assert str(data_dir) not in r.text


def test_a_second_server_on_the_same_embedded_data_dir_is_refused(data_dir):
    from ingest.handoff import ServerRunning, registered_server

    settings = Settings(data_dir=data_dir)
    with (
        registered_server(settings, 7000),
        pytest.raises(ServerRunning, match="already serves this data dir"),
        registered_server(settings, 7001),
    ):
        pass
