"""The incremental indexer: one run that syncs source roots into one knowledge base, crash-safe.

    scan (stat; ``ingest.sources``) ─► load + chunk + tokenize (``ingest.worker``) ─► embed (big batches) ─► Chroma
                                    ─► commit KB version (ledger) ─► publish (the database's published state)
                                    ─► delete replaced vectors

Unchanged files (same size and mtime, else same content hash) are skipped without loading or embedding; changed
ones have their chunks replaced; files gone from a source lose theirs; files an admin excluded are skipped. New
vectors are written before they are published and old ones deleted after, so a question sees a document's old
chunks or its new ones, never a mix. A run killed at any point leaves vectors that are simply not live; the next
run finishes the interrupted publish, reuses the vectors already written (ids are content-addressed), and sweeps
the rest. The caller holds the KB's lock: ``ingest.pipeline`` has the entry points.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.ledger import EXCLUDED, DocumentChange, Ledger, commit_version, touch_documents
from ingest.partition_api import PartitionAPI, PartitionServiceError
from ingest.report import FileFailure, IngestReport
from ingest.sources import (
    UnknownSource,
    in_scope,
    iter_files,
    known_roots,
    missing_reason,
    owning_root,
    unknown_source_message,
)
from ingest.visibility import republish, visibility
from ingest.worker import LoadedFile, LoadTask, load_files
from kb_assistant.errors import KBError
from kb_assistant.schema import Chunk
from kb_assistant.settings import Settings, check_kb_name
from kb_assistant.store import KnowledgeBase, keyword_tokens

CHUNKER_VERSION = "2"  # bump when chunking changes: every document is then rebuilt


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
        self.parser = PartitionAPI.from_settings(settings)  # None: the local loaders
        parsed_by = f"|unstructured-api:{self.parser.strategy}" if self.parser else ""  # a switch re-parses
        self.config = hashlib.sha1(
            f"{CHUNKER_VERSION}|{settings.chunk_size}|{self.index.vectors.embedder_id()}{parsed_by}".encode()
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
            results = load_files(tasks, workers)
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
        self._publish_groups(report)
        report.kb_version = self.index.version
        report.total_chunks = len(self._refs)
        report.timings = {k: round(v, 2) for k, v in self.timings.items()}

    def _publish_groups(self, report: IngestReport) -> None:
        """Groups that changed with no document changing (``--groups``, a ``.kb-groups`` file) are published as a
        new KB version, nothing re-embedded; a document whose groups file cannot be read is reported failed (it
        stays hidden from everyone until the file is fixed)."""
        _, errors = republish(self.index, self.ledger, self.kb)
        for (root, path), reason in sorted(errors.items()):
            where = Path(root) / path if Path(root).is_dir() else Path(root)
            report.failed.append(FileFailure(path=str(where), reason=reason))
            if self.on_file:
                self.on_file(where, reason)

    def _time(self, key: str, since: float) -> None:
        self.timings[key] += time.perf_counter() - since

    def forget(self, roots: list[Path]) -> IngestReport:
        """Stop remembering sources: their chunks leave the KB (Chroma and keyword index) in one new KB version,
        and their ledger rows go in the same transaction. Raises UnknownSource, before changing anything, for a
        path that is not a remembered source of this KB."""
        known = known_roots(self.ledger, self.kb)
        keys = []
        for root in roots:
            key = str(root) if str(root) in known else str(root.resolve())
            if key not in known:
                raise UnknownSource(unknown_source_message(self.ledger, self.kb, key, known))
            if key not in keys:
                keys.append(key)
        return self._remove([d for key in keys for d in self._forget_root(key)], keys)

    def exclude(self, root: str, paths: list[str], note: str) -> IngestReport:
        """Leave documents of a remembered source out of the KB without touching the files: their chunks go in one
        new KB version, and their rows stay, status "excluded" (``note`` says who and when), which every later
        sync skips — ``kb ingest --all`` and the cron included — until ``include`` undoes it."""
        rows = {d.path: d for d in self.ledger.documents(self.kb, root)}
        missing = [p for p in paths if p not in rows]
        if missing:
            raise KBError(f"no document {missing[0]!r} from source '{root}' in knowledge base '{self.kb}'")
        docs = [
            _Doc(DocumentChange(root, p, rows[p].size, rows[p].mtime_ns, rows[p].content_hash, EXCLUDED, [],
                                rows[p].config, error=note),
                 old_ids=list(rows[p].chunk_ids) if rows[p].status == "done" else [])
            for p in paths
        ]  # fmt: skip
        return self._remove(docs, [root])

    def include(self, root: str, paths: list[str]) -> IngestReport:
        """Undo ``exclude``: the rows go, and the files still on disk are synced back in (one new KB version)."""
        self.ledger.drop_exclusions(self.kb, root, paths)
        return self.sync([Path(root) / p for p in paths if (Path(root) / p).exists()])

    def _remove(self, docs: list[_Doc], sources: list[str]) -> IngestReport:
        """One run that publishes ``docs`` (deletions or exclusions) in one new KB version."""
        started = time.perf_counter()
        self.report = report = IngestReport(kb=self.kb, sources=sources)
        report.run_id, _ = self.ledger.start_run(self.kb)
        for chunk_ids in (d.chunk_ids for d in self.ledger.documents(self.kb) if d.status == "done"):
            self._refs.update(chunk_ids)
        self._finish_interrupted_publish()
        report.deleted = len(docs)
        self._pending.extend(docs)
        self._publish(final=True)
        self._publish_groups(report)  # a chunk the forgotten source shared may now have other groups
        report.kb_version = self.index.version
        report.total_chunks = len(self._refs)
        report.seconds = round(time.perf_counter() - started, 2)
        self.ledger.finish_run(report.run_id, report.model_dump(mode="json"))
        return report

    def _scan(self, roots: list[Path], report: IngestReport) -> tuple[list[LoadTask], list[_Doc]]:
        """Stat every file: unchanged ones are settled here; the rest become tasks; vanished ones deletions.

        A path inside a remembered source folder is synced as that part of the source (same document rows, same
        chunk ids), not as a second source; a folder that contains remembered sources absorbs them.
        """
        tasks: list[LoadTask] = []
        deleted: list[_Doc] = []
        max_bytes = int(self.settings.max_file_mb * 1e6)
        self._rows = {}
        known = known_roots(self.ledger, self.kb)
        for root in roots:
            target = root.resolve()
            owner = owning_root(target, known)
            root_key = owner or str(target)
            scope = target.relative_to(owner).as_posix() if owner else ""  # "" = the whole source
            rows = {d.path: d for d in self.ledger.documents(self.kb, root_key) if in_scope(d.path, scope)}
            if not root.exists() and not (owner and rows):  # a file deleted from a source: its rows go below
                self._fail(root, missing_reason(self.ledger, self.kb, root_key, known), report, root_missing=True)
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
                if row is not None and row.status == EXCLUDED:  # left out by an admin: the file stays, unread
                    report.excluded += 1
                    continue
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
                tasks.append(
                    LoadTask(root_key, str(path), source, known_hash, max_bytes, self.settings.chunk_size, self.parser)
                )
            for source in sorted(set(rows) - seen):
                row = rows[source]
                if row.status == EXCLUDED:  # the exclusion outlives the file's absence (a restore from backup)
                    continue
                change = DocumentChange(root_key, source, 0, 0, "", "deleted", [], self.config, delete=True)
                deleted.append(_Doc(change, old_ids=list(row.chunk_ids) if row.status == "done" else []))
        return tasks, deleted

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

    def _take(self, loaded: LoadedFile, report: IngestReport) -> None:
        t = loaded.task
        root_key = t.root
        path, row = self._rows[(root_key, t.source)]
        old_ids = list(row.chunk_ids) if row is not None and row.status == "done" else []
        if loaded.service_error:  # the parser is away: stop before any document loses its chunks
            raise PartitionServiceError(loaded.service_error)
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
            # the chunks' access groups as the ledger and the .kb-groups files say now: published with them
            self.index.publish(version, tokens, visibility(self.ledger, self.kb)[0], writer_pid=os.getpid())
            self._pause()
            if removed:
                self.index.vectors.delete(removed)
        self._time("publish_s", t)  # ledger commit, keyword index, deleting replaced vectors

    def _finish_interrupted_publish(self) -> None:
        """The ledger committed a version that a killed run never published: publish it now."""
        latest = self.ledger.latest_version(self.kb)
        if latest > self.index.version:
            self.index.publish(latest, self._live_tokens(), visibility(self.ledger, self.kb)[0])

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
