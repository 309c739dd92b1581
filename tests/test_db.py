"""One database layer: every store we own keeps its schema by Alembic migrations on one engine factory, adopts a
database an earlier release wrote (rows kept), and the ledger runs on Postgres as on SQLite."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from ingest.ledger import MIGRATIONS as LEDGER_MIGRATIONS
from ingest.ledger import Base as LedgerBase
from ingest.ledger import DocumentChange, Ledger, commit_version
from kb_assistant import db
from kb_assistant.cache.database import MIGRATIONS as CACHE_MIGRATIONS
from kb_assistant.cache.semantic import SemanticCache
from kb_assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BIG_MTIME_NS = 1_764_000_000_123_456_789  # a 2025 mtime in nanoseconds: needs 64 bits


def _record_a_document(ledger: Ledger, kb: str = "hr") -> None:
    run_id, _ = ledger.start_run(kb)
    change = DocumentChange(
        root="/docs", path="leave.md", size=5_000_000_000, mtime_ns=BIG_MTIME_NS, content_hash="ab" * 32,
        status="done", chunk_ids=["c1", "c2"], config="cfg",
    )  # fmt: skip
    commit_version(ledger, kb, run_id, [change], added=["c1", "c2"], removed=[], version=1)
    ledger.finish_run(run_id, {"added": 2})


def test_a_new_ledger_is_built_by_its_migrations_exactly_as_its_models_say(tmp_path):
    ledger = Ledger(Settings(data_dir=tmp_path / "d"))
    assert LEDGER_MIGRATIONS.drift(ledger.engine, LedgerBase.metadata) == []
    assert LEDGER_MIGRATIONS.current(ledger.engine) == LEDGER_MIGRATIONS.head() == "ledger_0002_source_groups"
    _record_a_document(ledger)
    [doc] = ledger.documents("hr")
    assert (doc.size, doc.mtime_ns, doc.chunk_ids) == (5_000_000_000, BIG_MTIME_NS, ["c1", "c2"])
    assert ledger.latest_version("hr") == 1 and [r.status for r in ledger.runs("hr")] == ["finished"]


def test_a_ledger_written_before_it_had_migrations_is_adopted_with_its_rows(tmp_path):
    from sqlalchemy import create_engine

    data = tmp_path / "d"
    data.mkdir()
    old = create_engine(f"sqlite:///{data / 'ingest.sqlite'}")  # what the release before this one did
    LedgerBase.metadata.create_all(old)
    with old.begin() as conn:
        conn.exec_driver_sql("INSERT INTO sources (kb, root, added_at) VALUES ('hr', '/handbook', 1.0)")
    old.dispose()
    ledger = Ledger(Settings(data_dir=data))
    assert [(s.kb, s.root) for s in ledger.sources()] == [("hr", "/handbook")]
    assert LEDGER_MIGRATIONS.current(ledger.engine) == LEDGER_MIGRATIONS.head()
    _record_a_document(ledger)  # and it goes on working
    assert [d.path for d in ledger.documents("hr")] == ["leave.md"]


OLD_CACHE_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache_entries (
    id INTEGER PRIMARY KEY,
    kb TEXT NOT NULL, language TEXT NOT NULL, key TEXT NOT NULL, question TEXT NOT NULL,
    model TEXT NOT NULL, embedding BLOB NOT NULL,
    answer TEXT NOT NULL, chunk_ids TEXT NOT NULL, kb_version INTEGER NOT NULL, origin TEXT NOT NULL,
    created_at REAL NOT NULL, last_hit_at REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0,
    full_ms REAL NOT NULL DEFAULT 0, saved_ms REAL NOT NULL DEFAULT 0,
    UNIQUE (kb, language, key)
);
CREATE TABLE IF NOT EXISTS cache_served (answer_id TEXT PRIMARY KEY, entry_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS cache_served_entry ON cache_served (entry_id);
CREATE TABLE IF NOT EXISTS cache_refused (kb TEXT, language TEXT, key TEXT, chunk_ids TEXT,
    PRIMARY KEY (kb, language, key, chunk_ids));
CREATE TABLE IF NOT EXISTS cache_counters (kb TEXT, name TEXT, value REAL NOT NULL, PRIMARY KEY (kb, name));
"""  # what the cache created for itself, inline, before it had migrations


