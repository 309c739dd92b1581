"""`kb ingest` syncs a source: unchanged files are skipped, changed ones replaced, deleted ones removed; every change
is one new KB version that lists the chunk ids it added and removed; `--all`, `--json`, `kb status` and the lock."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ingest.worker as worker
from ingest.ledger import IngestLocked, Ledger, kb_lock
from ingest.pipeline import sync_sources
from kb_assistant.cli import app
from kb_assistant.retrieval import hybrid_search
from kb_assistant.store import KnowledgeBase

KB = "sync"


def write_docs(folder: Path, docs: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")


DOCS = {
    "parking.md": "# Parking\n\n## Visitors\n\nVisitors park in garage B2 for three hours.\n\n"
    "## Bicycles\n\nThe bicycle cage code is 4471-ZEBRA.\n",
    "lunch.md": "# Lunch\n\nThe canteen serves hotpot every Wednesday at noon.\n",
    "wifi.md": "# Wi-Fi\n\nThe guest Wi-Fi password is BLUE-HERON-58.\n",
}


def assert_no_orphans(index: KnowledgeBase) -> None:
    stored = index.vectors.stored_ids()
    assert len(stored) == len(set(stored))
    live = index.live_ids()
    assert {v.removesuffix("::q") for v in stored} == set(live), "Chroma holds vectors that are not live"


def test_unchanged_documents_are_skipped_without_loading_or_embedding(tmp_path, settings, embeddings, monkeypatch):
    folder = tmp_path / "src"
    write_docs(folder, DOCS)
    first = sync_sources(settings, [folder], KB)
    assert (first.added, first.unchanged, first.failed) == (3, 0, [])
    assert first.embedded == first.chunks == first.total_chunks > 0
    phases = ("scan_s", "wait_load_s", "embed_s", "store_s", "publish_s")  # where the seconds went, in the report
    assert first.timings["embed_s"] > 0 and sum(first.timings[p] for p in phases) <= first.seconds + 0.05

    def must_not_load(*args, **kwargs):
        raise AssertionError("an unchanged document was loaded")

    monkeypatch.setattr(worker, "load_document", must_not_load)
    os.utime(folder / "lunch.md", ns=(1, 1))  # touched, same content: read and hashed, but not loaded
    second = sync_sources(settings, [folder], KB)

    assert second.failed == []
    assert (second.added, second.updated, second.unchanged, second.deleted) == (0, 0, 3, 0)
    assert second.chunks == second.embedded == 0 and second.timings["embed_s"] == 0
    assert second.kb_version == first.kb_version  # no change, no new version
    assert Ledger(settings).documents(KB, str(folder.resolve()))[0].size > 0


def test_changed_file_replaces_its_chunks_and_deleted_file_loses_them_in_one_new_version(
    tmp_path, settings, embeddings
):
    folder = tmp_path / "src"
    write_docs(folder, DOCS)
    first = sync_sources(settings, [folder], KB)
    index = KnowledgeBase(settings, KB, embeddings)
    old_live = set(index.live_ids())
    wifi_ids = set(Ledger(settings).documents(KB, str(folder.resolve()))[-1].chunk_ids)

    # one section of parking.md changes, wifi.md is deleted, a new file arrives
    write_docs(folder, {"parking.md": DOCS["parking.md"].replace("4471-ZEBRA", "9932-OTTER")})
    (folder / "wifi.md").unlink()
    write_docs(folder, {"printers.md": "# Printers\n\nThe colour printer is on floor 3, room 301.\n"})
    second = sync_sources(settings, [folder], KB)

    assert (second.added, second.updated, second.unchanged, second.deleted) == (1, 1, 1, 1)
    assert second.kb_version == first.kb_version + 1
    # the unchanged "Visitors" section kept its vector: only the edited section and the new file were embedded
    assert second.embedded == 2
    new_live = set(index.live_ids())
    version = Ledger(settings).versions(KB, since=first.kb_version)[0]
    assert set(version.added) == new_live - old_live and len(version.added) == 2
    assert set(version.removed) == old_live - new_live
    assert wifi_ids <= set(version.removed)
    assert not index.is_live(version.removed) and index.is_live(version.added)
    assert_no_orphans(index)

    top = hybrid_search(index, "bicycle cage code", k=3)[0].chunk
    assert "9932-OTTER" in top.text
    assert not any("BLUE-HERON" in c.text or "4471-ZEBRA" in c.text for c in index.all_chunks())


def test_full_rebuild_reembeds_everything_and_gives_the_same_chunk_ids(tmp_path, settings, embeddings):
    folder = tmp_path / "src"
    write_docs(folder, DOCS)
    first = sync_sources(settings, [folder], KB)
    index = KnowledgeBase(settings, KB, embeddings)
    ids = sorted(index.live_ids())

    full = sync_sources(settings, [folder], KB, full=True)

    assert (full.updated, full.unchanged) == (3, 0)
    assert full.embedded == first.embedded
    assert sorted(index.live_ids()) == ids
    assert_no_orphans(index)


def test_ingest_all_resyncs_every_remembered_source_and_reports_json_status_and_exit_code(
    tmp_path, settings, embeddings, monkeypatch
):
    monkeypatch.setenv("KB_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    hr, it = tmp_path / "hr", tmp_path / "it"
    write_docs(hr, {"leave.md": "# Leave\n\nEmployees get 15 days of annual leave.\n"})
    write_docs(it, {"vpn.md": "# VPN\n\nThe VPN server is vpn.example.com.\n"})
    for folder, kb in ((hr, "hr"), (it, "it")):
        result = runner.invoke(app, ["ingest", str(folder), "--kb", kb])
        assert result.exit_code == 0, result.output
        assert "1 added" in result.stdout

    write_docs(hr, {"leave.md": "# Leave\n\nEmployees get 20 days of annual leave.\n"})
    write_docs(it, {"empty.md": ""})
    result = runner.invoke(app, ["ingest", "--all", "--json"])

    assert result.exit_code == 1, result.output  # it/empty.md failed
    reports = {r["kb"]: r for r in json.loads(result.stdout)}
    assert set(reports) == {"hr", "it"}
    assert (reports["hr"]["updated"], reports["hr"]["failed"]) == (1, [])
    assert reports["it"]["unchanged"] == 1
    assert [(Path(f["path"]).name, f["reason"]) for f in reports["it"]["failed"]] == [("empty.md", "empty file")]
    for key in ("added", "updated", "unchanged", "deleted", "failed", "chunks", "seconds", "kb_version"):
        assert key in reports["hr"]

    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    by_kb = {s["kb"]: s for s in json.loads(status.stdout)}
    assert by_kb["hr"]["documents"] == 1 and by_kb["hr"]["chunks"] == 1 and by_kb["hr"]["version"] == 2
    assert by_kb["it"]["failed"] == 1 and by_kb["it"]["failures"][0]["reason"] == "empty file"
    assert by_kb["it"]["last_run"]["status"] == "finished"
    assert by_kb["hr"]["last_run"]["report"]["updated"] == 1
    assert by_kb["hr"]["sources"] == [str(hr.resolve())]

    text = runner.invoke(app, ["status", "--kb", "it"])
    assert "it: 1 documents, 1 chunks, 1 failed" in text.stdout and "empty.md: empty file" in text.stdout


def test_a_second_ingest_of_the_same_kb_waits_or_exits_naming_the_holder(tmp_path, settings, embeddings, monkeypatch):
    folder = tmp_path / "src"
    write_docs(folder, {"lunch.md": DOCS["lunch.md"]})
    monkeypatch.setenv("KB_DATA_DIR", str(settings.data_dir))

    with kb_lock(settings, KB):
        result = CliRunner().invoke(app, ["ingest", str(folder), "--kb", KB, "--no-wait"])
        assert result.exit_code == 2
        assert f"another ingest of knowledge base '{KB}' is running (pid {os.getpid()}" in result.stderr
        with pytest.raises(IngestLocked):
            sync_sources(settings, [folder], KB, wait=False)
    assert Ledger(settings).runs(KB) == []  # the refused ingest did nothing

    said: list[str] = []
    held = threading.Event()

    def hold_briefly():
        with kb_lock(settings, KB):
            held.set()
            time.sleep(1.0)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    held.wait()
    report = sync_sources(settings, [folder], KB, say=said.append)  # waits, then runs
    holder.join()
    assert report.added == 1
    assert said and "waiting" in said[0]


def test_cron_job_resyncs_every_source_and_appends_the_report_to_a_dated_log(tmp_path, settings, embeddings):
    import subprocess
    import sys

    folder = tmp_path / "src"
    write_docs(folder, {"lunch.md": DOCS["lunch.md"]})
    sync_sources(settings, [folder], KB)
    (folder / "lunch.md").unlink()  # tonight's run must notice

    repo = Path(__file__).resolve().parents[1]
    env = {
        "PATH": os.environ["PATH"],
        "PYTHON": sys.executable,
        "PYTHONPATH": str(repo),
        "KB_DATA_DIR": str(settings.data_dir),
        "KB_CRON_ENV_FILE": str(tmp_path / "none.env"),
    }
    done = subprocess.run(["sh", str(repo / "docker" / "cron-ingest.sh")], env=env, cwd=tmp_path, timeout=300)

    assert done.returncode == 0
    (log,) = (settings.data_dir / "logs").glob("ingest-*.log")
    text = log.read_text()
    assert "kb ingest --all" in text and "exit code 0" in text
    assert f"knowledge base '{KB}': 0 documents (0 added, 0 updated, 0 unchanged), 1 deleted" in text
    assert KnowledgeBase(settings, KB, embeddings).count() == 0


def test_a_file_ingested_on_its_own_inside_a_remembered_folder_updates_that_folders_document(
    tmp_path, settings, embeddings
):
    folder = tmp_path / "src"
    write_docs(folder / "canteen", {"lunch.md": DOCS["lunch.md"]})
    write_docs(folder, {"wifi.md": DOCS["wifi.md"]})
    first = sync_sources(settings, [folder], KB)
    ledger = Ledger(settings)
    root = str(folder.resolve())
    (old_lunch,) = [d for d in ledger.documents(KB, root) if d.path == "canteen/lunch.md"]

    write_docs(folder / "canteen", {"lunch.md": DOCS["lunch.md"].replace("hotpot", "dumplings")})
    alone = sync_sources(settings, [folder / "canteen" / "lunch.md"], KB)

    assert (alone.added, alone.updated, alone.deleted, alone.failed) == (0, 1, 0, [])
    assert alone.sources == [root] and alone.kb_version == first.kb_version + 1
    assert [s.root for s in ledger.sources(KB)] == [root], "the file must not become a second source"
    docs = {(d.root, d.path): d for d in ledger.documents(KB)}
    assert set(docs) == {(root, "canteen/lunch.md"), (root, "wifi.md")}
    index = KnowledgeBase(settings, KB, embeddings)
    assert not index.is_live(old_lunch.chunk_ids), "the old copy of the file must not stay live"
    assert index.is_live(docs[(root, "canteen/lunch.md")].chunk_ids)
    assert_no_orphans(index)
    texts = [c.text for c in index.all_chunks()]
    assert sum("dumplings" in t for t in texts) == 1 and not any("hotpot" in t for t in texts)
    assert {c.source for c in index.all_chunks()} == {"canteen/lunch.md", "wifi.md"}

    again = sync_sources(settings, [folder], KB)  # the folder agrees: nothing left to do
    assert (again.unchanged, again.updated, again.added, again.deleted) == (2, 0, 0, 0)
    assert again.kb_version == alone.kb_version

    (folder / "canteen" / "lunch.md").unlink()  # a deleted file synced by its own path loses its chunks
    gone = sync_sources(settings, [folder / "canteen" / "lunch.md"], KB)
    assert (gone.deleted, gone.failed) == (1, [])
    assert {c.source for c in index.all_chunks()} == {"wifi.md"}


def test_a_folder_ingested_after_a_file_inside_it_absorbs_that_source_without_duplicates(
    tmp_path, settings, embeddings
):
    folder = tmp_path / "src"
    write_docs(folder / "canteen", {"lunch.md": DOCS["lunch.md"]})
    write_docs(folder, {"wifi.md": DOCS["wifi.md"]})
    sync_sources(settings, [folder / "canteen" / "lunch.md"], KB)

    report = sync_sources(settings, [folder], KB)

    ledger = Ledger(settings)
    root = str(folder.resolve())
    assert [s.root for s in ledger.sources(KB)] == [root]
    assert {(d.root, d.path) for d in ledger.documents(KB)} == {(root, "canteen/lunch.md"), (root, "wifi.md")}
    assert (report.added, report.deleted) == (2, 0)
    index = KnowledgeBase(settings, KB, embeddings)
    assert sorted(c.source for c in index.all_chunks()) == ["canteen/lunch.md", "wifi.md"]
    assert_no_orphans(index)
    assert set(index.live_ids()) == ledger.live_chunk_ids(KB)


def test_forgetting_a_source_removes_its_chunks_in_one_new_version_and_all_stops_syncing_it(
    tmp_path, settings, embeddings, monkeypatch
):
    monkeypatch.setenv("KB_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    keep, old = tmp_path / "keep", tmp_path / "old"
    write_docs(keep, {"lunch.md": DOCS["lunch.md"]})
    write_docs(old, {"wifi.md": DOCS["wifi.md"], "parking.md": DOCS["parking.md"]})
    for folder in (keep, old):
        assert runner.invoke(app, ["ingest", str(folder), "--kb", KB]).exit_code == 0
    ledger = Ledger(settings)
    old_ids = {cid for d in ledger.documents(KB, str(old.resolve())) for cid in d.chunk_ids}
    index = KnowledgeBase(settings, KB, embeddings)
    version = index.version

    shutil.rmtree(old)  # gone from disk: reported, with the way out, and nothing is removed
    missing = runner.invoke(app, ["ingest", "--all", "--json"])
    assert missing.exit_code == 1, missing.output
    (failure,) = json.loads(missing.stdout)[0]["failed"]
    assert failure["path"] == str(old) and "documents stay in the KB" in failure["reason"]
    assert f"kb ingest --forget '{old.resolve()}' --kb {KB}" in failure["reason"]
    assert index.is_live(old_ids) and index.version == version

    wrong_kb = runner.invoke(app, ["ingest", "--forget", str(old), "--kb", "other"])
    assert wrong_kb.exit_code == 2 and f"is a source of '{KB}': add --kb {KB}" in wrong_kb.stderr
    inside = runner.invoke(app, ["ingest", "--forget", str(keep / "lunch.md"), "--kb", KB])
    assert inside.exit_code == 2 and f"part of the source '{keep.resolve()}'" in inside.stderr

    result = runner.invoke(app, ["ingest", "--forget", str(old), "--kb", KB])

    assert result.exit_code == 0, result.output
    assert "forgot 1 source(s), 2 documents removed" in result.stdout
    assert index.version == version + 1
    (v,) = ledger.versions(KB, since=version)
    assert set(v.removed) == old_ids and v.added == []  # what the semantic cache invalidates
    assert not any(cid in index.live_ids() for cid in old_ids)  # keyword index
    assert not any(vid.removesuffix("::q") in old_ids for vid in index.vectors.stored_ids())  # Chroma
    assert_no_orphans(index)
    assert [c.chunk.source for c in hybrid_search(index, "guest Wi-Fi password", k=5)] == ["lunch.md"]
    assert [s.root for s in ledger.sources(KB)] == [str(keep.resolve())]
    assert {d.root for d in ledger.documents(KB)} == {str(keep.resolve())}

    again = runner.invoke(app, ["ingest", "--all", "--json"])
    assert again.exit_code == 0, again.output
    (report,) = json.loads(again.stdout)
    assert report["sources"] == [str(keep.resolve())] and report["failed"] == []
    assert report["unchanged"] == 1 and report["kb_version"] == version + 1


def test_changing_the_chunking_or_embedding_model_settings_reembeds_the_documents_built_with_the_old_ones(
    tmp_path, settings, embeddings
):
    from kb_assistant.embeddings import default_model_path

    folder = tmp_path / "src"
    long_doc = "# Travel\n\n" + "\n\n".join(
        f"Rule {n}: a trip of {n} days needs a form signed by the team lead and the finance desk." for n in range(1, 9)
    )
    write_docs(folder, {**DOCS, "travel.md": long_doc})
    first = sync_sources(settings, [folder], KB)
    ledger = Ledger(settings)
    before = {d.path: d for d in ledger.documents(KB)}

    smaller = settings.model_copy(update={"chunk_size": 150})
    rechunked = sync_sources(smaller, [folder], KB)

    assert (rechunked.updated, rechunked.unchanged, rechunked.failed) == (4, 0, [])
    after = {d.path: d for d in ledger.documents(KB)}
    assert len(after["travel.md"].chunk_ids) > len(before["travel.md"].chunk_ids)
    assert after["lunch.md"].chunk_ids == before["lunch.md"].chunk_ids  # same text, same id: its vector is reused
    old_ids = {cid for d in before.values() for cid in d.chunk_ids}
    new_ids = {cid for d in after.values() for cid in d.chunk_ids} - old_ids
    assert rechunked.embedded == len(new_ids) > 0
    assert len({d.config for d in after.values()}) == 1 and after["lunch.md"].config != before["lunch.md"].config
    index = KnowledgeBase(settings, KB, embeddings)
    assert set(index.live_ids()) == ledger.live_chunk_ids(KB) and rechunked.kb_version == first.kb_version + 1
    assert_no_orphans(index)
    assert sync_sources(smaller, [folder], KB).unchanged == 4  # the new settings are now the documents' own

    other_model = smaller.model_copy(update={"embedding_model": default_model_path()})  # same weights, new name
    remodelled = sync_sources(other_model, [folder], KB, embeddings=embeddings)

    assert (remodelled.updated, remodelled.unchanged) == (4, 0)
    assert remodelled.embedded == remodelled.chunks == len(ledger.live_chunk_ids(KB)), "vectors of the old model kept"
    assert sync_sources(other_model, [folder], KB, embeddings=embeddings).unchanged == 4
