"""Incremental ingest: sync source folders into one knowledge base, in parallel, crash-safe.

    scan (stat) ─► load + chunk + tokenize (worker processes) ─► embed (one place, big batches) ─► Chroma
                                                   ─► commit KB version (ledger) ─► publish (keyword index, state.json)
                                                   ─► delete replaced vectors

Unchanged files (same size and mtime, else same content hash) are skipped without loading or embedding; changed
ones have their chunks replaced; files gone from a source lose theirs. New vectors are written before they are
published and old ones deleted after, so a question sees a document's old chunks or its new ones, never a mix.
A run killed at any point leaves vectors that are simply not live; the next run finishes the interrupted
publish, reuses the vectors already written (ids are content-addressed), and sweeps the rest.
"""

from __future__ import annotations

import gc
import hashlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, computed_field

from ingest.chunking import chunk_document
from ingest.handoff import refuse_if_served
from ingest.ledger import DocumentChange, Ledger, commit_version, kb_lock, touch_documents
from ingest.loaders import DocumentError, load_document
from kb_assistant.errors import KBError
from kb_assistant.schema import Chunk
from kb_assistant.settings import Settings, check_kb_name
from kb_assistant.store import KnowledgeBase, keyword_tokens

CHUNKER_VERSION = "2"  # bump when chunking changes: every document is then rebuilt


class UnknownSource(KBError):
    pass


class FileFailure(BaseModel):
    path: str
    reason: str


class IngestReport(BaseModel):
    kb: str
    sources: list[str] = []
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: list[FileFailure] = []
    chunks: int = 0  # chunks of the added and updated documents
    embedded: int = 0  # texts actually embedded (stored vectors reused and duplicates embedded once)
    total_chunks: int = 0  # live chunks in the KB after the run
    seconds: float = 0.0
    # where the seconds went (wall clock of this process): scan, waiting for the loaders, embedding, Chroma writes,
    # ledger commit + keyword index publish; "load_chunk_worker_s" is the loaders' own time, summed over workers
    timings: dict[str, float] = {}
    kb_version: int = 0
    run_id: int | None = None

    @computed_field
    @property
    def documents(self) -> int:
        """Documents of the synced sources that are in the KB now."""
        return self.added + self.updated + self.unchanged

    @property
    def ok(self) -> bool:
        return not self.failed


def iter_files(paths: Iterable[Path]) -> Iterable[tuple[Path, str]]:
    """(file, source name): a folder's files relative to the folder, a file by its name. Hidden files skipped."""
    for root in paths:
        if root.is_dir():
            for f in sorted(root.rglob("*")):
                rel = f.relative_to(root)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts):
                    yield f, rel.as_posix()
        else:
            yield root, root.name


def _owning_root(target: Path, known_roots: set[str]) -> str | None:
    """The remembered source folder ``target`` lies strictly inside (the outermost one), if any."""
    owners = [
        r for r in known_roots
        if target != Path(r) and target.is_relative_to(r)
        and not any(p.startswith(".") for p in target.relative_to(r).parts)  # hidden: the folder sync skips it
    ]  # fmt: skip
    return min(owners, key=len) if owners else None


def _in_scope(path: str, scope: str) -> bool:
    """Whether a document (path relative to its source) is ``scope`` or lies under it ("" = everything)."""
    return not scope or path == scope or path.startswith(scope + "/")


# --- the worker: one file → chunks (runs in a pool process) ----------------------------------------------
@dataclass
class _Task:
    root: str
    path: str
    source: str
    known_hash: str | None  # the ledger's hash: equal content means "unchanged", nothing else to do
    max_bytes: int
    chunk_size: int


@dataclass
class _Loaded:
    task: _Task
    size: int = 0
    mtime_ns: int = 0
    content_hash: str = ""
    unchanged: bool = False
    error: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0


def _load_one(task: _Task) -> _Loaded:
    started = time.perf_counter()
    out = _load(task)
    out.seconds = time.perf_counter() - started
    return out