def test_a_cache_file_written_before_it_had_migrations_keeps_its_entries(tmp_path, embeddings):
    from kb_assistant.schema import Answer

    data = tmp_path / "d"
    data.mkdir()
    answer = Answer(
        id="a-old", question="How long is annual leave?", text="Annual leave is 25 days.", answered=True, confidence=0.9
    )
    with sqlite3.connect(data / "cache.sqlite3") as conn:
        conn.executescript(OLD_CACHE_SCHEMA)
        conn.execute(
            "INSERT INTO cache_entries (kb, language, key, question, model, embedding, answer, chunk_ids, kb_version,"
            " origin, created_at, last_hit_at, hits) VALUES ('hr', 'en', 'k', 'How long is annual leave?', 'default',"
            " x'00', ?, '[]', 1, 'answer', 1.0, 2.0, 3)", (answer.model_dump_json(),),
        )  # fmt: skip
        conn.execute("INSERT INTO cache_counters VALUES ('hr', 'lookups', 7)")
    cache = SemanticCache(Settings(data_dir=data), embeddings)
    try:
        [entry] = cache.entries("hr")
        assert (entry.question, entry.answer, entry.hits) == ("How long is annual leave?", answer.text, 3)
        assert cache.stats("hr").lookups == 7
        assert CACHE_MIGRATIONS.current(cache.db.engine) == CACHE_MIGRATIONS.head()
    finally:
        cache.close()


WORKER = r"""
import sys
from pathlib import Path
from ingest.ledger import Ledger
from kb_assistant.settings import Settings
go = Path(sys.argv[2])
while not go.exists():
    pass
Ledger(Settings(data_dir=Path(sys.argv[1]))).remember_source("hr", sys.argv[3])
"""


def test_processes_starting_at_once_on_a_new_ledger_migrate_it_once_and_all_work(tmp_path):
    data, go = tmp_path / "d", tmp_path / "go"
    data.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(data), str(go), f"/root{i}"], cwd=ROOT, stderr=subprocess.PIPE
        )
        for i in range(4)
    ]
    go.touch()
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    with sqlite3.connect(data / "ingest.sqlite") as conn:
        assert conn.execute("SELECT version_num FROM ledger_alembic_version").fetchall() == [
            (LEDGER_MIGRATIONS.head(),)
        ]
        assert sorted(r for (r,) in conn.execute("SELECT root FROM sources")) == [f"/root{i}" for i in range(4)]


def test_the_stores_keep_their_revisions_apart_in_one_database(tmp_path):
    """Queue, ledger, cache and published KB state in one database (as on a shared Postgres): each history has its
    own version table."""
    from kb_assistant.queue.database import MIGRATIONS as QUEUE_MIGRATIONS
    from kb_assistant.store.published import MIGRATIONS as PUBLICATION_MIGRATIONS

    engine = db.engine(db.sqlite_url(tmp_path / "one.db"))
    histories = (QUEUE_MIGRATIONS, LEDGER_MIGRATIONS, CACHE_MIGRATIONS, PUBLICATION_MIGRATIONS)
    for migrations in histories:
        migrations.upgrade(engine)
    assert [m.current(engine) for m in histories] == [
        QUEUE_MIGRATIONS.head(), LEDGER_MIGRATIONS.head(), CACHE_MIGRATIONS.head(), "publication_0001",
    ]  # fmt: skip
    from sqlalchemy import inspect

    tables = set(inspect(engine).get_table_names())
    assert {"tickets", "answer_log", "documents", "runs", "cache_entries", "cache_counters", "published_kbs"} <= tables


