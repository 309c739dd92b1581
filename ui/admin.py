"""What the HR admin does with knowledge bases and documents, without a shell; and who may do it.

Every action runs the ingest pipeline's own entry points (``ingest.pipeline.sync_sources`` / ``forget_sources`` /
``exclude_documents`` / ``include_documents``)
in this process (embedded Chroma has one writer: the server). Uploaded files live under
``DATA_DIR/uploads/KB/``, a remembered source of the KB, so ``kb ingest --all`` and a rebuild re-read them.

An upload is checked file by file first (the pipeline's own loader, so the reasons are the CLI's): a bad file is
refused beside its name and never reaches the KB folder, so it cannot replace a good document of the same name.
The Gradio pages (``ui.admin_app``) and the HTTP API (``ui.admin_api``) are thin over ``DocumentLibrary``; both
check the role with ``require_admin`` on the server.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ingest.ledger import EXCLUDED, Ledger
from ingest.pipeline import exclude_documents, forget_sources, include_documents, sync_sources
from ingest.report import IngestReport
from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError
from kb_assistant.schema import Chunk
from kb_assistant.settings import check_kb_name

KEY_SEP = "::"  # a document's key: "<source root>::<path relative to it>"


class AdminOnly(KBError):
    """A signed-in user without the admin role asked for an admin action (HTTP 403)."""


def user_role(queue, name: str | None) -> str | None:
    """The role of a console user (``kb user add NAME --role admin|agent``), None for no such (or a disabled)
    user: read per request, so a role changed or an account disabled counts from the next click on."""
    return queue.role_of(name)


def require_admin(queue, name: str | None) -> str:
    """Raise AdminOnly unless ``name`` is an admin; checked on the server for every admin action."""
    role = user_role(queue, name)
    if role != "admin":
        who = f"user {name!r} is {'an ' + role if role else 'not an enabled user'}" if name else "not signed in"
        raise AdminOnly(f"{who}: only an admin may manage knowledge bases and see the dashboard "
                        "(an admin grants it with: kb user add NAME --role admin)")  # fmt: skip
    return name


def admin_login(queue) -> Callable[[str, str], bool]:
    """Gradio's auth callable for the admin pages: the right password *and* the admin role."""

    def check(username: str, password: str) -> bool:
        try:
            return queue.check_password(username, password) and user_role(queue, username) == "admin"
        except KBError:
            return False

    return check


@dataclass
class FileOutcome:
    name: str
    ok: bool
    reason: str = ""  # why the file was refused (the CLI's one-line reason)


@dataclass
class UploadResult:
    kb: str
    files: list[FileOutcome] = field(default_factory=list)
    report: IngestReport | None = None

    @property
    def refused(self) -> list[FileOutcome]:
        return [f for f in self.files if not f.ok]


@dataclass
class DocumentRow:
    key: str
    source: str  # the document's name in citations
    status: str  # ingested | failed
    reason: str
    chunks: int
    changed: str  # when its chunks last changed
    synced: str  # when its source was last synced
    root: str
    uploaded: bool
    groups: str = "everyone"  # the access groups its chunks are limited to (``ingest.visibility``)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="seconds") if ts else ""


def split_key(key: str) -> tuple[str, str]:
    root, sep, path = (key or "").rpartition(KEY_SEP)
    if not sep or not root or not path:
        raise KBError(f"document {key!r}: pick a document in the table (its key is SOURCE{KEY_SEP}PATH)")
    return root, path


