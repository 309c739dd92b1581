"""What an ingest run reports: the counts, the files that failed and why, the timings and the KB version.

``kb ingest --json``, the admin pages and the ledger's run history all show this one model.
"""

from __future__ import annotations

from pydantic import BaseModel, computed_field


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
    excluded: int = 0  # files of the synced sources skipped because an admin excluded them
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