def test_the_ledger_runs_on_postgres_with_64_bit_sizes_and_times(tmp_path, pg_url):
    ledger = Ledger(Settings(data_dir=tmp_path / "d"), url=pg_url)
    try:
        assert LEDGER_MIGRATIONS.drift(ledger.engine, LedgerBase.metadata) == []
        _record_a_document(ledger)
        [doc] = ledger.documents("hr")
        assert (doc.size, doc.mtime_ns) == (5_000_000_000, BIG_MTIME_NS)
        assert ledger.live_chunk_ids("hr") == {"c1", "c2"} and ledger.latest_version("hr") == 1
        assert Ledger(Settings(data_dir=tmp_path / "d"), url=pg_url).kbs() == ["hr"]  # a second process's view
    finally:
        ledger.engine.dispose()


def test_two_stores_migrating_at_once_in_one_process_both_succeed(tmp_path):
    """A server's first requests migrate the queue (a "转人工" opens a ticket) and the cache (a question) at the same
    moment, in two threads. Alembic keeps the running migration's context in module globals: here the cache's
    migration runs start to end while the queue's is half-way through, which, unserialised, fails one of them
    (``KeyError`` from Alembic, a 500 for the user)."""
    import threading

    from sqlalchemy import event

    from kb_assistant.queue.database import MIGRATIONS as QUEUE_MIGRATIONS

    queue_engine = db.engine(db.sqlite_url(tmp_path / "queue.db"))
    cache_engine = db.engine(db.sqlite_url(tmp_path / "cache.sqlite3"))
    cache_done, errors = threading.Event(), []

    def migrate(migrations, engine):
        try:
            migrations.upgrade(engine)
        except Exception as exc:  # noqa: BLE001 - what the test reports
            errors.append(exc)

    def migrate_the_cache():
        migrate(CACHE_MIGRATIONS, cache_engine)
        cache_done.set()

    cache_thread = threading.Thread(target=migrate_the_cache)

    @event.listens_for(queue_engine, "before_cursor_execute")
    def _in_the_middle(conn, cursor, statement, *args):  # the queue's migration has begun its first query
        if not statement.startswith("BEGIN") and cache_thread.ident is None:
            cache_thread.start()
            # the cache's migration runs whole here, unless it has to wait for this one (then it runs after it)
            cache_done.wait(timeout=3)

    try:
        migrate(QUEUE_MIGRATIONS, queue_engine)
        cache_thread.join(timeout=60)
    finally:
        event.remove(queue_engine, "before_cursor_execute", _in_the_middle)
        db.dispose(db.sqlite_url(tmp_path / "queue.db"))
        db.dispose(db.sqlite_url(tmp_path / "cache.sqlite3"))
    assert errors == []
    assert QUEUE_MIGRATIONS.current(db.engine(db.sqlite_url(tmp_path / "queue.db"))) == QUEUE_MIGRATIONS.head()
    assert CACHE_MIGRATIONS.current(db.engine(db.sqlite_url(tmp_path / "cache.sqlite3"))) == CACHE_MIGRATIONS.head()


def test_a_server_migrates_the_queue_and_the_cache_before_its_first_request(tmp_path, embeddings):
    """``kb serve`` warms up before it listens: the stores' migrations are not left to the first requests' threads."""
    from kb_assistant.assistant import Assistant
    from kb_assistant.queue.database import MIGRATIONS as QUEUE_MIGRATIONS
    from ui.server import warm_up

    settings = Settings(data_dir=tmp_path / "d")
    warm_up(Assistant(settings, embeddings=embeddings))
    assert QUEUE_MIGRATIONS.current(db.engine(db.sqlite_url(settings.path("queue.db")))) == QUEUE_MIGRATIONS.head()
    assert CACHE_MIGRATIONS.current(db.engine(db.sqlite_url(settings.path("cache.sqlite3")))) == CACHE_MIGRATIONS.head()
