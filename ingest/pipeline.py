"""Ingest files or folders into one knowledge base.

Each file is loaded and chunked on its own, so a bad file is reported and skipped while the rest go in.
A document's old chunks are replaced by its new ones; the keyword index is rebuilt once at the end and the KB
version bumped, which is what the semantic cache watches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel

from ingest.chunking import chunk_document
from ingest.loaders import DocumentError, load_document
from kb_assistant.embeddings import make_embeddings
from kb_assistant.index import KnowledgeBaseIndex
from kb_assistant.schema import Chunk
from kb_assistant.settings import Settings, check_kb_name


class FileFailure(BaseModel):
    path: str
    reason: str


class IngestReport(BaseModel):
    kb: str
    documents: int = 0
    chunks: int = 0
    failed: list[FileFailure] = []
    seconds: float = 0.0
    kb_version: int = 0

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


def ingest_paths(
    settings: Settings,
    paths: list[Path],
    kb: str = "default",
    *,
    on_file: Callable[[Path, str | None], None] | None = None,
) -> IngestReport:
    """Ingest every file under ``paths`` into ``kb``. ``on_file(path, error)`` is called once per file."""
    check_kb_name(kb)
    started = time.perf_counter()
    report = IngestReport(kb=kb)
    missing = [p for p in paths if not p.exists()]
    for p in missing:
        report.failed.append(FileFailure(path=str(p), reason="no such file or folder"))
        if on_file:
            on_file(p, "no such file or folder")
    per_source: dict[str, list[Chunk]] = {}
    for path, source in iter_files(p for p in paths if p.exists()):
        try:
            doc = load_document(path, max_bytes=int(settings.max_file_mb * 1e6))
            chunks = chunk_document(doc, source, settings.chunk_size)
            if not chunks:
                raise DocumentError("no text found in document")
            per_source[source] = chunks
            error = None
        except DocumentError as exc:
            error = str(exc)
        except OSError as exc:
            error = f"cannot read file: {exc.strerror or exc}"
        if error:
            report.failed.append(FileFailure(path=str(path), reason=error))
        if on_file:
            on_file(path, error)

    if per_source:  # nothing loaded: leave the store alone (and create no empty KB)
        index = KnowledgeBaseIndex(settings, kb, make_embeddings(settings))
        index.delete_sources(list(per_source))
        index.add([c for chunks in per_source.values() for c in chunks])
        index.rebuild_keyword_index()
        report.kb_version = index.bump_version(last_ingest=time.time())
    report.documents = len(per_source)
    report.chunks = sum(len(c) for c in per_source.values())
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def sample_kb_root() -> Path:
    """The bundled sample knowledge bases: one folder per KB."""
    import kb_assistant

    return Path(kb_assistant.__file__).resolve().parent / "sample_kb"


def ensure_sample_kbs(settings: Settings, say: Callable[[str], None] = print) -> list[IngestReport]:
    """With an empty data directory, ingest the bundled sample KBs (and say so); otherwise do nothing."""
    from kb_assistant.index import list_kbs

    if list_kbs(settings):
        return []
    reports = []
    for folder in sorted(p for p in sample_kb_root().iterdir() if p.is_dir()):
        say(f"No knowledge base in {settings.data_dir} yet: ingesting the bundled sample KB '{folder.name}' …")
        reports.append(ingest_paths(settings, [folder], folder.name))
    return reports
