"""Parsing at scale: with ``KB_UNSTRUCTURED_API_URL`` the PDF, Word, PowerPoint and HTML files of an ingest are
partitioned by unstructured's API, through the real ``unstructured-client`` SDK.

The API here is a small fake of its partition endpoint on 127.0.0.1 (``/general/v0/general``, multipart in, elements
JSON out, the ``unstructured-api-key`` header checked). Word and HTML are partitioned by the unstructured library
itself, as the real API does; PDF pages are read with pdfplumber (unstructured's PDF extra is not installed), page
numbers counted from the ``starting_page_number`` the SDK sends with each page batch it splits a PDF into.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

KEY = "unstructured-test-key"
SABBATICAL = "After five years of service every employee may take a paid sabbatical of eight weeks."
PERMIT = "A night parking permit costs 45 euros per quarter and is issued by the security desk."


class FakePartitionAPI(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, key: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.key = key
        self.calls: list[dict] = []  # one per partition request: file name, form fields
        self.fail_next = 0  # answer the next N requests with HTTP 500

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def partition(self, name: str, data: bytes, start: int) -> list[dict]:
        from unstructured.staging.base import elements_to_dicts

        if name.endswith(".pdf"):
            import pdfplumber

            out = []
            with pdfplumber.open(io.BytesIO(data)) as pdf:
                for n, page in enumerate(pdf.pages, start):
                    for i, line in enumerate((page.extract_text() or "").splitlines()):
                        kind = "Title" if i == 0 else "NarrativeText"
                        meta = {"page_number": n, "filename": name, "category_depth": 0 if i == 0 else None}
                        out.append({"type": kind, "element_id": f"{n}-{i}", "text": line, "metadata": meta})
            return out
        if name.endswith(".docx"):
            from unstructured.partition.docx import partition_docx

            return elements_to_dicts(partition_docx(file=io.BytesIO(data), metadata_filename=name))
        if name.endswith((".html", ".htm")):
            from unstructured.partition.html import partition_html

            return elements_to_dicts(partition_html(text=data.decode("utf-8"), metadata_filename=name))
        raise ValueError(f"File type of {name} is not supported")


class _Handler(BaseHTTPRequestHandler):
    server: FakePartitionAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # the SDK looks at the API's docs page before it sends a split PDF's page batches
        self._send(200 if self.path == "/general/docs" else 404, {"detail": "docs"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/general/v0/general":
            self._send(404, {"detail": "Not Found"})
            return
        if self.headers.get("unstructured-api-key") != self.server.key:
            self._send(401, {"detail": "API key is invalid"})
            return
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields, name, data = {}, None, b""
        for part in form.iter_parts():
            if part.get_filename():
                name, data = part.get_filename(), part.get_payload(decode=True)
            else:
                fields[part.get_param("name", header="content-disposition")] = part.get_payload(decode=True).decode()
        self.server.calls.append({"file": name, **fields})
        if self.server.fail_next:
            self.server.fail_next -= 1
            self._send(500, {"detail": "worker crashed (fake)"})
            return
        try:
            elements = self.server.partition(name, data, int(fields.get("starting_page_number", 1)))
        except Exception as exc:  # what the real API answers for a file it cannot read
            self._send(400, {"detail": str(exc)})
            return
        self._send(200, elements)

    def _send(self, status: int, payload) -> None:
        out = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture(scope="module")
def api():
    server = FakePartitionAPI(KEY)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def docs(tmp_path):
    from docx import Document
    from fpdf import FPDF

    folder = tmp_path / "docs"
    folder.mkdir()
    doc = Document()
    doc.add_heading("Sabbatical leave", level=1)
    doc.add_paragraph(SABBATICAL)
    doc.save(folder / "sabbatical.docx")
    pdf = FPDF()
    for title, text in [("Day parking", "Day permits are free for staff."), ("Visitors", "Visitors park in lot C."),
                        ("Night parking", PERMIT)]:  # fmt: skip
        pdf.add_page()
        pdf.set_font("helvetica", "B", 16)
        pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    pdf.output(str(folder / "parking.pdf"))
    (folder / "wifi.html").write_text(
        "<html><body><h1>Visitor Wi-Fi</h1><p>The visitor Wi-Fi password is BLUE-HERON-58.</p></body></html>",
        encoding="utf-8",
    )
    (folder / "lunch.md").write_text("# Lunch\n\nThe canteen serves lunch from 11:30 to 13:30.\n", encoding="utf-8")
    return folder


def through_api(settings, api, **extra):
    return settings.model_copy(
        update={"unstructured_api_url": api.url, "unstructured_api_key": KEY, "unstructured_api_strategy": "hi_res",
                **extra}
    )  # fmt: skip


def test_documents_partitioned_by_the_api_are_ingested_and_answered_with_their_pages(settings, api, docs, embeddings):
    from ingest.pipeline import sync_sources
    from kb_assistant.assistant import Assistant

    parsed = through_api(settings, api)
    api.calls.clear()
    report = sync_sources(parsed, [docs], "default", embeddings=embeddings)

    assert report.ok and report.added == 4, report.failed
    files = [c["file"] for c in api.calls]
    assert sorted(set(files)) == ["parking.pdf", "sabbatical.docx", "wifi.html"]  # lunch.md is read here
    pdf_batches = sorted(int(c["starting_page_number"]) for c in api.calls if c["file"] == "parking.pdf")
    assert len(pdf_batches) > 1 and pdf_batches[0] == 1  # the SDK split the PDF into page batches
    assert {c["strategy"] for c in api.calls} == {"hi_res"}  # KB_UNSTRUCTURED_API_STRATEGY
    assistant = Assistant(parsed, embeddings=embeddings)
    night = assistant.ask("How much is a night parking permit?")
    assert night.answered and "45 euros" in night.text
    assert (night.citations[0].source, night.citations[0].page) == ("parking.pdf", 3)
    assert "eight weeks" in assistant.ask("How long is the paid sabbatical?").text
    assert "BLUE-HERON-58" in assistant.ask("What is the visitor Wi-Fi password?").text


def test_a_file_the_api_cannot_parse_fails_alone_with_its_reason(settings, api, docs, embeddings):
    from ingest.pipeline import sync_sources

    (docs / "contract.docx").write_bytes(b"PK\x03\x04 not really a word document")
    report = sync_sources(through_api(settings, api), [docs], "default", embeddings=embeddings)

    assert [(f.path.rsplit("/", 1)[-1], f.reason[:44]) for f in report.failed] == [
        ("contract.docx", "the partition API could not parse it (HTTP 4")
    ]
    assert report.added == 4


def test_an_api_that_refuses_the_key_stops_the_ingest_and_no_document_loses_its_chunks(
    settings, api, docs, embeddings, monkeypatch
):
    from ingest.ledger import Ledger
    from ingest.pipeline import sync_sources
    from kb_assistant.assistant import Assistant
    from kb_assistant.cli import app

    parsed = through_api(settings, api)
    assert sync_sources(parsed, [docs], "default", embeddings=embeddings).ok
    from docx import Document

    changed = Document()
    changed.add_paragraph(SABBATICAL.replace("eight weeks", "ten weeks"))
    changed.save(docs / "sabbatical.docx")
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_UNSTRUCTURED_API_URL": api.url,
           "KB_UNSTRUCTURED_API_KEY": "wrong", "KB_UNSTRUCTURED_API_STRATEGY": "hi_res"}  # fmt: skip
    result = CliRunner().invoke(app, ["ingest", str(docs), "--kb", "default"], env=env)

    assert result.exit_code == 2, result.output  # a wrong setting, not a failed file
    assert "refused the key (HTTP 401): check KB_UNSTRUCTURED_API_KEY" in result.output
    assert "Traceback" not in result.output
    assert {d.path: d.status for d in Ledger(parsed).documents("default")}["sabbatical.docx"] == "done"
    assert "eight weeks" in Assistant(parsed, embeddings=embeddings).ask("How long is the paid sabbatical?").text


def test_retries_ride_out_server_errors_and_an_api_that_is_down_is_named(settings, api, docs):
    from engines import free_port

    from ingest.loaders import load_document
    from ingest.partition_api import PartitionAPI, PartitionServiceError

    api.fail_next = 2
    doc = load_document(docs / "wifi.html", max_bytes=10**6, partition_api=PartitionAPI(api.url, KEY))
    assert "BLUE-HERON-58" in " ".join(b.text for b in doc.blocks) and api.fail_next == 0

    down = PartitionAPI(f"http://127.0.0.1:{free_port()}", KEY, retry_s=0.5)
    with pytest.raises(PartitionServiceError, match=r"cannot use the partition API KB_UNSTRUCTURED_API_URL=http"):
        load_document(docs / "wifi.html", max_bytes=10**6, partition_api=down)


@pytest.mark.unit
def test_the_api_url_is_its_base_and_unset_means_the_local_loaders(settings):
    from ingest.partition_api import PartitionAPI

    assert PartitionAPI.from_settings(settings) is None
    full = settings.model_copy(update={"unstructured_api_url": "http://unstructured:8000/general/v0/general/"})
    api = PartitionAPI.from_settings(full)
    assert api.url == "http://unstructured:8000" and api.strategy == "auto"
    assert api.handles(".pdf") and api.handles(".docx") and not api.handles(".md") and not api.handles(".csv")
