"""The published KB state in the database: each KB's published version, its live chunks' keyword tokens and the
access groups a chunk is limited to.

The database is ``KB_DATABASE_URL`` when set (every replica reads the one state the ingest published), else
``<data>/published.sqlite``; its schema is the Alembic history ``kb_assistant/migrations/publication``. One row
per KB names its version and a random stamp (a local index built for another database, or for a version number
reused after a reset, is never mistaken for this one). A chunk row is live from ``added_version`` until
``removed_version``: a publish writes only what changed, in one transaction with the version row, and a reader
gets any recent version's live set from the rows as they stand. Rows removed ``KEEP_VERSIONS`` versions ago go.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import JSON, Float, Index, Integer, String, delete, func, insert, or_, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from kb_assistant import db
from kb_assistant.language import TOKENIZER_VERSION
from kb_assistant.settings import Settings

PUBLISHED_FILE = "published.sqlite"
MIGRATIONS = db.Migrations(db.MIGRATIONS_HOME / "publication", "publication_alembic_version")
KEEP_VERSIONS = 2  # a reader still loading the previous version finds its rows
BATCH = 500  # rows per statement


class Base(DeclarativeBase):
    pass


class PublishedKB(Base):
    __tablename__ = "published_kbs"
    kb: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    stamp: Mapped[str] = mapped_column(String(32))
    chunks: Mapped[int] = mapped_column(Integer)
    tokenizer: Mapped[str] = mapped_column(String(64))  # the tokenizer that made the rows' tokens
    published_at: Mapped[float] = mapped_column(Float)
    state: Mapped[dict] = mapped_column(JSON)  # what `kb status` and /healthz show: version, chunks, writer …


class PublishedChunk(Base):
    __tablename__ = "published_chunks"
    __table_args__ = (Index("ix_published_chunks_removed", "kb", "removed_version"),)
    kb: Mapped[str] = mapped_column(String(63), primary_key=True)
    chunk_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    tokens: Mapped[list] = mapped_column(JSON)
    added_version: Mapped[int] = mapped_column(Integer)
    removed_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    groups: Mapped[list | None] = mapped_column(JSON, nullable=True)  # limited to these groups; none: everyone


@dataclass(frozen=True)
class Head:
    """A KB's published version as the database has it."""

    version: int
    stamp: str
    tokenizer: str
    state: dict


def local_url(settings: Settings) -> str:
    """The data dir's own database of published state (the default, and what a data dir adopted from)."""
    return db.sqlite_url(settings.data_dir / PUBLISHED_FILE)


