"""The semantic cache's storage: its tables on the project's database layer (``db.engine``, SQLAlchemy Core).

Where: ``KB_DATABASE_URL`` when it is set (Postgres: every replica shares the entries, so a 👎 on one replica drops
the entry for all of them), else ``<data>/cache.sqlite3`` — its own file, not the queue's, because on one machine the
cache is disposable (delete it any time) and must never put tickets at risk. A cache file written by an earlier
release is adopted as it is (migration ``cache_0001`` is its own DDL, ``IF NOT EXISTS`` throughout).

Tables (``kb_assistant/migrations/cache``): ``cache_entries`` (question, float32 embedding, Answer JSON, cited chunk
ids, KB version, hits, time saved), ``cache_served`` (which answer was served from which entry), ``cache_refused``
(answers a 👎 keeps out until their sources change), ``cache_counters`` (what ``stats()`` shows) and
``cache_generation``: one number every change to the entries raises, so a process knows when another one (or
another replica) wrote and its in-memory similarity matrices are behind. Rows come back as plain dicts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kb_assistant import db

if TYPE_CHECKING:
    from kb_assistant.settings import Settings

MIGRATIONS = db.Migrations(db.MIGRATIONS_HOME / "cache", "cache_alembic_version")


def cache_url(settings: Settings) -> str:
    """``KB_DATABASE_URL`` when set, else the SQLite file ``cache.sqlite3`` in the data dir."""
    if settings.database_url and settings.database_url.strip():
        return settings.database_url.strip()
    return db.sqlite_url(settings.path("cache.sqlite3"))


def _tables():
    import sqlalchemy as sa

    md = sa.MetaData()
    text, real = sa.Text, sa.Double
    entries = sa.Table(
        "cache_entries", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kb", text, nullable=False), sa.Column("language", text, nullable=False),
        sa.Column("key", text, nullable=False), sa.Column("question", text, nullable=False),
        sa.Column("model", text, nullable=False), sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("answer", text, nullable=False), sa.Column("chunk_ids", text, nullable=False),
        sa.Column("kb_version", sa.Integer, nullable=False), sa.Column("origin", text, nullable=False),
        sa.Column("created_at", real, nullable=False), sa.Column("last_hit_at", real, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False, server_default="0"),
        sa.Column("full_ms", real, nullable=False, server_default="0"),
        sa.Column("saved_ms", real, nullable=False, server_default="0"),
        sa.UniqueConstraint("kb", "language", "key"),
    )  # fmt: skip
    served = sa.Table(
        "cache_served", md,
        sa.Column("answer_id", text, primary_key=True), sa.Column("entry_id", sa.Integer, nullable=False),
        sa.Column("served_at", real), sa.Index("cache_served_entry", "entry_id"),
    )  # fmt: skip
    refused = sa.Table(
        "cache_refused", md, *(sa.Column(c, text, primary_key=True) for c in ("kb", "language", "key", "chunk_ids"))
    )
    counters = sa.Table(
        "cache_counters", md,
        sa.Column("kb", text, primary_key=True), sa.Column("name", text, primary_key=True),
        sa.Column("value", real, nullable=False),
    )  # fmt: skip
    generation = sa.Table(
        "cache_generation", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.Integer, nullable=False),
    )  # fmt: skip
    return md, entries, served, refused, counters, generation


class CacheDatabase:
    """Every read and write of the semantic cache; one transaction per method."""

    def __init__(self, settings: Settings):
        self.url = cache_url(settings)
        self.engine = db.engine(self.url, busy_timeout_s=settings.database_busy_timeout_s, immediate=True)
        MIGRATIONS.ensure(self.engine)
        self.metadata, self.entries, self.served, self.refused, self.counters, self._generation = _tables()
        self._insert = _dialect_insert(self.engine.dialect.name)
        self._hot = _hot_statements(self.entries, self._generation)

    # --- plumbing --------------------------------------------------------------------------------------------
    def _read(self):
        """A read-only transaction (on SQLite without the write lock)."""
        return self.engine.connect().execution_options(kb_write_lock=False)

    def _write(self):
        """A write transaction: committed on leaving, rolled back on error (SQLite: the write lock from its start)."""
        return self.engine.begin()

    @staticmethod
    def _rows(result) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in result]

    def _bump_generation(self, conn) -> int:
        """Raise the generation (in ``conn``'s transaction); returns the new one."""
        g = self._generation.c.value
        return int(conn.execute(self._generation.update().values(value=g + 1).returning(g)).scalar_one())

    def bump(self, conn, kb: str, deltas: dict[str, float]) -> None:
        """Add ``deltas`` to ``kb``'s counters, in ``conn``'s transaction."""
        rows = [{"kb": kb, "name": name, "value": float(value)} for name, value in deltas.items() if value]
        if rows:
            conn.execute(self._hot["bump"], rows)

    def count(self, kb: str, deltas: dict[str, float]) -> None:
        with self._write() as conn:
            self.bump(conn, kb, deltas)

    # --- reads -----------------------------------------------------------------------------------------------
    def generation(self) -> int:
        """Raised by every change to the entries, by any process."""
        with self._read() as conn:
            return int(conn.execute(self._hot["generation"]).scalar() or 0)

    def by_key(self, kb: str, lang: str, key: str) -> dict | None:
        with self._read() as conn:
            rows = self._rows(conn.execute(self._hot["by_key"], {"kb": kb, "language": lang, "key": key}))
        return rows[0] if rows else None

    def by_ids(self, ids: list[int]) -> dict[int, dict]:
        with self._read() as conn:
            return {
                r["id"]: r for r in self._rows(conn.execute(self.entries.select().where(self.entries.c.id.in_(ids))))
            }

    def outdated(self, kb: str, version: int) -> list[dict]:
        """(id, chunk_ids) of ``kb``'s entries last checked at another KB version."""
        import sqlalchemy as sa

        e = self.entries.c
        with self._read() as conn:
            return self._rows(conn.execute(sa.select(e.id, e.chunk_ids).where(e.kb == kb, e.kb_version != version)))

    def space_rows(self, kb: str, lang: str, model: str) -> list[dict]:
        import sqlalchemy as sa

        e = self.entries.c
        query = sa.select(e.id, e.embedding, e.question).where(e.kb == kb, e.language == lang, e.model == model)
        with self._read() as conn:
            return self._rows(conn.execute(query.order_by(e.id)))

    def is_refused(self, kb: str, lang: str, key: str, chunk_ids: str) -> bool:
        r = self.refused.c
        with self._read() as conn:
            found = conn.execute(
                self.refused.select().where(r.kb == kb, r.language == lang, r.key == key, r.chunk_ids == chunk_ids)
            ).first()
        return found is not None

    def for_answer(self, answer_id: str) -> dict | None:
        """The entry an answer was served from, or stored as."""
        import sqlalchemy as sa

        e = self.entries.c
        with self._read() as conn:
            served = conn.execute(sa.select(self.served.c.entry_id).where(self.served.c.answer_id == answer_id)).first()
            if served is not None:
                rows = self._rows(conn.execute(self.entries.select().where(e.id == served[0])))
                if rows:
                    return rows[0]
            stored_id = _json_field(self.engine.dialect.name, e.answer, "id")
            rows = self._rows(conn.execute(self.entries.select().where(stored_id == answer_id).limit(1)))
        return rows[0] if rows else None

    def listing(self, kb: str | None, limit: int) -> tuple[list[dict], dict[int, list[str]]]:
        """The entries (of one KB), the most recently used first, and the answers served from each (newest first)."""
        import sqlalchemy as sa

        e = self.entries.c
        query = self.entries.select().order_by(e.last_hit_at.desc(), e.id.desc()).limit(limit)
        with self._read() as conn:
            rows = self._rows(conn.execute(query.where(e.kb == kb) if kb else query))
            served: dict[int, list[str]] = {}
            ids = [r["id"] for r in rows]
            s = self.served.c
            query = sa.select(s.answer_id, s.entry_id).where(s.entry_id.in_(ids))
            for answer_id, entry_id in conn.execute(query.order_by(s.served_at.desc().nulls_last())):
                served.setdefault(entry_id, []).append(answer_id)
        return rows, served

    def totals(self, kb: str | None) -> tuple[int, dict[str, float]]:
        """(entries, counter sums) of one KB or all."""
        import sqlalchemy as sa

        e, c = self.entries.c, self.counters.c
        entries = sa.select(sa.func.count()).select_from(self.entries)
        sums = sa.select(c.name, sa.func.sum(c.value)).group_by(c.name)
        if kb:
            entries, sums = entries.where(e.kb == kb), sums.where(c.kb == kb)
        with self._read() as conn:
            return int(conn.execute(entries).scalar() or 0), {n: v or 0 for n, v in conn.execute(sums)}

    def least_recent(self, kb: str, keep: int) -> list[int]:
        """Ids of ``kb``'s entries beyond the ``keep`` most recently used."""
        import sqlalchemy as sa

        e = self.entries.c
        with self._read() as conn:
            n = int(conn.execute(sa.select(sa.func.count()).where(e.kb == kb)).scalar() or 0)
            if n <= keep:
                return []
            query = sa.select(e.id).where(e.kb == kb).order_by(e.last_hit_at, e.id).limit(n - keep)
            return [r[0] for r in conn.execute(query)]

    # --- writes ----------------------------------------------------------------------------------------------
    def record_hit(
        self, kb: str, entry_id: int, answer_id: str, saved_ms: float, kind: str, counts: dict[str, float]
    ) -> None:
        """An answer served from an entry: its hit, who got it, and the lookup's ``counts``, in one transaction."""
        now = time.time()
        with self._write() as conn:
            conn.execute(self._hot["hit"], {"id": entry_id, "now": now, "saved": saved_ms})
            conn.execute(self._hot["served"], {"answer_id": answer_id, "entry_id": entry_id, "now": now})
            self.bump(conn, kb, {**counts, f"{kind}_hits": 1, "saved_ms": saved_ms})

    def set_version(self, ids: list[int], version: int) -> None:
        if ids:
            with self._write() as conn:
                conn.execute(self.entries.update().where(self.entries.c.id.in_(ids)).values(kb_version=version))

    def put(self, row: dict) -> tuple[int, bool, int]:
        """Insert an entry, replacing the one with its (kb, language, key); returns (its id, whether one was
        replaced, the generation it made)."""
        import sqlalchemy as sa

        e = self.entries.c
        with self._write() as conn:
            key = (e.kb == row["kb"], e.language == row["language"], e.key == row["key"])
            old = conn.execute(sa.select(e.id).where(*key)).first()
            if old is not None:
                conn.execute(self.entries.delete().where(e.id == old[0]))
                conn.execute(self.served.delete().where(self.served.c.entry_id == old[0]))
            new_id = conn.execute(self.entries.insert().values(**row).returning(e.id)).scalar_one()
            self.bump(conn, row["kb"], {"stores": 1})
            generation = self._bump_generation(conn)
        return int(new_id), old is not None, generation

    def refuse(self, row: dict) -> None:
        """Keep this entry's answer out until its sources change (a 👎)."""
        values = {k: row[k] for k in ("kb", "language", "key", "chunk_ids")}
        with self._write() as conn:
            conn.execute(self._insert(self.refused).values(**values).on_conflict_do_nothing())

    def delete(self, ids: list[int], kb: str, counter: str) -> int:
        """Delete entries, counted under ``counter``; returns the generation it made."""
        with self._write() as conn:
            n = conn.execute(self.entries.delete().where(self.entries.c.id.in_(ids))).rowcount
            conn.execute(self.served.delete().where(self.served.c.entry_id.in_(ids)))
            self.bump(conn, kb, {counter: n})
            return self._bump_generation(conn)

    def clear(self, kb: str | None) -> tuple[int, int]:
        """Delete every entry, counter and refusal (of one KB); returns (entries removed, the generation made)."""
        import sqlalchemy as sa

        with self._write() as conn:
            where = (lambda t: t.delete().where(t.c.kb == kb)) if kb else (lambda t: t.delete())
            n = conn.execute(where(self.entries)).rowcount
            kept = sa.select(self.entries.c.id)
            conn.execute(self.served.delete().where(self.served.c.entry_id.not_in(kept)))
            conn.execute(where(self.counters))
            conn.execute(where(self.refused))
            return n, self._bump_generation(conn)

    def close(self) -> None:
        """Nothing to release: the engine is the process's, shared with every store on this URL."""


def _hot_statements(entries, generation) -> dict:
    """The statements of every lookup and hit, built once (SQL both SQLite and Postgres run)."""
    import sqlalchemy as sa

    e = entries.c
    return {
        "by_key": entries.select().where(
            e.kb == sa.bindparam("kb"), e.language == sa.bindparam("language"), e.key == sa.bindparam("key")
        ),
        "generation": sa.select(generation.c.value),
        "hit": sa.text(
            "UPDATE cache_entries SET hits = hits + 1, last_hit_at = :now, saved_ms = saved_ms + :saved WHERE id = :id"
        ),
        "served": sa.text(
            "INSERT INTO cache_served (answer_id, entry_id, served_at) VALUES (:answer_id, :entry_id, :now)"
            " ON CONFLICT (answer_id) DO UPDATE SET entry_id = excluded.entry_id, served_at = excluded.served_at"
        ),
        "bump": sa.text(
            "INSERT INTO cache_counters (kb, name, value) VALUES (:kb, :name, :value)"
            " ON CONFLICT (kb, name) DO UPDATE SET value = cache_counters.value + excluded.value"
        ),
    }


def _dialect_insert(dialect: str):
    """The dialect's INSERT, which has ``on_conflict_do_update`` / ``on_conflict_do_nothing`` (SQLite, Postgres)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise ValueError(f"KB_DATABASE_URL: the semantic cache runs on SQLite or PostgreSQL, not {dialect}")
    return insert


def _json_field(dialect: str, column, field: str):
    """A text field of a JSON document kept in a text column."""
    import sqlalchemy as sa

    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return sa.cast(column, JSONB)[field].astext
    return sa.func.json_extract(column, f"$.{field}")
