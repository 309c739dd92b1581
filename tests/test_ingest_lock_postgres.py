"""One ingest per KB at a time across machines: with the ledger on Postgres, the KB's lock is a Postgres advisory
lock, so ingests from data dirs that share nothing on disk (two hosts) still take turns; a second one waits, or with
--no-wait exits 2 naming the holder; a holder that dies (kill -9) releases it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.ledger import IngestLocked, Ledger, kb_lock
from ingest.pipeline import sync_sources
from kb_assistant.cli import app
from kb_assistant.settings import Settings

REPO = Path(__file__).resolve().parents[1]
HOLDER = r"""
import sys, time
from pathlib import Path
from ingest.ledger import kb_lock
from kb_assistant.settings import Settings
with kb_lock(Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2]), "hr"):
    print("holding", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "lunch.md").write_text("# Lunch\n\nThe canteen serves lunch from noon on floor 3.\n", encoding="utf-8")
    return folder


def test_an_ingest_on_another_host_is_refused_naming_the_holder_until_the_holder_dies(
    tmp_path, pg_url, docs, embeddings, monkeypatch
):
    holder = subprocess.Popen(  # "host A": its own data dir, the shared database
        [sys.executable, "-c", HOLDER, str(tmp_path / "host-a"), pg_url],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    settings = Settings(data_dir=tmp_path / "host-b", database_url=pg_url)  # "host B": nothing shared on disk
    try:
        assert holder.stdout.readline().strip() == "holding"
        monkeypatch.setenv("KB_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("KB_DATABASE_URL", pg_url)
        refused = CliRunner().invoke(app, ["ingest", str(docs), "--kb", "hr", "--no-wait"])
        assert refused.exit_code == 2, refused.output
        message = " ".join(refused.stderr.split())
        assert f"another ingest of knowledge base 'hr' is running (pid {holder.pid} on {socket.gethostname()}" in (
            message
        )
        assert "Postgres advisory lock" in message and "Traceback" not in refused.stderr
        with pytest.raises(IngestLocked):
            sync_sources(settings, [docs], "hr", wait=False)
        assert Ledger(settings).runs("hr") == []  # the refused ingests did nothing
    finally:
        holder.kill()
        holder.wait()

    report = sync_sources(settings, [docs], "hr", wait=False)  # the holder died: its session's lock went with it
    assert report.added == 1


def test_a_second_ingest_waits_for_the_first_on_postgres(tmp_path, pg_url, docs, embeddings):
    first = Settings(data_dir=tmp_path / "host-a", database_url=pg_url)
    second = Settings(data_dir=tmp_path / "host-b", database_url=pg_url)
    held, said, order = threading.Event(), [], []

    def hold_briefly():
        with kb_lock(first, "hr"):
            held.set()
            time.sleep(1.0)
            order.append("first done")

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    held.wait()
    with kb_lock(second, "hr", say=said.append):
        order.append("second got it")
    holder.join()
    assert order == ["first done", "second got it"]
    assert said and "waiting" in said[0] and f"pid {os.getpid()}" in said[0]
    with kb_lock(second, "other-kb", wait=False), kb_lock(first, "hr", wait=False):
        pass  # one lock per KB: another KB's ingest does not wait
