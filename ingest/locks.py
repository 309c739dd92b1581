"""One ingest per KB at a time, across every process and machine that writes it.

Where the ledger lives decides the lock: on Postgres (``KB_DATABASE_URL``) a session advisory lock keyed by the KB,
held on a connection of its own for the whole ingest (any host's cron may run; the server releases it if the
holder dies or its connection drops); on SQLite in the data dir, an fcntl lock on ``<data>/locks/<kb>.lock``
(released by the OS if the holder dies). A second ingest waits, or with ``wait=False`` raises ``IngestLocked``
naming the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from kb_assistant import db
from kb_assistant.errors import KBError
from kb_assistant.settings import Settings

LEDGER_FILE = "ingest.sqlite"
LOCK_CLASS = zlib.crc32(b"kb-ingest") & 0x7FFFFFFF  # advisory locks are keyed (class, object): int4 each
APPLICATION = "kb-ingest"  # the holder's connection names itself so a waiter can say who holds the KB


class IngestLocked(KBError):
    pass


def ledger_url(settings: Settings) -> str:
    return db.store_url(settings, LEDGER_FILE)


@contextmanager
def kb_lock(settings: Settings, kb: str, *, wait: bool = True, say=None) -> Iterator[None]:
    """Hold the KB's ingest lock for the block (the advisory lock on Postgres, the file lock on SQLite)."""
    url = ledger_url(settings)
    lock = _advisory_lock(url, kb, wait, say) if url.startswith("postgresql") else _file_lock(settings, kb, wait, say)
    with lock:
        yield


# --- Postgres: pg_advisory_lock ------------------------------------------------------------------------------
_HELD_CONNECTIONS: set[int] = set()  # the lock connections' sockets, closed in a forked child (see below)


def _lock_key(kb: str) -> tuple[int, int]:
    return LOCK_CLASS, zlib.crc32(kb.encode()) & 0x7FFFFFFF


@contextmanager
def _advisory_lock(url: str, kb: str, wait: bool, say) -> Iterator[None]:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    me = f"{APPLICATION} {kb} pid {os.getpid()} on {socket.gethostname()}"[:63]
    engine = create_engine(url, poolclass=NullPool, connect_args={"application_name": me})
    key = _lock_key(kb)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            fd = conn.connection.dbapi_connection.fileno()
            _HELD_CONNECTIONS.add(fd)
            try:
                got = conn.exec_driver_sql("SELECT pg_try_advisory_lock(%s::int, %s::int)", key).scalar()
                if not got:
                    holder = _advisory_holder(conn, key)
                    if not wait:
                        raise IngestLocked(
                            f"another ingest of knowledge base '{kb}' is running ({holder}; Postgres advisory lock "
                            f"{key[0]}/{key[1]}): wait for it to finish, or run without --no-wait to queue behind it"
                        )
                    if say:
                        say(f"another ingest of knowledge base '{kb}' is running ({holder}): waiting for it …")
                    conn.exec_driver_sql("SELECT pg_advisory_lock(%s::int, %s::int)", key)
                try:
                    yield
                finally:
                    with suppress(Exception):  # a dropped connection released it already
                        conn.exec_driver_sql("SELECT pg_advisory_unlock(%s::int, %s::int)", key)
            finally:
                _HELD_CONNECTIONS.discard(fd)
    finally:
        engine.dispose()


def _advisory_holder(conn, key: tuple[int, int]) -> str:
    row = conn.exec_driver_sql(
        "SELECT a.application_name, a.pid, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 AND l.granted",
        key,
    ).first()
    if row is None:
        return "holder unknown"
    name, backend, addr = row
    if name and name.startswith(APPLICATION):
        return name.removeprefix(APPLICATION).split(" ", 2)[-1].strip()
    return f"Postgres backend {backend}" + (f" from {addr}" if addr else "")


# --- SQLite in the data dir: a file lock ---------------------------------------------------------------------
_HELD_LOCK_FDS: set[int] = set()


def _close_inherited_locks() -> None:
    # flock belongs to the open file, which a forked child shares: a worker process must not keep the KB locked
    # after its parent died (kill -9), so children close their copies at once. The same for the advisory lock's
    # connection: the server ends the session (and the lock) only when every copy of its socket is closed.
    for fd in list(_HELD_LOCK_FDS) + list(_HELD_CONNECTIONS):
        with suppress(OSError):
            os.close(fd)
    _HELD_LOCK_FDS.clear()
    _HELD_CONNECTIONS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


@contextmanager
def _file_lock(settings: Settings, kb: str, wait: bool, say) -> Iterator[None]:
    """An exclusive lock on ``<data>/locks/<kb>.lock`` (fcntl: released by the OS if the holder dies)."""
    path = settings.path("locks", f"{kb}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    _HELD_LOCK_FDS.add(fd)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _file_lock_holder(path)
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


def _file_lock_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
        return f"pid {info['pid']}"
    except (OSError, ValueError, KeyError):
        return "pid unknown"
