"""Crash safety and live reads: `kill -9` of a real `kb ingest` followed by a re-run gives the index a clean run
gives (ledger and published state in the data dir's SQLite, or in Postgres); vectors not yet published are never
seen; questions asked while an ingest runs all succeed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.ledger import Ledger
from ingest.pipeline import sync_sources
from kb_assistant.assistant import Assistant
from kb_assistant.retrieval import hybrid_search
from kb_assistant.schema import Chunk
from kb_assistant.settings import Settings
from kb_assistant.store import KnowledgeBase
from kb_assistant.store.publication import read_state

REPO = Path(__file__).resolve().parents[1]
TOPICS = ["parking", "lunch", "printers", "badges", "lockers", "showers", "mail", "visitors", "bikes", "plants"]


def make_corpus(folder: Path, n: int) -> None:
    """n small markdown files, two sections each: many small publishes in a short run."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        (folder / f"{topic}-{i:03d}.md").write_text(
            f"# {topic.title()} rule {i}\n\n## Where\n\nThe {topic} desk number {i} is on floor {i % 7 + 1}.\n\n"
            f"## When\n\nThe {topic} service {i} opens at {8 + i % 3}:00 and closes at {17 + i % 4}:00.\n",
            encoding="utf-8",
        )


def index_snapshot(settings: Settings, kb: str, embeddings) -> tuple[list[str], list[str]]:
    index = KnowledgeBase(settings, kb, embeddings)
    return sorted(index.live_ids()), sorted(index.vectors.stored_ids())


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the ingest ended before {what}: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {log.read_text()[-3000:]}"
        time.sleep(0.05)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_kill_9_mid_ingest_then_rerun_equals_a_clean_run_without_redoing_finished_work(
    tmp_path, embeddings, database, request
):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 16)
    data = tmp_path / "killed"
    url = request.getfixturevalue("pg_url") if database == "postgres" else None  # ledger and published state
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KB_DATA_DIR": str(data),
        "KB_INGEST_WORKERS": "2",
        "KB_INGEST_PUBLISH_CHUNKS": "4",
        "KB_INGEST_TEST_PAUSE_S": "0.2",
        **({"KB_DATABASE_URL": url} if url else {}),
    }
    cmd = [sys.executable, "-m", "kb_assistant.cli", "ingest", str(corpus), "--kb", "crash", "--json"]
    settings = Settings(data_dir=data, database_url=url)

    def published() -> int:
        return read_state(settings, "crash").get("version", 0)

    log = tmp_path / "ingest.log"
    ledger = None

    def committed() -> int:
        nonlocal ledger
        if ledger is None and (url or (data / "ingest.sqlite").exists()):
            ledger = Ledger(settings)
        return ledger.latest_version("crash") if ledger else 0

    # kill 1: right after the ledger committed version 2, before it was published
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        wait_for(lambda: committed() >= 2, 300, "v2 committed", proc, log)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -9
    # kill 2: the re-run, in the middle of a later batch (vectors written, not yet committed)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        wait_for(lambda: published() >= 4, 300, "v4 published", proc, log)
        time.sleep(0.3)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -9

    assert [r.status for r in ledger.runs("crash")] == ["running", "interrupted"]  # newest first: both died
    finished_docs = {d.path for d in ledger.documents("crash") if d.status == "done"}
    assert 4 <= len(finished_docs) < 16

    rerun = sync_sources(settings, [corpus], "crash")
    clean_settings = Settings(data_dir=tmp_path / "clean")
    clean = sync_sources(clean_settings, [corpus], "crash")

    assert rerun.failed == [] and clean.failed == []
    assert rerun.unchanged == len(finished_docs)  # finished work is not redone
    assert rerun.added == 16 - len(finished_docs)
    assert rerun.embedded <= rerun.chunks  # vectors the killed run wrote are reused
    live, stored = index_snapshot(settings, "crash", embeddings)
    clean_live, clean_stored = index_snapshot(clean_settings, "crash", embeddings)
    assert live == clean_live and len(live) == clean.total_chunks == 32  # same chunk ids
    assert stored == clean_stored  # no orphans, no duplicates
    assert len(set(stored)) == len(stored)
    assert sorted((d.path, tuple(d.chunk_ids)) for d in ledger.documents("crash")) == sorted(
        (d.path, tuple(d.chunk_ids)) for d in Ledger(clean_settings).documents("crash")
    )


def test_vectors_written_but_not_published_are_never_seen(settings, embeddings):
    index = KnowledgeBase(settings, "ahead", embeddings)
    live = Chunk(id="live-1", text="Visitors park in garage B2.", source="a.md", section="Parking")
    ahead = Chunk(id="ahead-1", text="Visitors park on the roof deck R9.", source="b.md", section="Parking")
    index.vectors.write([live])
    index.publish(1, {"live-1": ["visitors", "park", "garage", "b2"]})
    index.vectors.write([ahead])  # an ingest wrote it and has not published yet (or died)

    hits = hybrid_search(index, "Where do visitors park? roof deck", k=5)
    assert [c.chunk.id for c in hits] == ["live-1"]
    assert index.is_live(["live-1"]) and not index.is_live(["live-1", "ahead-1"])

    index.publish(2, {"live-1": ["visitors", "park", "garage", "b2"], "ahead-1": ["visitors", "roof", "deck", "r9"]})
    other_reader = KnowledgeBase(settings, "ahead", embeddings)
    assert other_reader.version == 2
    assert "ahead-1" in {c.chunk.id for c in hybrid_search(other_reader, "roof deck R9", k=5)}


def test_questions_asked_during_an_ingest_all_succeed_and_see_new_content_after(tmp_path, settings, embeddings):
    settings = settings.model_copy(update={"ingest_publish_chunks": 2, "ingest_test_pause_s": 0.05})
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "guest-parking.md").write_text(
        "# Guest parking\n\nVisitors park free for three hours in garage B2 with a code from reception.\n",
        encoding="utf-8",
    )
    sync_sources(settings, [folder], "live")
    make_corpus(folder, 14)
    (folder / "zz-archive.md").write_text("# Archive\n\nThe paper archive is in basement room K7.\n", encoding="utf-8")

    assistant = Assistant(settings, embeddings=embeddings)
    errors: list[BaseException] = []

    def run_ingest():
        try:
            sync_sources(settings, [folder], "live")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    ingest = threading.Thread(target=run_ingest)
    ingest.start()
    answers, versions = [], set()
    while ingest.is_alive():
        answers.append(assistant.ask("Where can visitors park?", kb="live"))
        versions.add(assistant.index("live").version)
    ingest.join()

    assert errors == []
    assert len(answers) >= 3 and len(versions) >= 2, (len(answers), versions)  # the asks overlapped publishes
    for a in answers:
        assert a.answered and "B2" in a.text and a.citations[0].source == "guest-parking.md", a
    after = assistant.ask("Where is the paper archive?", kb="live")  # the same Assistant sees the new version
    assert after.answered and "K7" in after.text
