"""Where the queue lives and how it is reached: the database URL, the engine, migrations, the spool.

Any SQLAlchemy URL (``KB_DATABASE_URL``); by default a SQLite file in the data dir with WAL and a busy timeout,
so the chat, the console, the CLI and other processes share it. Migrations run on first use. When the database
cannot be reached, escalations (and answer-log rows) go to the spool (``spool``); the next successful access
replays it (``QueueDatabase._session``), and ``TicketQueue`` says how each spooled record is applied.
"""

from __future__ import annotations

import re
import threading

from kb_assistant import db
from kb_assistant.errors import QueueUnavailable
from kb_assistant.queue.models import QueueLock
from kb_assistant.queue.spool import Spool
from kb_assistant.settings import Settings

MIGRATIONS = db.Migrations(db.MIGRATIONS_HOME / "queue")  # version table "alembic_version", as it always was


def database_url(settings: Settings) -> str:
    """``KB_DATABASE_URL``, else ``queue.db`` in the data dir: the rule every store follows (``db.store_url``)."""
    settings.path("queue.db")  # the data dir exists before SQLite opens a file in it
    return db.store_url(settings, "queue.db")


def make_engine(url: str, busy_timeout_s: float = 10.0):
    """The queue's engine: on SQLite every transaction takes the write lock when it begins."""
    return db.engine(url, busy_timeout_s=busy_timeout_s, immediate=True)


def migrate(engine) -> None:
    """Bring the schema to the newest revision (append-only migrations, run on start)."""
    MIGRATIONS.upgrade(engine)


def unavailable_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import InterfaceError, OperationalError

    return (OperationalError, InterfaceError, QueueUnavailable)


class QueueDatabase:
    """The queue's database as its readers and writers use it: a session on a migrated database, the spool
    replayed first."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.url = database_url(settings)
        self.spool = Spool(settings.data_dir / "queue-spool.jsonl")
        self._migrated = False
        self._lock = threading.Lock()
        self._replaying = threading.local()

    # --- plumbing ----------------------------------------------------------------------------------
    @property
    def engine(self):
        return make_engine(self.url, self.settings.database_busy_timeout_s)

    def _session(self):
        """A session on a migrated database, the spool replayed first."""
        from sqlalchemy.orm import Session

        if not self._migrated:
            with self._lock:
                if not self._migrated:
                    migrate(self.engine)
                    self._migrated = True
        if self.spool.pending() and not getattr(self._replaying, "on", False):
            self.replay_spool()
        return Session(self.engine, expire_on_commit=False)

    def replay_spool(self) -> int:
        self._replaying.on = True
        try:
            return self.spool.replay(self._apply_spooled, unavailable_errors())
        finally:
            self._replaying.on = False

    def _apply_spooled(self, record: dict) -> None:
        """Apply one spooled record (``TicketQueue`` knows the kinds)."""
        raise NotImplementedError

    def available(self) -> bool:
        try:
            with self._session() as s:
                s.get(QueueLock, 1)
            return True
        except unavailable_errors():
            return False

    def url_for_humans(self) -> str:
        return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", self.url)
