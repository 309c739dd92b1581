"""The database layer every store we own sits on: one engine factory and one way to keep a schema.

``engine(url)`` takes any SQLAlchemy URL and keeps one engine per URL per process. On SQLite it sets the pragmas
once for every store (WAL, a busy timeout, ``synchronous=NORMAL``, foreign keys) and issues ``BEGIN`` itself —
``BEGIN IMMEDIATE`` where the store asks for it, so a transaction that reads and then writes cannot be refused
half-way by another process's write.

``Migrations`` is a store's Alembic history (a folder of revisions, and the version table that records where a
database stands): ``upgrade(engine)`` brings a database to the newest revision on first use, serialised across
processes (SQLite's write lock, a Postgres advisory lock) and, within a process, one at a time: Alembic keeps the
running migration's context in module globals (``alembic.context``, ``alembic.op``), so two threads migrating at
once — the queue and the cache on a server's first requests — read each other's and fail (a ``KeyError`` when the
second removes what the first already removed). The stores: the human queue (``kb_assistant/migrations/
queue``), the semantic cache (``kb_assistant/migrations/cache``) and the ingest ledger (``ingest/migrations``).
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

MIGRATIONS_HOME = Path(__file__).resolve().parent / "migrations"  # env.py and the revision template
_ENGINES: dict[tuple, object] = {}
_ENGINES_LOCK = threading.Lock()
_UPGRADED: set[tuple[str, str, str]] = set()
_UPGRADED_LOCK = threading.Lock()
_ALEMBIC_LOCK = threading.RLock()  # Alembic's context is process-global: one migration at a time in a process


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def store_url(settings, default_file: str) -> str:
    """Where a store lives: ``KB_DATABASE_URL`` when set (every store in that one database, shared by every
    replica), else the store's own SQLite file in the data dir."""
    if settings.database_url and settings.database_url.strip():
        return settings.database_url.strip()
    return sqlite_url(settings.data_dir / default_file)


def _pragmas(dbapi_conn, busy_timeout_s: float) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's own is deferred, late)
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def sqlite_connection(path: Path, *, busy_timeout_s: float = 10.0):
    """A plain ``sqlite3`` connection with the same pragmas, for a hot path that does without the ORM (the
    cache's lookups); autocommit unless it issues ``BEGIN`` itself."""
    import sqlite3

    conn = sqlite3.connect(path, check_same_thread=False, timeout=busy_timeout_s)
    _pragmas(conn, busy_timeout_s)
    return conn


def engine(url: str, *, busy_timeout_s: float = 10.0, immediate: bool = True):
    """The process's engine for ``url``. ``immediate``: on SQLite, every transaction takes the write lock when it
    begins (for stores whose transactions read then write); otherwise only migrations do. A connection's
    ``execution_options(kb_write_lock=...)`` overrides it: a read-only query on an immediate engine need not wait
    for the lock, a read-then-write on a deferred one takes it."""
    from sqlalchemy import create_engine, event

    key = (url, float(busy_timeout_s), immediate)
    with _ENGINES_LOCK:
        if key in _ENGINES:
            return _ENGINES[key]
        if url.startswith("sqlite"):
            made = create_engine(url, connect_args={"timeout": busy_timeout_s, "check_same_thread": False})

            @event.listens_for(made, "connect")
            def _on_connect(dbapi_conn, _record):
                _pragmas(dbapi_conn, busy_timeout_s)

            @event.listens_for(made, "begin")
            def _on_begin(conn):  # the execution option kb_write_lock overrides the engine's default either way
                lock = conn.get_execution_options().get("kb_write_lock", immediate)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if lock else "BEGIN")

        else:
            made = create_engine(url, pool_pre_ping=True)
        _ENGINES[key] = made
        return made


def dispose(url: str) -> None:
    """Close and forget every engine of ``url`` (a test dropping its database, a store being closed)."""
    with _ENGINES_LOCK:
        for key in [k for k in _ENGINES if k[0] == url]:
            _ENGINES.pop(key).dispose()


class Migrations:
    """One store's Alembic history: ``versions`` (a folder of revision files) recorded in ``version_table``."""

    def __init__(self, versions: Path, version_table: str = "alembic_version"):
        self.versions = Path(versions)
        self.version_table = version_table

    def config(self, connection=None):
        """An Alembic ``Config`` for this history; with ``connection``, commands run on it (in its transaction)."""
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_HOME))
        cfg.set_main_option("version_locations", str(self.versions))
        cfg.attributes["version_table"] = self.version_table
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    def current(self, engine) -> str | None:
        """The revision ``engine``'s database stands at (None: never migrated)."""
        from alembic.migration import MigrationContext

        with engine.connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": self.version_table}).get_current_revision()

    def drift(self, engine, metadata) -> list:
        """How the database's schema differs from the models' ``metadata`` (empty: the migrations build them)."""
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": self.version_table})
            return compare_metadata(context, metadata)

    def head(self) -> str:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.config()).get_current_head()

    def upgrade(self, engine, revision: str = "head") -> None:
        """Bring the database to ``revision``; several processes starting at once take turns, and so do threads
        of one process (whatever database each migrates: Alembic's context is one per process)."""
        from alembic import command

        with _ALEMBIC_LOCK, engine.execution_options(kb_write_lock=True).begin() as conn:
            if conn.dialect.name == "postgresql":
                lock_id = zlib.crc32(self.version_table.encode())  # one lock per history
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({lock_id})")
            command.upgrade(self.config(conn), revision)

    def ensure(self, engine) -> None:
        """``upgrade`` once per process and database: the stores call it on first use."""
        key = (str(engine.url), str(self.versions), self.version_table)
        if key in _UPGRADED:
            return
        with _UPGRADED_LOCK:
            if key not in _UPGRADED:
                self.upgrade(engine)
                _UPGRADED.add(key)