class DocumentLibrary:
    """Knowledge bases and their documents, as the admin sees them. Raises KBError with the reason."""

    def __init__(self, assistant: Assistant):
        self.assistant = assistant
        self.settings = assistant.settings

    def uploads_dir(self, kb: str) -> Path:
        return (self.settings.data_dir / "uploads" / check_kb_name(kb)).resolve()

    def _check_kb(self, kb: str) -> str:
        check_kb_name(kb)
        if kb not in self.assistant.knowledge_bases():
            raise KBError(f"no knowledge base named {kb!r}: create it first (Knowledge bases › Create)")
        return kb

    # --- knowledge bases ------------------------------------------------------------------------------
    def knowledge_bases(self) -> list[dict]:
        ledger = Ledger(self.settings)
        out = []
        for kb in self.assistant.knowledge_bases():
            docs = ledger.documents(kb)
            done = [d for d in docs if d.status == "done"]
            out.append({
                "kb": kb, "documents": len(done), "failed": sum(d.status == "failed" for d in docs),
                "excluded": sum(d.status == EXCLUDED for d in docs),
                "chunks": len({c for d in done for c in d.chunk_ids}), "version": self.assistant.index(kb).version,
                "sources": len(ledger.sources(kb)),
            })  # fmt: skip
        return out

    def create_kb(self, kb: str) -> str:
        """An empty KB with its upload folder remembered as a source."""
        from kb_assistant.store import KnowledgeBase

        kb = check_kb_name((kb or "").strip())
        if kb in self.assistant.knowledge_bases():
            raise KBError(f"a knowledge base named {kb!r} already exists: upload into it")
        folder = self.uploads_dir(kb)
        folder.mkdir(parents=True, exist_ok=True)
        KnowledgeBase(self.settings, kb, None).vectors.collection  # noqa: B018 (creates it; no model needed)
        Ledger(self.settings).remember_source(kb, str(folder))
        return kb

    # --- uploads -------------------------------------------------------------------------------------
    def upload(
        self, kb: str, files: Iterable[tuple[str, Path]], on_file: Callable[[str, str | None], None] | None = None
    ) -> UploadResult:
        """Check each (name, temp path), move the good ones into the KB's upload folder, sync it incrementally.

        ``on_file(name, reason)`` is called as each file is settled (reason None: accepted / ingested)."""
        from ingest.partition_api import PartitionAPI
        from ingest.worker import check_file  # the pipeline's own per-file load: the same limits and reasons

        kb = self._check_kb(kb)
        folder = self.uploads_dir(kb)
        staging = folder / f".staging-{uuid.uuid4().hex[:8]}"  # hidden: a sync running meanwhile skips it
        staging.mkdir(parents=True)
        result = UploadResult(kb)
        max_bytes = int(self.settings.max_file_mb * 1e6)
        parser = PartitionAPI.from_settings(self.settings)
        try:
            accepted = []
            for name, src in files:
                name = Path(str(name).replace("\\", "/")).name
                if not name or name.startswith("."):
                    reason = "a hidden file name (starting with '.') is skipped by ingest: rename the file"
                else:
                    tmp = staging / name
                    shutil.copyfile(src, tmp)
                    reason = check_file(
                        tmp, name, max_bytes=max_bytes, chunk_size=self.settings.chunk_size, partition_api=parser
                    )
                result.files.append(FileOutcome(name, reason is None, reason or ""))
                if reason is None:
                    accepted.append(name)
                elif on_file:
                    on_file(name, reason)
            for name in accepted:
                (staging / name).replace(folder / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if accepted:
            result.report = self._sync(kb, [folder], on_file)
        return result

    def _sync(self, kb: str, roots: list[Path], on_file=None) -> IngestReport:
        def each(path: Path, error: str | None) -> None:
            if on_file:
                on_file(path.name, error)

        return sync_sources(self.settings, roots, kb, embeddings=self.assistant.embeddings, on_file=each)

    # --- documents -----------------------------------------------------------------------------------
    def documents(self, kb: str) -> list[DocumentRow]:
        from ingest.visibility import BadGroupsFile, GroupResolver

        kb = self._check_kb(kb)
        ledger = Ledger(self.settings)
        sources = ledger.sources(kb)
        synced = {s.root: s.last_synced_at for s in sources}
        resolver = GroupResolver({s.root: frozenset(s.groups or ()) for s in sources})
        uploads = str(self.uploads_dir(kb))

        def groups(root: str, path: str) -> str:
            try:
                return ", ".join(sorted(resolver.groups(root, path))) or "everyone"
            except BadGroupsFile as exc:
                return f"hidden from everyone: {exc}"

        return [
            DocumentRow(
                key=f"{d.root}{KEY_SEP}{d.path}",
                source=d.path,
                status={"done": "ingested", EXCLUDED: "excluded"}.get(d.status, "failed"),
                reason=d.error or "",
                chunks=len(d.chunk_ids) if d.status == "done" else 0,
                changed=_when(d.updated_at),
                synced=_when(synced.get(d.root)),
                root=d.root,
                uploaded=d.root == uploads,
                groups=groups(d.root, d.path),
            )  # fmt: skip
            for d in sorted(ledger.documents(kb), key=lambda d: (d.root != uploads, d.root, d.path))
        ]

    def _document(self, kb: str, key: str):
        root, path = split_key(key)
        doc = next((d for d in Ledger(self.settings).documents(kb, root) if d.path == path), None)
        if doc is None:
            raise KBError(f"no document {path!r} from source {root!r} in knowledge base {kb!r}: refresh the list")
        return doc

    def chunks(self, kb: str, key: str) -> list[Chunk]:
        """The document's chunks as the KB holds them (in document order)."""
        kb = self._check_kb(kb)
        doc = self._document(kb, key)
        if doc.status == EXCLUDED:
            raise KBError(f"{doc.path!r} is excluded from the KB ({doc.error}): it has no chunks; restore it first")
        if doc.status != "done":
            raise KBError(f"{doc.path!r} was not ingested ({doc.error}): it has no chunks; fix the file and upload it")
        got = self.assistant.index(kb).get(list(doc.chunk_ids))
        return [got[c] for c in doc.chunk_ids if c in got]

    def delete(self, kb: str, key: str, by: str = "") -> IngestReport:
        """Remove a document: its chunks leave the KB in one new version (the cache drops answers citing them).

        An upload's file is deleted. A file of a server folder (``kb ingest FOLDER``) is not ours to delete: it is
        excluded — remembered in the ledger with the source, skipped by every later sync (``kb ingest --all``, the
        cron), listed as "excluded" and undone by ``restore``."""
        kb = self._check_kb(kb)
        doc = self._document(kb, key)
        root = Path(doc.root)
        if doc.status == EXCLUDED:
            raise KBError(f"{doc.path!r} is already excluded from knowledge base {kb!r} (restore brings it back)")
        if doc.root == str(self.uploads_dir(kb)):
            (root / doc.path).unlink(missing_ok=True)
            return self._sync(kb, [root / doc.path])  # a file gone from its source: its rows go, in one version
        if not root.is_dir():  # the document is a source of its own (kb ingest FILE)
            return forget_sources(self.settings, [root], kb)
        note = f"excluded by {by or 'an admin'} on {datetime.now().isoformat(sep=' ', timespec='seconds')}"
        return exclude_documents(self.settings, kb, doc.root, [doc.path], note)

    def restore(self, kb: str, key: str) -> IngestReport:
        """Undo the exclusion of a server folder's file: it is synced back in (if it is still there)."""
        kb = self._check_kb(kb)
        doc = self._document(kb, key)
        return include_documents(self.settings, kb, doc.root, [doc.path], embeddings=self.assistant.embeddings)

    def sources(self, kb: str) -> list[str]:
        kb = self._check_kb(kb)
        return [s.root for s in Ledger(self.settings).sources(kb)]

    def resync(self, kb: str, root: str, on_file=None) -> IngestReport:
        kb = self._check_kb(kb)
        if root not in self.sources(kb):
            raise KBError(f"{root!r} is not a remembered source of knowledge base {kb!r}: pick one in the list")
        return self._sync(kb, [Path(root)], on_file)

    def runs(self, kb: str, limit: int = 10) -> list[dict]:
        """The last ingest runs, newest first, each with its report."""
        from ingest.status import run_summary  # the summary `kb status` prints

        kb = self._check_kb(kb)
        return [run_summary(r) for r in Ledger(self.settings).runs(kb, limit=limit)]


def report_line(report: IngestReport | None) -> str:
    if report is None:
        return "nothing was ingested"
    return (
        f"KB {report.kb} version {report.kb_version}: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.deleted} deleted, {len(report.failed)} failed, "
        f"{report.total_chunks} chunks in the KB ({report.seconds}s)"
    )