class PublishedStore:
    def __init__(self, settings: Settings, url: str | None = None):
        if url is None:
            settings.path(PUBLISHED_FILE)  # the data dir exists
        self.url = url or db.store_url(settings, PUBLISHED_FILE)
        self.engine = db.engine(self.url, busy_timeout_s=30.0, immediate=False)
        MIGRATIONS.ensure(self.engine)

    def stamp(self, kb: str) -> str | None:
        """The stamp of the published version of ``kb`` (None: never published here): the cheap read, by primary
        key, a process makes per question to learn whether a newer version was published. On the driver's own
        connection: a tenth of the cost through SQLAlchemy's (eval/bench_version_check.py)."""
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            try:
                cur.execute(f"SELECT stamp FROM published_kbs WHERE kb = {mark}", (kb,))
                row = cur.fetchone()
            finally:
                cur.close()
        finally:
            conn.close()  # back to the pool, which ends the transaction a Postgres driver began
        return row[0] if row else None

    def head(self, kb: str) -> Head | None:
        """The published version of ``kb`` with its state (None: never published here)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(PublishedKB.version, PublishedKB.stamp, PublishedKB.tokenizer, PublishedKB.state).where(
                    PublishedKB.kb == kb
                )
            ).first()
        return Head(int(row[0]), row[1], row[2], dict(row[3])) if row else None

    def tokens(self, kb: str, version: int) -> dict[str, list[str]]:
        """The chunks live in ``version`` and their keyword tokens."""
        return self.live(kb, version)[0]

    def live(self, kb: str, version: int) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """The chunks live in ``version``: their keyword tokens, and the groups of those limited to groups (as
        the rows stand: a version's groups are its own until a later publish changes them)."""
        live = (
            (PublishedChunk.kb == kb)
            & (PublishedChunk.added_version <= version)
            & or_(PublishedChunk.removed_version.is_(None), PublishedChunk.removed_version > version)
        )
        query = select(PublishedChunk.chunk_id, PublishedChunk.tokens, PublishedChunk.groups).where(live)
        tokens, groups = {}, {}
        with self.engine.connect() as conn:
            for cid, words, limited in conn.execute(query):
                tokens[cid] = list(words)
                if limited:
                    groups[cid] = sorted(limited)
        return tokens, groups

    def write(
        self,
        kb: str,
        version: int,
        tokens: dict[str, list[str]],
        stamp: str,
        state: dict,
        groups: dict[str, list[str]] | None = None,
        *,
        if_absent: bool = False,
    ) -> bool:
        """Make exactly the chunks of ``tokens`` live as ``version``, limited to ``groups`` (chunk id → groups;
        a chunk not named: everyone), in one transaction: the changed rows and the KB's row. ``if_absent``: only if
        the KB was never published here (adopting); returns whether it wrote."""
        groups = {cid: sorted(g) for cid, g in (groups or {}).items() if g and cid in tokens}
        with Session(self.engine.execution_options(kb_write_lock=True)) as s, s.begin():
            if s.bind.dialect.name == "postgresql":  # publishers of one KB take turns (SQLite: the write lock)
                s.execute(select(func.pg_advisory_xact_lock(zlib.crc32(f"publish:{kb}".encode()))))
            head = s.get(PublishedKB, kb)
            if if_absent and head is not None:
                return False
            rows = {cid: (removed, limited) for cid, removed, limited in s.execute(
                select(PublishedChunk.chunk_id, PublishedChunk.removed_version, PublishedChunk.groups).where(
                    PublishedChunk.kb == kb))}  # fmt: skip
            live = {cid for cid, (removed, _) in rows.items() if removed is None}
            wanted = set(tokens)
            fresh = [{"kb": kb, "chunk_id": c, "tokens": tokens[c], "added_version": version, "removed_version": None,
                      "groups": groups.get(c)} for c in sorted(wanted - live)]  # fmt: skip
            retokenize = head is None or head.tokenizer != TOKENIZER_VERSION  # every kept chunk gets these tokens
            kept = [{"kb": kb, "chunk_id": c, "tokens": tokens[c], "groups": groups.get(c)}
                    for c in sorted(wanted & live)
                    if retokenize or sorted(rows[c][1] or []) != (groups.get(c) or [])]  # fmt: skip
            for part in _batches([r for r in fresh if r["chunk_id"] not in rows]):
                s.execute(insert(PublishedChunk), part)
            for part in _batches([r for r in fresh if r["chunk_id"] in rows]):  # removed earlier, live again
                s.execute(update(PublishedChunk), part)
            for part in _batches(kept):
                s.execute(update(PublishedChunk), part)
            for part in _batches(sorted(live - wanted)):
                s.execute(update(PublishedChunk).where(PublishedChunk.kb == kb, PublishedChunk.chunk_id.in_(part))
                          .values(removed_version=version))  # fmt: skip
            s.execute(delete(PublishedChunk).where(
                PublishedChunk.kb == kb, PublishedChunk.removed_version <= version - KEEP_VERSIONS))  # fmt: skip
            s.merge(
                PublishedKB(
                    kb=kb, version=version, stamp=stamp, chunks=len(tokens), tokenizer=TOKENIZER_VERSION,
                    published_at=state.get("published_at", time.time()), state=state,
                )
            )  # fmt: skip
        return True

    def kbs(self) -> list[str]:
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(PublishedKB.kb)).scalars())


def _batches(items: list) -> list[list]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


def legacy_state(directory: Path) -> dict | None:
    """What the release before kept in ``<data>/kb/<name>/state.json`` (None: nothing there)."""
    import json

    f = directory / "state.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.exists() else None
