"""The ingest entry points: sync or forget sources of a KB under its lock, exclude (and include again) single
documents of a source, re-sync every KB, the bundled samples,
and the job a server runs for a handed-off `kb ingest`.

How a run works (scan, load in workers, embed, commit, publish) is ``ingest.indexer``'s; what it returns is
``ingest.report.IngestReport``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ingest.handoff import refuse_if_served
from ingest.indexer import IncrementalIndexer
from ingest.ledger import Ledger, kb_lock
from ingest.report import IngestReport
from kb_assistant.settings import Settings, check_kb_name


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


def exclude_documents(settings: Settings, kb: str, root: str, paths: list[str], note: str) -> IngestReport:
    """Leave documents of a remembered source folder out of ``kb`` (files untouched), under the KB's lock; every
    later sync skips them until ``include_documents``."""
    check_kb_name(kb)
    refuse_if_served(settings)
    with kb_lock(settings, kb):
        return IncrementalIndexer(settings, kb).exclude(root, paths, note)


def include_documents(settings: Settings, kb: str, root: str, paths: list[str], *, embeddings=None) -> IngestReport:
    """Undo ``exclude_documents``: the files still in the folder are synced back into ``kb``."""
    check_kb_name(kb)
    refuse_if_served(settings)
    with kb_lock(settings, kb):
        return IncrementalIndexer(settings, kb, embeddings=embeddings).include(root, paths)


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