def check_file(path: Path, source: str, *, max_bytes: int, chunk_size: int) -> str | None:
    """Load and chunk one file exactly as a sync would (same limits, same loaders): None when it would ingest,
    else the reason it would fail. The admin's upload checks each file with this before accepting it."""
    return _load(_Task(str(path.parent), str(path), source, None, max_bytes, chunk_size)).error


def _load(task: _Task) -> _Loaded:
    out = _Loaded(task)
    path = Path(task.path)
    try:
        st = path.stat()
        out.size, out.mtime_ns = st.st_size, st.st_mtime_ns
        if st.st_size <= task.max_bytes:
            out.content_hash = _file_hash(path)
            if out.content_hash == task.known_hash:
                out.unchanged = True
                return out
        doc = load_document(path, max_bytes=task.max_bytes)
        out.chunks = chunk_document(doc, task.source, task.chunk_size)
        if not out.chunks:
            raise DocumentError("no text found in document")
        out.tokens = [keyword_tokens(c) for c in out.chunks]  # tokenizing (jieba) is CPU work: do it here
    except DocumentError as exc:
        out.error = str(exc)
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


def _pool_results(tasks: list[_Task], workers: int) -> Iterator[_Loaded]:
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


# --- the indexer ---------------------------------------------------------------------------------------
@dataclass
class _Doc:
    """A document whose new state waits to be published."""

    change: DocumentChange
    old_ids: list[str]
    chunks: list[Chunk] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)


