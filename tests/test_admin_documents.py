"""The admin's documents: KBs created, files uploaded through the incremental pipeline, read, deleted, re-synced;
and the role checked on the server (HTTP requests to /admin/api and to the Gradio admin app, not hidden buttons)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ingest.pipeline import ingest_paths
from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError
from kb_assistant.settings import Settings
from ui.admin import AdminOnly, DocumentLibrary, require_admin

LEAVE = """# Bereavement leave

Employees may take five days of paid bereavement leave for a close family member. Tell your manager and
record it in the HR portal under Absences.
"""
BIKE = """# Cycle to work

The cycle-to-work scheme lends employees up to 1200 euros for a bicycle, repaid from salary over twelve months.
"""
BIKE_QUESTION = "How much does the cycle-to-work scheme lend for a bicycle?"


@pytest.fixture
def assistant(tmp_path, embeddings):
    return Assistant(Settings(data_dir=tmp_path / "data"), embeddings=embeddings)


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "leave.md").write_text(LEAVE, encoding="utf-8")
    (folder / "bike.md").write_text(BIKE, encoding="utf-8")
    (folder / "virus.exe").write_bytes(b"MZ\x90\x00")
    (folder / "empty.txt").write_text("   \n", encoding="utf-8")
    return folder


def test_uploaded_files_go_through_the_pipeline_and_bad_ones_get_the_clis_reason_beside_them(assistant, files):
    library = DocumentLibrary(assistant)
    library.create_kb("hr")
    seen = []
    result = library.upload(
        "hr", [(n, files / n) for n in ("leave.md", "bike.md", "virus.exe", "empty.txt")],
        on_file=lambda name, err: seen.append((name, err)),
    )  # fmt: skip
    outcome = {f.name: f.reason for f in result.files}
    assert outcome["leave.md"] == outcome["bike.md"] == ""
    assert outcome["virus.exe"].startswith("unsupported file type '.exe'")
    assert outcome["empty.txt"].startswith("no text")
    cli = ingest_paths(assistant.settings, [files / "virus.exe", files / "empty.txt"], "cli-check")  # `kb ingest`
    assert {Path(f.path).name: f.reason for f in cli.failed} == {"virus.exe": outcome["virus.exe"],
                                                                 "empty.txt": outcome["empty.txt"]}  # fmt: skip
    assert {n for n, err in seen if err is None} == {"leave.md", "bike.md"} and len(seen) == 4
    assert result.report.added == 2 and result.report.kb_version == 1
    # stored under the data dir, as a remembered source a rebuild re-reads; refused files never land there
    folder = library.uploads_dir("hr")
    assert sorted(p.name for p in folder.iterdir()) == ["bike.md", "leave.md"]
    assert library.sources("hr") == [str(folder)]
    rows = {d.source: d for d in library.documents("hr")}
    assert set(rows) == {"bike.md", "leave.md"} and rows["leave.md"].status == "ingested"
    assert rows["leave.md"].chunks >= 1 and rows["leave.md"].uploaded and rows["leave.md"].synced
    answer = assistant.ask(BIKE_QUESTION, kb="hr")
    assert answer.answered and answer.citations[0].source == "bike.md"


def test_a_bad_upload_named_like_a_good_document_leaves_the_good_one_in_the_kb(assistant, files, tmp_path):
    library = DocumentLibrary(assistant)
    library.create_kb("hr")
    library.upload("hr", [("bike.md", files / "bike.md")])
    broken = tmp_path / "bike.md"
    broken.write_bytes(b"\n")
    result = library.upload("hr", [("bike.md", broken)])
    assert result.refused[0].reason.startswith("no text") and result.report is None
    [row] = library.documents("hr")
    assert row.status == "ingested" and (library.uploads_dir("hr") / "bike.md").read_text() == BIKE
    assert assistant.ask(BIKE_QUESTION, kb="hr").answered


def test_an_admin_reads_a_documents_chunks_and_deletes_it_in_one_new_kb_version(assistant, files):
    library = DocumentLibrary(assistant)
    library.create_kb("hr")
    library.upload("hr", [("leave.md", files / "leave.md"), ("bike.md", files / "bike.md")])
    bike = next(d for d in library.documents("hr") if d.source == "bike.md")
    [chunk] = library.chunks("hr", bike.key)
    assert chunk.source == "bike.md" and chunk.section == "Cycle to work" and "1200 euros" in chunk.text
    first = assistant.ask(BIKE_QUESTION, kb="hr")
    assert first.answered and assistant.ask(BIKE_QUESTION, kb="hr").cached  # the cache holds the answer
    version = assistant.index("hr").version

    report = library.delete("hr", bike.key)
    assert report.deleted == 1 and report.kb_version == version + 1
    assert [d.source for d in library.documents("hr")] == ["leave.md"]
    assert not (library.uploads_dir("hr") / "bike.md").exists()
    after = assistant.ask(BIKE_QUESTION, kb="hr")
    assert not after.cached and not any(c.source == "bike.md" for c in after.citations)
    assert assistant.ask("How many days of bereavement leave do I get?", kb="hr").answered
    with pytest.raises(KBError, match="no document 'bike.md'"):
        library.chunks("hr", bike.key)


def test_a_remembered_source_is_re_synced_and_the_last_runs_keep_their_reports(assistant, files, tmp_path):
    from ingest.pipeline import sync_sources

    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "leave.md").write_text(LEAVE, encoding="utf-8")
    sync_sources(assistant.settings, [folder], "hr", embeddings=assistant.embeddings)  # as `kb ingest` does
    library = DocumentLibrary(assistant)
    (folder / "bike.md").write_text(BIKE, encoding="utf-8")
    (folder / "notes.exe").write_bytes(b"MZ")
    report = library.resync("hr", str(folder.resolve()))
    assert report.added == 1 and report.unchanged == 1 and report.failed[0].reason.startswith("unsupported")
    newest, older = library.runs("hr")[:2]
    assert "1 added, 0 updated, 1 unchanged" in newest["summary"] and "1 failed" in newest["summary"]
    assert older["summary"].startswith("1 added")
    failed = next(d for d in library.documents("hr") if d.source == "notes.exe")
    assert failed.status == "failed" and failed.reason.startswith("unsupported file type")
    with pytest.raises(KBError, match="not a remembered source"):
        library.resync("hr", "/etc")


def test_deleting_a_file_of_a_server_folder_excludes_it_for_every_later_sync_until_restored(assistant, tmp_path):
    from ingest.pipeline import sync_all, sync_sources
    from ingest.status import kb_status

    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "leave.md").write_text(LEAVE, encoding="utf-8")
    (folder / "bike.md").write_text(BIKE, encoding="utf-8")
    sync_sources(assistant.settings, [folder], "hr", embeddings=assistant.embeddings)  # as `kb ingest FOLDER` does
    library = DocumentLibrary(assistant)
    bike = next(d for d in library.documents("hr") if d.source == "bike.md")
    assert assistant.ask(BIKE_QUESTION, kb="hr").answered
    assert bike.groups == "everyone"
    (folder / ".kb-groups").write_text("hr-staff\n", encoding="utf-8")  # access groups (issue 20) are shown
    assert {d.groups for d in library.documents("hr")} == {"hr-staff"}
    (folder / ".kb-groups").unlink()
    version = assistant.index("hr").version

    report = library.delete("hr", bike.key, by="ada")
    assert report.deleted == 1 and report.kb_version == version + 1
    assert (folder / "bike.md").read_text(encoding="utf-8") == BIKE  # the user's file is not touched
    row = next(d for d in library.documents("hr") if d.source == "bike.md")
    assert row.status == "excluded" and row.chunks == 0 and "excluded by ada" in row.reason
    assert not any(c.source == "bike.md" for c in assistant.ask(BIKE_QUESTION, kb="hr").citations)

    (folder / "bike.md").write_text(BIKE + "\nRepayments pause during parental leave.\n", encoding="utf-8")
    [nightly] = sync_all(assistant.settings, embeddings=assistant.embeddings)  # `kb ingest --all`, the cron
    assert nightly.excluded == 1 and nightly.added == nightly.updated == 0 and nightly.unchanged == 1
    assert not any(c.source == "bike.md" for c in assistant.ask(BIKE_QUESTION, kb="hr").citations)
    [status] = kb_status(assistant.settings, "hr")  # `kb status` names it
    assert status["documents"] == 1 and status["excluded"][0]["path"].endswith("handbook/bike.md")
    with pytest.raises(KBError, match="excluded"):
        library.chunks("hr", bike.key)

    restored = library.restore("hr", bike.key)  # undo: the file is read again
    assert restored.added == 1 and restored.kb_version == nightly.kb_version + 1
    assert next(d for d in library.documents("hr") if d.source == "bike.md").status == "ingested"
    answer = assistant.ask(BIKE_QUESTION, kb="hr")
    assert answer.answered and answer.citations[0].source == "bike.md"
    with pytest.raises(KBError, match="not excluded"):
        library.restore("hr", bike.key)


def test_only_admins_pass_the_role_check(assistant):
    assistant.queue.add_user("ada", "admin password 1", role="admin")
    assistant.queue.add_user("anna", "agent password 1", role="agent")
    assert require_admin(assistant.queue, "ada") == "ada"
    for who in ("anna", "mallory", None):
        with pytest.raises(AdminOnly, match="only an admin"):
            require_admin(assistant.queue, who)


def test_an_agent_calling_the_admin_endpoints_directly_gets_403(assistant, files, live_server):
    from ui.server import build_app

    queue = assistant.queue
    queue.add_user("ada", "admin password 1", role="admin")
    queue.add_user("anna", "agent password 1", role="agent")
    base = live_server(build_app(assistant))
    admin, agent = ("ada", "admin password 1"), ("anna", "agent password 1")
    with httpx.Client(base_url=base, timeout=120) as http:
        assert http.post("/admin/api/kbs", json={"name": "hr"}, auth=admin).status_code == 201
        up = http.post("/admin/api/kbs/hr/documents", auth=admin,
                       files=[("files", ("leave.md", LEAVE.encode())), ("files", ("x.exe", b"MZ"))])  # fmt: skip
        assert up.status_code == 200, up.text
        assert [(f["name"], f["ok"]) for f in up.json()["files"]] == [("leave.md", True), ("x.exe", False)]
        [doc] = http.get("/admin/api/kbs/hr/documents", auth=admin).json()
        calls = [
            ("GET", "/admin/api/kbs", {}), ("POST", "/admin/api/kbs", {"json": {"name": "sneaky"}}),
            ("GET", "/admin/api/kbs/hr/documents", {}),
            ("POST", "/admin/api/kbs/hr/documents", {"files": [("files", ("a.md", b"# A\n\nagent text"))]}),
            ("GET", "/admin/api/kbs/hr/documents/chunks", {"params": {"key": doc["key"]}}),
            ("DELETE", "/admin/api/kbs/hr/documents", {"params": {"key": doc["key"]}}),
            ("POST", "/admin/api/kbs/hr/sync", {"json": {"source": doc["root"]}}),
            ("GET", "/admin/api/kbs/hr/runs", {}), ("GET", "/admin/api/dashboard", {}),
            ("GET", "/admin/api/dashboard.csv", {}),
        ]  # fmt: skip
        for method, path, kw in calls:
            as_agent = http.request(method, path, auth=agent, **kw)
            assert as_agent.status_code == 403, (method, path, as_agent.text)
            assert "only an admin" in as_agent.json()["error"]["message"]
            assert http.request(method, path, **kw).status_code == 401
        assert "sneaky" not in assistant.knowledge_bases() and len(http.get("/admin/api/kbs/hr/documents",
                                                                           auth=admin).json()) == 1  # fmt: skip
        chunks = http.get("/admin/api/kbs/hr/documents/chunks", params={"key": doc["key"]}, auth=admin).json()
        assert chunks[0]["section"] == "Bereavement leave"
        assert http.get("/admin/api/dashboard.csv", auth=admin).text.startswith("section,kb")

        # the admin pages: an agent's password does not sign in there, and the agent's console session does not
        # open them either
        assert http.post("/admin/login", data={"username": "anna", "password": agent[1]}).status_code >= 400
        assert http.post("/console/login", data={"username": "anna", "password": agent[1]}).status_code == 200
        assert http.get("/admin/config").status_code in (401, 403)
        assert http.post("/admin/login", data={"username": "ada", "password": admin[1]}).status_code == 200


def test_an_admin_upload_may_be_larger_than_the_request_limit_other_requests_may_not(tmp_path, embeddings,
                                                                                     live_server):  # fmt: skip
    from ui.server import build_app

    assistant = Assistant(Settings(data_dir=tmp_path / "data", max_request_bytes=2048), embeddings=embeddings)
    assistant.queue.add_user("ada", "admin password 1", role="admin")
    base = live_server(build_app(assistant))
    handbook = (LEAVE + "\n" + "Bereavement leave is paid at the full daily rate. " * 80).encode()
    assert len(handbook) > 2048
    with httpx.Client(base_url=base, timeout=120, auth=("ada", "admin password 1")) as http:
        assert http.post("/admin/api/kbs", json={"name": "hr"}).status_code == 201
        up = http.post("/admin/api/kbs/hr/documents", files=[("files", ("leave.md", handbook))])
        assert up.status_code == 200 and up.json()["files"][0]["ok"], up.text
        big = http.post("/api/ask", json={"question": "x" * 3000, "kb": "hr"})
        assert big.status_code == 413 and "KB_MAX_REQUEST_BYTES" in big.json()["error"]["message"]
