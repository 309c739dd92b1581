"""The ingest workers: one file → its chunks and keyword tokens, in a pool of forked processes.

A worker stats and hashes the file (equal to the ledger's hash: unchanged, nothing more to do), loads it with the
loaders, chunks it and tokenizes the chunks; a file that cannot be ingested comes back with the reason, never an
exception. The indexer (``ingest.indexer``) feeds it tasks and takes the results in order.
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunking import chunk_document
from ingest.loaders import DocumentError, load_document
from ingest.partition_api import PartitionAPI, PartitionServiceError
from kb_assistant.schema import Chunk
from kb_assistant.store import keyword_tokens


@dataclass
class LoadTask:
    root: str
    path: str
    source: str
    known_hash: str | None  # the ledger's hash: equal content means "unchanged", nothing else to do
    max_bytes: int
    chunk_size: int
    partition_api: PartitionAPI | None = None  # unstructured's API parses the formats it handles


@dataclass
class LoadedFile:
    task: LoadTask
    size: int = 0
    mtime_ns: int = 0
    content_hash: str = ""
    unchanged: bool = False
    error: str | None = None
    service_error: str | None = None  # the partition API failed: the run stops (not this file's fault)
    chunks: list[Chunk] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0


def _load_one(task: LoadTask) -> LoadedFile:
    started = time.perf_counter()
    out = _load(task)
    out.seconds = time.perf_counter() - started
    return out


def check_file(
    path: Path, source: str, *, max_bytes: int, chunk_size: int, partition_api: PartitionAPI | None = None
) -> str | None:
    """Load and chunk one file exactly as a sync would (same limits, same loaders): None when it would ingest,
    else the reason it would fail. The admin's upload checks each file with this before accepting it."""
    loaded = _load(LoadTask(str(path.parent), str(path), source, None, max_bytes, chunk_size, partition_api))
    return loaded.error or loaded.service_error


def _load(task: LoadTask) -> LoadedFile:
    out = LoadedFile(task)
    path = Path(task.path)
    try:
        st = path.stat()
        out.size, out.mtime_ns = st.st_size, st.st_mtime_ns
        if st.st_size <= task.max_bytes:
            out.content_hash = _file_hash(path)
            if out.content_hash == task.known_hash:
                out.unchanged = True
                return out
        doc = load_document(path, max_bytes=task.max_bytes, partition_api=task.partition_api)
        out.chunks = chunk_document(doc, task.source, task.chunk_size)
        if not out.chunks:
            raise DocumentError("no text found in document")
        out.tokens = [keyword_tokens(c) for c in out.chunks]  # tokenizing (jieba) is CPU work: do it here
    except DocumentError as exc:
        out.error = str(exc)
    except PartitionServiceError as exc:
        out.service_error = str(exc)
    except OSError as exc:
        out.error = f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # a loader library's bug must fail one file, not the run
        out.error = f"unexpected error while loading ({type(exc).__name__}: {exc})"
    return out


def _file_hash(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _die_with_parent() -> None:
    """A worker must not outlive an ingest killed with -9 (it would wait on its queue forever)."""
    parent = os.getppid()
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
        if os.getppid() != parent:
            os._exit(1)
        return
    except (OSError, AttributeError):
        pass
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def load_files(tasks: list[LoadTask], workers: int) -> Iterator[LoadedFile]:
    """Each task's result, in task order: in forked worker processes when there are enough tasks to pay for them."""
    if workers <= 1 or len(tasks) < 8:
        yield from map(_load_one, tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork: workers inherit the imports and start at once; they never touch torch or Chroma. A fork copies the
    # locks other threads hold at that instant (SQLite's, when a question is answered meanwhile): a worker whose
    # garbage collector then frees an inherited SQLite object waits on that lock forever. Frozen, the objects that
    # exist at fork time are never collected in the worker.
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_die_with_parent) as pool:
        gc.freeze()
        try:  # map submits every task at once: the workers are forked before it returns
            results = pool.map(_load_one, tasks, chunksize=max(1, min(16, len(tasks) // (workers * 8))))
        finally:
            gc.unfreeze()
        yield from results
