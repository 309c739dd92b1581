"""The ingest ledger: what each KB holds, file by file, in SQLite (``<data>/ingest.sqlite``, WAL).

One row per (KB, source root, document path): size, mtime and content hash (to skip unchanged files without
reading them), status, the document's chunk ids, when, and why it failed — or that an admin excluded it (the file
stays in its folder; syncs skip it). Beside it: the source roots remembered per KB (``kb ingest --all`` re-syncs
them) with their access groups, every run's report, and every KB version with the chunk ids it added and removed
(what the semantic cache needs to invalidate exactly what went stale).

The ledger is the writer's source of truth; the published keyword index is the readers' (see
``KnowledgeBase``). A KB version is committed here first and published second, so an interrupted publish
is finished by the next run.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from kb_assistant import db
from kb_assistant.errors import KBError
from kb_assistant.settings import Settings

LEDGER_FILE = "ingest.sqlite"
EXCLUDED = "excluded"  # a document's status when an admin removed it from the KB but not from its source folder
MIGRATIONS = db.Migrations(Path(__file__).resolve().parent / "migrations", "ledger_alembic_version")


class Base(DeclarativeBase):
    pass


class Source(Base):
    """A root folder (or file) ingested into a KB: remembered, so ``--all`` can re-sync it."""

    __tablename__ = "sources"
    kb: Mapped[str] = mapped_column(String(63), primary_key=True)
    root: Mapped[str] = mapped_column(Text, primary_key=True)
    added_at: Mapped[float] = mapped_column(Float, default=time.time)
    last_synced_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    groups: Mapped[list | None] = mapped_column(JSON, nullable=True)  # access groups; none: everyone (visibility)


class Document(Base):
    __tablename__ = "documents"
    kb: Mapped[str] = mapped_column(String(63), primary_key=True)
    root: Mapped[str] = mapped_column(Text, primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)  # relative to the root: the chunks' "source"
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)  # nanoseconds since 1970: past 32 bits
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # "done" | "failed" | "excluded" (error: who, when)
    chunk_ids: Mapped[list] = mapped_column(JSON, default=list)
    config: Mapped[str] = mapped_column(String(64), default="")  # chunking/embedding settings it was built with
    updated_at: Mapped[float] = mapped_column(Float, default=time.time)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kb: Mapped[str] = mapped_column(String(63), index=True)
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # "running" | "finished" | "interrupted" | "failed"
    report: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class Version(Base):
    """One KB version: the chunk ids it made live and the ones it removed."""

    __tablename__ = "versions"
    kb: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    added: Mapped[list] = mapped_column(JSON, default=list)
    removed: Mapped[list] = mapped_column(JSON, default=list)


class Ledger:
    def __init__(self, settings: Settings, url: str | None = None):
        """The ledger in ``url`` (any SQLAlchemy URL); by default the SQLite file beside the KB's indexes, which
        the ingest, the cron, ``kb status`` and the chat share (WAL, and a writer waits 30 s for the lock)."""
        self.path = settings.path(LEDGER_FILE)
        self.url = url or db.sqlite_url(self.path)
        self.engine = db.engine(self.url, busy_timeout_s=30.0, immediate=False)
        MIGRATIONS.ensure(self.engine)

    def session(self, *, write: bool = False) -> Session:
        """A session; ``write``: its transaction takes SQLite's write lock when it begins (it reads, then writes,
        and must not be refused half-way by another process's commit)."""
        bind = self.engine.execution_options(kb_write_lock=True) if write else self.engine
        return Session(bind, expire_on_commit=False)

    # --- reads ---------------------------------------------------------------------------------------
    def kbs(self) -> list[str]:
        with self.session() as s:
            names = set(s.scalars(select(Source.kb))) | set(s.scalars(select(Document.kb)))
        return sorted(names)

    def sources(self, kb: str | None = None) -> list[Source]:
        with self.session() as s:
            q = select(Source).order_by(Source.kb, Source.root)
            return list(s.scalars(q.where(Source.kb == kb) if kb else q))

    def documents(self, kb: str, root: str | None = None) -> list[Document]:
        with self.session() as s:
            q = select(Document).where(Document.kb == kb)
            return list(s.scalars(q.where(Document.root == root) if root is not None else q))

    def live_chunk_ids(self, kb: str) -> set[str]:
        """The chunk ids the ledger says the KB holds (what the published keyword index must contain)."""
        ids: set[str] = set()
        with self.session() as s:
            for chunk_ids in s.scalars(select(Document.chunk_ids).where(Document.kb == kb, Document.status == "done")):
                ids.update(chunk_ids)
        return ids

    def latest_version(self, kb: str) -> int:
        with self.session() as s:
            return s.scalar(select(func.max(Version.version)).where(Version.kb == kb)) or 0

    def versions(self, kb: str, since: int = 0) -> list[Version]:
        with self.session() as s:
            q = select(Version).where(Version.kb == kb, Version.version > since).order_by(Version.version)
            return list(s.scalars(q))

    def runs(self, kb: str, limit: int = 10) -> list[Run]:
        with self.session() as s:
            return list(s.scalars(select(Run).where(Run.kb == kb).order_by(Run.id.desc()).limit(limit)))

    # --- runs ----------------------------------------------------------------------------------------
    def start_run(self, kb: str) -> tuple[int, bool]:
        """Open a run; returns (run id, whether an earlier run of this KB was interrupted)."""
        with self.session(write=True) as s, s.begin():
            stale = list(s.scalars(select(Run).where(Run.kb == kb, Run.status == "running")))
            for run in stale:  # we hold the KB's lock, so these died (kill -9, power cut) mid-run
                run.status = "interrupted"
            last = s.scalars(select(Run).where(Run.kb == kb).order_by(Run.id.desc()).limit(1)).first()
            failed = last is not None and last.status == "failed"  # raised mid-run: may have stored vectors too
            run = Run(kb=kb, pid=os.getpid(), started_at=time.time(), status="running")
            s.add(run)
            s.flush()
            return run.id, bool(stale) or failed

    def finish_run(self, run_id: int, report: dict) -> None:
        with self.session(write=True) as s, s.begin():
            run = s.get(Run, run_id)
            run.status, run.finished_at, run.report = "finished", time.time(), report

    def fail_run(self, run_id: int, error: str) -> None:
        """A run that raised: recorded as failed (with the error), never left "running"."""
        with self.session(write=True) as s, s.begin():
            run = s.get(Run, run_id)
            run.status, run.finished_at, run.report = "failed", time.time(), {"error": error}

    def drop_exclusions(self, kb: str, root: str, paths: list[str]) -> None:
        """Forget that these documents were excluded (their rows go; the next sync reads the files again)."""
        with self.session(write=True) as s, s.begin():
            for path in paths:
                row = s.get(Document, (kb, root, path))
                if row is None or row.status != EXCLUDED:
                    raise KBError(f"{path!r} of source '{root}' is not excluded from knowledge base '{kb}'")
                s.delete(row)

    def set_source_groups(self, kb: str, root: str, groups) -> bool:
        """Remember ``root`` as a source of ``kb`` limited to ``groups`` (empty: visible to everyone who may use
        the KB). Returns whether its groups changed."""
        with self.session(write=True) as s, s.begin():
            src = s.get(Source, (kb, root))
            before = sorted(src.groups or ()) if src is not None else []
            src = src or Source(kb=kb, root=root)
            src.groups = sorted(groups) or None
            s.merge(src)
            return before != sorted(groups)

    def record_version(self, kb: str, version: int) -> None:
        """A KB version that changed no chunk, only their groups (``ingest.visibility.republish``)."""
        with self.session(write=True) as s, s.begin():
            s.add(Version(kb=kb, version=version, run_id=None, added=[], removed=[]))

    def remember_source(self, kb: str, root: str) -> None:
        with self.session(write=True) as s, s.begin():
            src = s.get(Source, (kb, root)) or Source(kb=kb, root=root)
            src.last_synced_at = time.time()
            s.merge(src)


