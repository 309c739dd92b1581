"""The ingest ledger: what each KB holds, file by file, in the database (``KB_DATABASE_URL``, where every host
that ingests shares it; else SQLite in ``<data>/ingest.sqlite``, WAL).

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

import os
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, func, insert, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ingest.locks import LEDGER_FILE, IngestLocked, kb_lock, ledger_url
from kb_assistant import db
from kb_assistant.errors import KBError
from kb_assistant.settings import Settings

__all__ = ["IngestLocked", "Ledger", "kb_lock"]  # the lock lives in ingest.locks; callers import it from here too
EXCLUDED = "excluded"  # a document's status when an admin removed it from the KB but not from its source folder
MIGRATIONS = db.Migrations(Path(__file__).resolve().parent / "migrations", "ledger_alembic_version")
ADOPT_LOCK = 0x6C656467  # adopting a data dir's ledger: one process at a time


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
        """The ledger in ``url`` (any SQLAlchemy URL); by default ``KB_DATABASE_URL``, else the SQLite file in the
        data dir, which the ingest, the cron, ``kb status`` and the chat share (WAL; a writer waits 30 s for the
        lock). A data dir whose own ledger file predates ``KB_DATABASE_URL`` is adopted (see ``adopt_ledger``)."""
        self.path = settings.path(LEDGER_FILE)
        self.url = url or ledger_url(settings)
        self.engine = db.engine(self.url, busy_timeout_s=30.0, immediate=False)
        MIGRATIONS.ensure(self.engine)
        if self.url != db.sqlite_url(self.path) and self.path.exists():
            adopt_ledger(db.sqlite_url(self.path), self.engine)

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


_ADOPTED: set[tuple[str, str]] = set()


def adopt_ledger(source_url: str, target) -> bool:
    """Copy the ledger of ``source_url`` (a data dir's ``ingest.sqlite``, from before ``KB_DATABASE_URL`` was set)
    into the database of ``target`` when that holds no ledger rows yet: every table, in one transaction; the file
    is left as it is. Returns whether it copied."""
    key = (source_url, str(target.url))
    if key in _ADOPTED:
        return False
    _ADOPTED.add(key)
    tables = [Source.__table__, Run.__table__, Document.__table__, Version.__table__]  # runs before versions

    def holds_rows(conn) -> bool:
        return any(conn.execute(select(func.count()).select_from(t)).scalar() for t in tables)

    with target.connect() as conn:
        if holds_rows(conn):  # the usual case, answered without reading the file
            return False
    source = db.engine(source_url, busy_timeout_s=30.0, immediate=False)
    MIGRATIONS.ensure(source)
    with source.connect() as conn:
        rows = {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in tables}
    if not any(rows.values()):
        return False
    with target.execution_options(kb_write_lock=True).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(ADOPT_LOCK)))
        if holds_rows(conn):  # another process adopted it meanwhile
            return False
        for t in tables:
            if rows[t.name]:
                conn.execute(insert(t), rows[t.name])
        if conn.dialect.name == "postgresql":  # explicit ids were inserted: the sequence continues after them
            conn.execute(text("SELECT setval(pg_get_serial_sequence('runs', 'id'), GREATEST(MAX(id), 1)) FROM runs"))
    return True
