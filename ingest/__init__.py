"""Documents in: load → chunk → embed → index. ``ingest_paths`` is the entry point for the CLI and cron."""

from ingest.pipeline import ingest_paths
from ingest.report import IngestReport

__all__ = ["IngestReport", "ingest_paths"]