@dataclass
class DocumentChange:
    """A document's new ledger state, committed with the KB version that publishes it."""

    root: str
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    status: str
    chunk_ids: list[str]
    config: str
    error: str | None = None
    delete: bool = False  # the file is gone: drop its row


def commit_version(
    ledger: Ledger,
    kb: str,
    run_id: int,
    changes: list[DocumentChange],
    added: list[str],
    removed: list[str],
    version: int | None,
    *,
    forget_sources: list[str] = (),
) -> None:
    """Record document changes and (when the live chunks changed) KB ``version``, in one transaction; sources in
    ``forget_sources`` stop being remembered in the same transaction (their documents are among the changes)."""
    with ledger.session(write=True) as s, s.begin():
        for root in forget_sources:
            src = s.get(Source, (kb, root))
            if src is not None:
                s.delete(src)
        for ch in changes:
            row = s.get(Document, (kb, ch.root, ch.path))
            if ch.delete:
                if row is not None:
                    s.delete(row)
                continue
            row = row or Document(kb=kb, root=ch.root, path=ch.path)
            row.size, row.mtime_ns, row.content_hash = ch.size, ch.mtime_ns, ch.content_hash
            row.status, row.chunk_ids, row.config, row.error = ch.status, ch.chunk_ids, ch.config, ch.error
            row.updated_at = time.time()
            s.merge(row)
        if version is not None:
            s.add(Version(kb=kb, version=version, run_id=run_id, added=sorted(added), removed=sorted(removed)))


def touch_documents(ledger: Ledger, kb: str, changes: list[DocumentChange]) -> None:
    """Unchanged content, new size/mtime (a copy, a touch): remember the new stat so the next run skips the read."""
    if not changes:
        return
    with ledger.session(write=True) as s, s.begin():
        for ch in changes:
            row = s.get(Document, (kb, ch.root, ch.path))
            if row is not None:
                row.size, row.mtime_ns = ch.size, ch.mtime_ns


# --- one ingest per KB at a time ---------------------------------------------------------------------
class IngestLocked(KBError):
    pass


_HELD_LOCK_FDS: set[int] = set()


def _close_inherited_locks() -> None:
    # flock belongs to the open file, which a forked child shares: a worker process must not keep the KB locked
    # after its parent died (kill -9), so children close their copies at once.
    for fd in list(_HELD_LOCK_FDS):
        with suppress(OSError):
            os.close(fd)
    _HELD_LOCK_FDS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


@contextmanager
def kb_lock(settings: Settings, kb: str, *, wait: bool = True, say=None) -> Iterator[None]:
    """An exclusive lock on ``<data>/locks/<kb>.lock`` (fcntl: released by the OS if the holder dies)."""
    path = settings.path("locks", f"{kb}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    _HELD_LOCK_FDS.add(fd)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(path)
            if not wait:
                raise IngestLocked(
                    f"another ingest of knowledge base '{kb}' is running ({holder}; lock file {path}): "
                    "wait for it to finish, or run without --no-wait to queue behind it"
                ) from None
            if say:
                say(f"another ingest of knowledge base '{kb}' is running ({holder}): waiting for it to finish …")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": time.time()}).encode(), 0)
        yield
    finally:
        _HELD_LOCK_FDS.discard(fd)
        os.close(fd)  # closing the descriptor releases the lock


def _lock_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
        return f"pid {info['pid']}"
    except (OSError, ValueError, KeyError):
        return "pid unknown"
