"""API keys for the HTTP API: created by ``kb apikey create``, stored hashed, scoped to knowledge bases.

The keys live in the queue database (table ``api_keys``, queue migration 0005): ``KB_DATABASE_URL``, by default
``queue.db`` in the data dir, so several servers on one Postgres share them. A key is 32 random bytes, so a plain
SHA-256 of it is enough (no salt or slow hash needed: there is nothing to brute-force). Only the hash and the
first characters (to recognise a key in ``kb apikey list``) are kept; the key itself is shown once.

Nothing is cached: every check is one indexed select by hash, so a key created or revoked by another process
(``kb apikey``, another server) counts from the next request on.

Earlier releases kept the keys in a JSON file (``apikeys.json`` in the data dir, or ``KB_API_KEYS_FILE``). On first
use that file is imported (same ids, hashes, hints, knowledge bases, names and dates; a key whose hash is already
stored is skipped) and renamed ``<name>.imported``, so it is imported once; a file that cannot be read is an error
naming it, and is left where it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from kb_assistant.errors import KBError, QueueUnavailable
from kb_assistant.schema import parse_groups
from kb_assistant.settings import Settings, check_kb_name

KEY_PREFIX = "kb_"
ALL_KBS = "*"
LEGACY_FILE = "apikeys.json"
log = logging.getLogger(__name__)


class UnknownApiKey(KBError):
    """``kb apikey revoke`` named a key that is not in the store."""


class ApiKey(BaseModel):
    id: str = Field(description="Public id, e.g. for `kb apikey revoke`.")
    name: str = ""
    kbs: list[str] = Field(description="Knowledge bases this key may use; ['*'] = all.")
    hash: str = Field(description="sha256 hex digest of the key.")
    hint: str = Field(description="The key's first characters, to recognise it.")
    created_at: str
    groups: list[str] = Field([], description="The access groups requests with this key ask as (none: no group).")

    def allows(self, kb: str) -> bool:
        return ALL_KBS in self.kbs or kb in self.kbs


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


class ApiKeyStore:
    """The API keys in the queue database at ``url``; ``legacy_file``: the JSON file to import on first use."""

    def __init__(self, url: str, *, busy_timeout_s: float = 10.0, legacy_file: Path | None = None):
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        self.legacy_file = Path(legacy_file) if legacy_file is not None else None
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> ApiKeyStore:
        from kb_assistant.queue.database import database_url

        return cls(
            database_url(settings), busy_timeout_s=settings.database_busy_timeout_s,
            legacy_file=settings.api_keys_file or settings.data_dir / LEGACY_FILE,
        )  # fmt: skip

    @property
    def engine(self):
        from kb_assistant.queue.database import make_engine

        return make_engine(self.url, self.busy_timeout_s)

    @property
    def where(self) -> str:
        """The database, for messages (a password in the URL hidden)."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    # --- plumbing -----------------------------------------------------------------------------------
    def _connect(self, write: bool):
        """A transaction on the migrated database, the legacy file imported first (once). Reads do not take
        SQLite's write lock, so a key check never waits behind the answer log's writes."""
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self._prepare()
                    self._ready = True
        return self.engine.execution_options(kb_write_lock=write).begin()

    def _prepare(self) -> None:
        from kb_assistant.queue.database import MIGRATIONS

        MIGRATIONS.ensure(self.engine)  # (an unreachable database: _run says so)
        if self.legacy_file is not None and self.legacy_file.exists():
            self.import_file(self.legacy_file)

    def _run(self, work, *, write: bool = False):
        from kb_assistant.queue.database import unavailable_errors

        try:
            with self._connect(write) as conn:
                return work(conn)
        except unavailable_errors() as exc:
            raise QueueUnavailable(f"the API key database {self.where} cannot be reached: {exc}") from None

    # --- reading: straight from the table, every time ----------------------------------------------
    def keys(self) -> list[ApiKey]:
        from sqlalchemy import select

        from kb_assistant.queue.models import ApiKeyRow

        table = ApiKeyRow.__table__
        rows = self._run(lambda c: c.execute(select(table).order_by(table.c.created_at, table.c.id)).all())
        return [_key(r) for r in rows]

    def enabled(self) -> bool:
        """Keys are required as soon as one exists."""
        from sqlalchemy import select

        from kb_assistant.queue.models import ApiKeyRow

        return self._run(lambda c: c.execute(select(ApiKeyRow.id).limit(1)).first()) is not None

    def check(self, key: str | None) -> ApiKey | None:
        """The stored key matching ``key``, or None: one select on the hash's unique index."""
        if not key:
            return None
        from sqlalchemy import select

        from kb_assistant.queue.models import ApiKeyRow

        digest = hash_key(key.strip())
        table = ApiKeyRow.__table__
        row = self._run(lambda c: c.execute(select(table).where(table.c.hash == digest)).first())
        return _key(row) if row is not None else None

    # --- writing ------------------------------------------------------------------------------------
    def create(self, kbs: list[str], name: str = "", groups=None) -> tuple[str, ApiKey]:
        """A new key for ``kbs`` whose requests ask as a principal in ``groups``; returns (the key, shown once;
        its stored record)."""
        if not kbs:
            raise KBError("an API key needs at least one knowledge base: --kb NAME (or --kb '*' for all)")
        kbs = sorted({k if k == ALL_KBS else check_kb_name(k) for k in kbs})
        try:
            groups = sorted(parse_groups(groups, what="--groups"))
        except ValueError as exc:
            raise KBError(str(exc)) from None
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(
            id=secrets.token_hex(4), name=name, kbs=kbs, hash=hash_key(key), hint=key[:8], created_at=_now(),
            groups=groups,
        )  # fmt: skip
        from kb_assistant.queue.models import ApiKeyRow

        self._run(lambda c: c.execute(ApiKeyRow.__table__.insert().values(**record.model_dump())), write=True)
        return key, record

    def revoke(self, id_or_name: str) -> list[ApiKey]:
        """Delete the keys with that id or name; the ones deleted are returned."""
        from sqlalchemy import or_, select

        from kb_assistant.queue.models import ApiKeyRow

        table = ApiKeyRow.__table__
        match = or_(table.c.id == id_or_name, table.c.name == id_or_name)

        def work(conn):
            gone = [_key(r) for r in conn.execute(select(table).where(match)).all()]
            if gone:
                conn.execute(table.delete().where(table.c.id.in_([k.id for k in gone])))
            return gone

        gone = self._run(work, write=True)
        if not gone:
            raise UnknownApiKey(f"no API key with id or name {id_or_name!r} in {self.where} (see: kb apikey list)")
        return gone

    # --- the JSON file of earlier releases ------------------------------------------------------------
    def import_file(self, path: Path) -> int:
        """Import the keys of a legacy ``apikeys.json`` and rename it ``<name>.imported``; returns how many were
        added (a key whose hash is already stored is skipped). An unreadable file raises, naming it, and stays."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("keys", []), list):
                raise ValueError('expected {"keys": [...]}')
            keys = [ApiKey(**k) for k in data.get("keys", [])]
        except FileNotFoundError:
            return 0  # another process imported it meanwhile
        except (OSError, ValueError, TypeError, ValidationError) as exc:
            raise KBError(
                f"cannot import the API key file {path}: {exc}; fix it (or move it away) and try again"
            ) from None
        from sqlalchemy.exc import IntegrityError

        for attempt in range(3):  # another process importing the same file at once: the retry sees its rows
            try:
                added = self._insert_missing(keys)
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        with contextlib.suppress(FileNotFoundError):  # renamed by another process importing it at the same time
            os.replace(path, path.with_name(path.name + ".imported"))
        log.info("imported %d API key(s) from %s into %s", added, path, self.where)
        return added

    def _insert_missing(self, keys: list[ApiKey]) -> int:
        from sqlalchemy import select

        from kb_assistant.queue.database import unavailable_errors
        from kb_assistant.queue.models import ApiKeyRow

        table = ApiKeyRow.__table__
        try:
            with self.engine.begin() as conn:
                stored = {h: i for i, h in conn.execute(select(table.c.id, table.c.hash)).all()}
                ids = set(stored.values())
                added = 0
                for k in keys:
                    if k.hash in stored:
                        continue
                    row = k.model_dump()
                    if k.id in ids:  # the same random id for a different key (two data dirs, one database)
                        row["id"] = secrets.token_hex(4)
                        log.warning("imported API key %s (%s) got the new id %s", k.id, k.name, row["id"])
                    conn.execute(table.insert().values(**row))
                    stored[k.hash], added = row["id"], added + 1
                    ids.add(row["id"])
                return added
        except unavailable_errors() as exc:
            raise QueueUnavailable(f"the API key database {self.where} cannot be reached: {exc}") from None


def _key(row) -> ApiKey:
    return ApiKey(
        id=row.id, name=row.name, kbs=list(row.kbs), hash=row.hash, hint=row.hint, created_at=row.created_at,
        groups=list(getattr(row, "groups", None) or []),
    )  # fmt: skip