class IncrementalIndexer:
    """Syncs source roots into one KB (the caller holds the KB's lock: see ``sync_sources``)."""

    def __init__(
        self,
        settings: Settings,
        kb: str,
        *,
        embeddings=None,
        full: bool = False,
        progress: bool = False,
        on_file: Callable[[Path, str | None], None] | None = None,
    ):
        self.settings = settings
        self.kb = check_kb_name(kb)
        self.full = full
        self.progress = progress
        self.on_file = on_file
        self.ledger = Ledger(settings)
        self.index = KnowledgeBase(settings, kb, embeddings)  # the model loads only when there is work
        self.config = hashlib.sha1(
            f"{CHUNKER_VERSION}|{settings.chunk_size}|{self.index.vectors.embedder_id()}".encode()
        ).hexdigest()[:16]
        self._refs: Counter[str] = Counter()  # live chunk id → documents holding it
        self._tokens: dict[str, list[str]] | None = None  # live chunk id → keyword tokens, loaded at first publish
        self._pending: list[_Doc] = []
        self._vector_cache: dict[str, list[float]] = {}
        self._forgotten: list[str] = []  # sources whose documents are being removed: forgotten at the last commit
        self.timings: dict[str, float] = dict.fromkeys(
            ("scan_s", "wait_load_s", "load_chunk_worker_s", "embed_s", "store_s", "publish_s"), 0.0
        )
        self._absorbed: dict[str, _Doc] = {}  # file path → deletion of its row under a source now inside another

    # --- the run ---------------------------------------------------------------------------------
    def sync(self, roots: list[Path]) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(kb=self.kb)
        self.report = report
        run_id, interrupted = self.ledger.start_run(self.kb)
        report.run_id = run_id
        try:
            self._run(roots, report, interrupted)
        except BaseException as exc:  # a bug or Ctrl-C: the run is over, not "running" for ever
            self.ledger.fail_run(run_id, f"{type(exc).__name__}: {exc}")
            raise
        report.seconds = round(time.perf_counter() - started, 2)
        self.ledger.finish_run(run_id, report.model_dump(mode="json"))
        return report

    def _run(self, roots: list[Path], report: IngestReport, interrupted: bool) -> None:
        for chunk_ids in (d.chunk_ids for d in self.ledger.documents(self.kb) if d.status == "done"):
            self._refs.update(chunk_ids)
        # an earlier run died, or the KB predates the ledger: vectors may be stored that are not live
        sweep = interrupted or self.full or (not self._refs and self.index.version > 0)
        self._finish_interrupted_publish()

        t = time.perf_counter()
        tasks, deleted = self._scan(roots, report)
        self._time("scan_s", t)
        self._last_publish = time.monotonic()
        bar = self._progress_bar(len(tasks))
        workers = self.settings.ingest_workers or os.cpu_count() or 1
        try:
            results = _pool_results(tasks, workers)
            while True:
                t = time.perf_counter()
                loaded = next(results, None)
                self._time("wait_load_s", t)
                if loaded is None:
                    break
                self.timings["load_chunk_worker_s"] += loaded.seconds
                self._take(loaded, report)
                if bar is not None:
                    bar.update(1)
                    elapsed = max(bar.format_dict["elapsed"], 1e-6)
                    bar.set_postfix_str(f"{report.chunks / elapsed:.0f} chunks/s", refresh=False)
                if self._due():
                    self._publish()
            self._pending.extend(deleted)
            self._pending.extend(self._absorbed.values())
            report.deleted = len(deleted)
            self._publish(final=True)
        finally:
            if bar is not None:
                bar.close()
        if sweep and self.index.exists():
            self._sweep_orphans()
        report.kb_version = self.index.version
        report.total_chunks = len(self._refs)
        report.timings = {k: round(v, 2) for k, v in self.timings.items()}

    def _time(self, key: str, since: float) -> None:
        self.timings[key] += time.perf_counter() - since

    def forget(self, roots: list[Path]) -> IngestReport:
        """Stop remembering sources: their chunks leave the KB (Chroma and keyword index) in one new KB version,
        and their ledger rows go in the same transaction. Raises UnknownSource, before changing anything, for a
        path that is not a remembered source of this KB."""
        known = self._known_roots()
        keys = []
        for root in roots:
            key = str(root) if str(root) in known else str(root.resolve())
            if key not in known:
                raise UnknownSource(self._unknown_source_message(key, known))
            if key not in keys:
                keys.append(key)
        started = time.perf_counter()
        self.report = report = IngestReport(kb=self.kb, sources=keys)
        report.run_id, _ = self.ledger.start_run(self.kb)
        for chunk_ids in (d.chunk_ids for d in self.ledger.documents(self.kb) if d.status == "done"):
            self._refs.update(chunk_ids)
        self._finish_interrupted_publish()
        for key in keys:
            docs = self._forget_root(key)
            report.deleted += len(docs)
            self._pending.extend(docs)
        self._publish(final=True)
        report.kb_version = self.index.version
        report.total_chunks = len(self._refs)
        report.seconds = round(time.perf_counter() - started, 2)
        self.ledger.finish_run(report.run_id, report.model_dump(mode="json"))
        return report

    def _unknown_source_message(self, key: str, known: set[str]) -> str:
        msg = f"'{key}' is not a remembered source of knowledge base '{self.kb}'"
        owner = _owning_root(Path(key), known)
        if owner:
            return (
                f"{msg}: it is part of the source '{owner}'; delete or move it and re-sync that source "
                f"(kb ingest '{owner}' --kb {self.kb}), or forget the whole source"
            )
        others = sorted({s.kb for s in self.ledger.sources() if s.root == key})
        if others:
            return f"{msg}: it is a source of {', '.join(repr(k) for k in others)}: add --kb {others[0]}"
        listed = ", ".join(f"'{r}'" for r in sorted(known)) or "none"
        return f"{msg} (its sources: {listed}; see kb status)"

    def _scan(self, roots: list[Path], report: IngestReport) -> tuple[list[_Task], list[_Doc]]:
        """Stat every file: unchanged ones are settled here; the rest become tasks; vanished ones deletions.

        A path inside a remembered source folder is synced as that part of the source (same document rows, same
        chunk ids), not as a second source; a folder that contains remembered sources absorbs them.
        """
        tasks: list[_Task] = []
        deleted: list[_Doc] = []
        max_bytes = int(self.settings.max_file_mb * 1e6)
        self._rows = {}
        known = self._known_roots()
        for root in roots:
            target = root.resolve()
            owner = _owning_root(target, known)
            root_key = owner or str(target)
            scope = target.relative_to(owner).as_posix() if owner else ""  # "" = the whole source
            rows = {d.path: d for d in self.ledger.documents(self.kb, root_key) if _in_scope(d.path, scope)}
            if not root.exists() and not (owner and rows):  # a file deleted from a source: its rows go below
                self._fail(root, self._missing_reason(root_key, known), report, root_missing=True)
                continue
            if root_key not in report.sources:
                report.sources.append(root_key)
            if owner is None:
                self.ledger.remember_source(self.kb, root_key)
            for nested in sorted(r for r in known if r != root_key and Path(r).is_relative_to(target)):
                for doc in self._forget_root(nested):  # its documents come back as this source's
                    where = Path(nested) / doc.change.path if Path(nested).is_dir() else Path(nested)
                    self._absorbed[str(where)] = doc
            seen = set()
            for path, rel in iter_files([target]) if root.exists() else ():
                source = f"{scope}/{rel}" if scope and target.is_dir() else (scope or rel)
                seen.add(source)
                if (root_key, source) in self._rows:  # named twice (a folder and a file in it)
                    continue
                row = rows.get(source)
                self._rows[(root_key, source)] = (path, row)
                same_config = row is not None and row.status == "done" and row.config == self.config
                if same_config and not self.full:
                    try:
                        st = path.stat()
                    except OSError:
                        st = None
                    if st is not None and (st.st_size, st.st_mtime_ns) == (row.size, row.mtime_ns):
                        report.unchanged += 1
                        if self.on_file:
                            self.on_file(path, None)
                        continue
                known_hash = row.content_hash if same_config and not self.full else None
                tasks.append(_Task(root_key, str(path), source, known_hash, max_bytes, self.settings.chunk_size))
            for source in sorted(set(rows) - seen):
                row = rows[source]
                change = DocumentChange(root_key, source, 0, 0, "", "deleted", [], self.config, delete=True)
                deleted.append(_Doc(change, old_ids=list(row.chunk_ids) if row.status == "done" else []))
        return tasks, deleted

    def _known_roots(self) -> set[str]:
        """Remembered sources, and roots that still own documents (a source forgotten by an older version)."""
        roots = {s.root for s in self.ledger.sources(self.kb)}
        return roots | {d.root for d in self.ledger.documents(self.kb)}

    def _forget_root(self, root_key: str) -> list[_Doc]:
        """Deletions of every document of a source; the source itself is forgotten when they are committed."""
        if root_key in self._forgotten:
            return []
        self._forgotten.append(root_key)
        return [
            _Doc(
                DocumentChange(root_key, d.path, 0, 0, "", "deleted", [], self.config, delete=True),
                old_ids=list(d.chunk_ids) if d.status == "done" else [],
            )
            for d in self.ledger.documents(self.kb, root_key)
        ]

    def _missing_reason(self, root_key: str, known: set[str]) -> str:
        if root_key not in known:
            return "no such file or folder"
        n = sum(1 for d in self.ledger.documents(self.kb, root_key) if d.status == "done")
        return (
            f"remembered source is gone from disk: its {n} documents stay in the KB; if it was moved or deleted "
            f"on purpose, remove them with: kb ingest --forget '{root_key}' --kb {self.kb}"
        )

    def _take(self, loaded: _Loaded, report: IngestReport) -> None:
        t = loaded.task
        root_key = t.root
        path, row = self._rows[(root_key, t.source)]
        old_ids = list(row.chunk_ids) if row is not None and row.status == "done" else []
        if loaded.unchanged:
            report.unchanged += 1
            touch_documents(
                self.ledger,
                self.kb,
                [DocumentChange(root_key, t.source, loaded.size, loaded.mtime_ns, "", "done", [], self.config)],
            )
        elif loaded.error:
            self._fail(path, loaded.error, report)
            change = DocumentChange(
                root_key, t.source, loaded.size, loaded.mtime_ns, loaded.content_hash, "failed", [], self.config,
                error=loaded.error,
            )  # fmt: skip
            # a document that can no longer be read loses its old chunks: the KB must not serve stale content
            self._pending.append(_Doc(change, old_ids))
        else:
            if old_ids:
                report.updated += 1
            else:
                report.added += 1
            report.chunks += len(loaded.chunks)
            change = DocumentChange(
                root_key, t.source, loaded.size, loaded.mtime_ns, loaded.content_hash, "done",
                [c.id for c in loaded.chunks], self.config,
            )  # fmt: skip
            self._pending.append(_Doc(change, old_ids, loaded.chunks, loaded.tokens))
        absorbed = self._absorbed.pop(str(path), None)
        if absorbed is not None:  # its copy under the absorbed source goes in the same KB version
            self._pending.append(absorbed)
        if self.on_file and not loaded.unchanged:
            self.on_file(path, loaded.error)

    def _fail(self, path: Path, reason: str, report: IngestReport, *, root_missing: bool = False) -> None:
        report.failed.append(FileFailure(path=str(path), reason=reason))
        if self.on_file and root_missing:
            self.on_file(path, reason)

    def _due(self) -> bool:
        n = sum(len(d.chunks) for d in self._pending)
        if n >= self.settings.ingest_publish_chunks:
            return True
        return bool(self._pending) and time.monotonic() - self._last_publish >= self.settings.ingest_publish_seconds

    # --- publishing -------------------------------------------------------------------------------
    def _publish(self, *, final: bool = False) -> None:
        """Write vectors, commit the version to the ledger, publish it, delete what it replaced — in that order.

        The last publish of a run also forgets the sources whose documents it removed, in the same transaction.
        """
        docs, self._pending = self._pending, []
        self._last_publish = time.monotonic()
        forget = self._forgotten if final else []
        if not docs and not forget:
            return
        new_chunks = [c for d in docs for c in d.chunks]
        if new_chunks:
            self._ensure_embeddings()
            self.report.embedded += self.index.vectors.write(
                new_chunks, reuse_stored=not self.full, cache=self._vector_cache, timings=self.timings
            )
        self._pause()
        t = time.perf_counter()

        live_before = set(self._refs)
        for d in docs:
            self._refs.subtract(d.old_ids)
            self._refs.update(d.change.chunk_ids)
        self._refs = +self._refs  # drop ids no document holds any more
        added = sorted(set(self._refs) - live_before)
        removed = sorted(live_before - set(self._refs))
        changed = added or removed
        version = max(self.ledger.latest_version(self.kb), self.index.version) + 1 if changed else None
        changes = [d.change for d in docs]
        run_id = self.report.run_id
        commit_version(self.ledger, self.kb, run_id, changes, added, removed, version, forget_sources=forget)
        self._pause()

        if changed:
            tokens = self._live_tokens()
            for d in docs:
                tokens.update(zip(d.change.chunk_ids, d.tokens, strict=True))
            for cid in removed:
                tokens.pop(cid, None)
            self.index.publish(version, tokens, writer_pid=os.getpid())  # healthz: who wrote it
            self._pause()
            if removed:
                self.index.vectors.delete(removed)
        self._time("publish_s", t)  # ledger commit, keyword index, deleting replaced vectors

    def _finish_interrupted_publish(self) -> None:
        """The ledger committed a version that a killed run never published: publish it now."""
        latest = self.ledger.latest_version(self.kb)
        if latest > self.index.version:
            self.index.publish(latest, self._live_tokens())

    def _live_tokens(self) -> dict[str, list[str]]:
        """Keyword tokens of the live chunks: from the published index, re-tokenizing only what it lacks."""
        if self._tokens is None:
            published = self.index.published_tokens() or {}
            self._tokens = {cid: published[cid] for cid in self._refs if cid in published}
            missing = [cid for cid in self._refs if cid not in self._tokens]
            if missing:
                for cid, chunk in self.index.get(missing).items():
                    self._tokens[cid] = keyword_tokens(chunk)
        return self._tokens

    def _sweep_orphans(self) -> None:
        """Delete stored vectors no live chunk owns (left by an interrupted run, or by a pre-ledger KB)."""
        self.index.vectors.delete_orphans(set(self._refs))

    def _ensure_embeddings(self) -> None:
        if self.index.embeddings is None:
            from kb_assistant.embeddings import make_embeddings

            self.index.embeddings = make_embeddings(self.settings)

    def _pause(self) -> None:
        if self.settings.ingest_test_pause_s:
            time.sleep(self.settings.ingest_test_pause_s)

    def _progress_bar(self, total: int):
        if not self.progress or total == 0:
            return None
        from tqdm import tqdm

        return tqdm(total=total, unit="doc", file=sys.stderr, desc=f"ingest {self.kb}", dynamic_ncols=True)


