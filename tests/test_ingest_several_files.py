"""`kb ingest a b c --kb hr` on an empty data dir: every file is synced in one run, and a run that crashes is
recorded as failed, never left "running"."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import ingest.pipeline as pipeline
from ingest.ledger import Ledger
from kb_assistant.cli import app
from kb_assistant.settings import Settings
from kb_assistant.store import KnowledgeBase

DOCS = {
    "parking.md": "# Parking\n\nVisitors park in garage B2 for three hours.\n",
    "lunch.md": "# Lunch\n\nThe canteen serves hotpot every Wednesday at noon.\n",
    "wifi.md": "# Wi-Fi\n\nThe guest Wi-Fi password is BLUE-HERON-58.\n",
}


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [folder / name for name in DOCS]


def test_several_files_in_one_ingest_call_on_an_empty_data_dir_are_all_synced(tmp_path, files, monkeypatch, embeddings):
    data = tmp_path / "data"
    monkeypatch.setenv("KB_DATA_DIR", str(data))
    result = CliRunner().invoke(app, ["ingest", *map(str, files), "--kb", "hr"])
    assert result.exit_code == 0, result.output
    settings = Settings(data_dir=data)
    index = KnowledgeBase(settings, "hr", embeddings)
    assert {c.source for c in index.all_chunks()} == set(DOCS)
    assert [r.status for r in Ledger(settings).runs("hr")] == ["finished"]

    again = CliRunner().invoke(app, ["ingest", *map(str, files), "--kb", "hr", "--json"])
    assert again.exit_code == 0, again.output
    assert '"unchanged": 3' in again.output  # each file is remembered as its own source


def test_an_ingest_that_crashes_records_its_run_as_failed_not_running(tmp_path, files, monkeypatch):
    settings = Settings(data_dir=tmp_path / "data")

    def broken_publish(self, *, final=False):
        raise RuntimeError("simulated bug while publishing")

    monkeypatch.setattr(pipeline.IncrementalIndexer, "_publish", broken_publish)
    with pytest.raises(RuntimeError, match="simulated bug"):
        pipeline.ingest_paths(settings, files, "hr")
    assert [r.status for r in Ledger(settings).runs("hr")] == ["failed"]

    monkeypatch.undo()
    report = pipeline.ingest_paths(settings, files, "hr")
    assert report.ok and report.documents == 3
    assert [r.status for r in Ledger(settings).runs("hr")] == ["finished", "failed"]