# --- entry points ------------------------------------------------------------------------------------
def sync_sources(
    settings: Settings,
    roots: list[Path],
    kb: str = "default",
    *,
    full: bool = False,
    wait: bool = True,
    progress: bool = False,
    embeddings=None,
    on_file: Callable[[Path, str | None], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> IngestReport:
    """Sync ``roots`` into ``kb`` under the KB's lock (a second ingest waits, or raises IngestLocked). Refused
    (ServerRunning) while another process serves this embedded data dir: ``ingest.handoff``."""
    check_kb_name(kb)
    refuse_if_served(settings)
    with kb_lock(settings, kb, wait=wait, say=say):
        indexer = IncrementalIndexer(settings, kb, embeddings=embeddings, full=full, progress=progress, on_file=on_file)
        return indexer.sync(roots)


def forget_sources(
    settings: Settings,
    roots: list[Path],
    kb: str = "default",
    *,
    wait: bool = True,
    say: Callable[[str], None] | None = None,
) -> IngestReport:
    """Forget remembered sources of ``kb`` under the KB's lock: their chunks leave the KB in one new version."""
    check_kb_name(kb)
    refuse_if_served(settings)
    with kb_lock(settings, kb, wait=wait, say=say):
        return IncrementalIndexer(settings, kb).forget(roots)


def sync_all(settings: Settings, **kwargs) -> list[IngestReport]:
    """Re-sync every remembered source of every KB (what the nightly cron runs)."""
    ledger = Ledger(settings)
    by_kb: dict[str, list[Path]] = {}
    for src in ledger.sources():
        by_kb.setdefault(src.kb, []).append(Path(src.root))
    return [sync_sources(settings, roots, kb, **kwargs) for kb, roots in sorted(by_kb.items())]


def ingest_paths(
    settings: Settings,
    paths: list[Path],
    kb: str = "default",
    *,
    on_file: Callable[[Path, str | None], None] | None = None,
) -> IngestReport:
    """Sync every file under ``paths`` into ``kb``. ``on_file(path, error)`` is called once per file."""
    return sync_sources(settings, paths, kb, on_file=on_file)


def sample_kb_root() -> Path:
    """The bundled sample knowledge bases: one folder per KB."""
    import kb_assistant

    return Path(kb_assistant.__file__).resolve().parent / "sample_kb"


def ensure_sample_kbs(settings: Settings, say: Callable[[str], None] = print) -> list[IngestReport]:
    """With an empty data directory, ingest the bundled sample KBs (and say so); otherwise do nothing."""
    from kb_assistant.store import list_kbs

    if list_kbs(settings):
        return []
    reports = []
    for folder in sorted(p for p in sample_kb_root().iterdir() if p.is_dir()):
        say(f"No knowledge base in {settings.data_dir} yet: ingesting the bundled sample KB '{folder.name}' …")
        reports.append(ingest_paths(settings, [folder], folder.name))
    return reports


def run_handed_off(settings: Settings, job: dict, *, embeddings=None) -> list:
    """What the server runs for a handed-off job: the same pipeline calls `kb ingest` makes."""
    paths = [Path(p) for p in job.get("paths") or []]
    kb = job.get("kb") or "default"
    if job.get("forget"):
        return [forget_sources(settings, paths, kb)]
    options = dict(full=bool(job.get("full")), embeddings=embeddings)
    if job.get("all"):
        return sync_all(settings, **options)
    return [sync_sources(settings, paths, kb, **options)]
