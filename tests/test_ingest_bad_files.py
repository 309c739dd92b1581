"""Ingest a folder that mixes good files with every kind of bad file a user can drop in.

Each bad file is reported (path + a reason a user can act on) and skipped; every good file goes in and is
searchable; the CLI prints one line per failed file and exits 1; ingesting again changes nothing.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ingest.loaders import DocumentError, decode_text
from ingest.pipeline import ingest_paths
from kb_assistant.retrieval import hybrid_search
from kb_assistant.store import KnowledgeBase

KB = "badfiles"
SIZE_LIMIT_MB = 0.05  # 50 kB: every good file below stays under it, big.md goes over

GBK_TEXT = "员工食堂的麻辣香锅每周三中午供应，价格为二十八元。\n停车场夜间二十二点关闭。\n"
CSV_FAQ = [
    ("年会在哪里举办？", "今年的年会在杭州西湖国宾馆举办，时间为十二月二十日。"),
    ("健身房几点开放？", "员工健身房位于 B1 层，每天 7:00–22:00 开放，刷工牌进入。"),
    ("可以申请第二块显示器吗？", "可以，在 OA「物品申领」提交申请，IT 部门三个工作日内配送。"),
]
XLSX_FAQ = [
    ("快递柜的取件码多久失效？", "取件码在到件后 48 小时失效，逾期请到前台领取。"),
    ("饮水机坏了找谁？", "请联系行政部分机 8201，通常当天修好。"),
]


def _decodes(data: bytes) -> bool:
    try:
        decode_text(data)
    except DocumentError:
        return False
    return True


def make_good_files(folder: Path) -> dict[str, str]:
    """The files that must go in: {file name: a fact that must be found in its chunks}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handbook.md").write_text(
        "# Parking Rules\n\n## Bicycle cage\n\n"
        "The bicycle cage door code is 4471-ZEBRA and it changes every quarter.\n",
        encoding="utf-8",
    )
    (folder / "食堂.txt").write_bytes(GBK_TEXT.encode("gbk"))
    rows = ["问题,答案"] + [f"{q},{a}" for q, a in CSV_FAQ]
    (folder / "faq.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["问题", "答案"])
    for q, a in XLSX_FAQ:
        ws.append([q, a])
    wb.save(folder / "office-faq.xlsx")

    (folder / "wifi.html").write_text(
        "<html><head><title>Visitor Wi-Fi</title></head><body><h1>Visitor Wi-Fi</h1>"
        "<p>The visitor Wi-Fi password is BLUE-HERON-58 and it is printed on the reception desk.</p>"
        "</body></html>",
        encoding="utf-8",
    )

    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    slide.shapes.title.text = "Quarterly Offsite"
    slide.placeholders[1].text = "The quarterly offsite will be held in Moganshan on 18 October."
    deck.save(folder / "offsite.pptx")

    return {
        "handbook.md": "4471-ZEBRA",
        "食堂.txt": "麻辣香锅每周三中午供应",
        "faq.csv": "西湖国宾馆",
        "office-faq.xlsx": "48 小时失效",
        "wifi.html": "BLUE-HERON-58",
        "offsite.pptx": "Moganshan",
    }


def make_bad_files(folder: Path) -> dict[str, str]:
    """One file of each bad kind: {file name: the phrase its failure reason must contain}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20240101)
    (folder / "empty.md").write_bytes(b"")
    (folder / "setup.exe").write_bytes(b"MZ\x90\x00\x03\x00\x00\x00" + bytes(rng.randrange(256) for _ in range(512)))
    (folder / "contract.docx").write_bytes(bytes(rng.randrange(256) for _ in range(2048)))
    (folder / "report.pdf").write_text("This is plain text pretending to be a PDF.\n", encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"ELF\x00\x00\x01\x02hello\x00world" * 20)
    garbled = bytes([0xFF, 0x80]) + bytes(rng.randrange(0x80, 0x100) for _ in range(400))
    assert not _decodes(garbled), "the garbled bytes must be rejected by decode_text for this test to mean anything"
    (folder / "garbled.txt").write_bytes(garbled)
    (folder / "big.md").write_text("# Big\n\n" + "A long and boring line of text.\n" * 2500, encoding="utf-8")
    return {
        "empty.md": "empty file",
        "setup.exe": "unsupported file type '.exe'",
        "contract.docx": "not a valid docx package",
        "report.pdf": "not a PDF",
        "binary.txt": "binary content in a text file",
        "garbled.txt": "cannot decode text",
        "big.md": "KB_MAX_FILE_MB",
    }


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "inbox"
    good = make_good_files(folder)
    bad = make_bad_files(folder)
    limit = int(SIZE_LIMIT_MB * 1e6)
    for name in good:
        assert (folder / name).stat().st_size < limit, f"{name} must stay under the test's size limit"
    assert (folder / "big.md").stat().st_size > limit
    return folder, good, bad


@pytest.fixture
def small_limit_settings(settings):
    return settings.model_copy(update={"max_file_mb": SIZE_LIMIT_MB})


def test_gbk_fixture_text_is_really_gbk_and_decodes_back():
    data = GBK_TEXT.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert decode_text(data) == GBK_TEXT


def test_gbk_chinese_txt_is_ingested_with_its_text_decoded(tmp_path, settings, embeddings):
    folder = tmp_path / "gbk"
    folder.mkdir()
    (folder / "食堂.txt").write_bytes(GBK_TEXT.encode("gbk"))

    report = ingest_paths(settings, [folder], KB)

    assert report.failed == [], report.failed
    assert report.documents == 1
    text = "\n".join(c.text for c in KnowledgeBase(settings, KB, embeddings).all_chunks())
    for line in GBK_TEXT.split():
        assert line in text, text


def test_size_limit_reason_states_the_configured_limit(tmp_path):
    from ingest.loaders import load_document

    big = tmp_path / "big.md"
    big.write_text("# Big\n\n" + "A long and boring line of text.\n" * 2500, encoding="utf-8")
    with pytest.raises(DocumentError) as err:
        load_document(big, max_bytes=int(SIZE_LIMIT_MB * 1e6))
    reason = str(err.value)
    assert "KB_MAX_FILE_MB" in reason
    assert f"{SIZE_LIMIT_MB:g} MB limit" in reason, reason  # not "over the 0 MB limit"


def test_bad_files_are_reported_with_reasons_and_good_files_are_ingested(
    mixed_folder, small_limit_settings, embeddings
):
    folder, good, bad = mixed_folder
    seen: dict[str, str | None] = {}
    report = ingest_paths(small_limit_settings, [folder], KB, on_file=lambda p, err: seen.setdefault(p.name, err))

    failed = {Path(f.path).name: f.reason for f in report.failed}
    for name, phrase in bad.items():
        assert name in failed, (name, report.failed)
        assert phrase in failed[name], (name, failed[name])
    assert "over the" in failed["big.md"]
    for f in report.failed:
        assert Path(f.path) == folder / Path(f.path).name  # the full path, so the user can find the file
    assert set(seen) == set(good) | set(bad)  # on_file is called once per file
    assert set(failed) == set(bad), f"good files reported as failed: { {n: failed[n] for n in set(failed) - set(bad)} }"
    assert {n for n, err in seen.items() if err} == set(bad)
    assert report.documents == len(good)
    assert not report.ok

    chunks = KnowledgeBase(small_limit_settings, KB, embeddings).all_chunks()
    assert report.chunks == len(chunks)
    by_source: dict[str, list] = {}
    for c in chunks:
        by_source.setdefault(c.source, []).append(c)
    assert set(by_source) == set(good)  # nothing from a bad file got in
    for name, fact in good.items():
        assert any(fact in c.text for c in by_source[name]), (name, [c.text for c in by_source[name]])

    # GBK decoded into the right characters, not mojibake
    gbk_text = "\n".join(c.text for c in by_source["食堂.txt"])
    assert "麻辣香锅" in gbk_text and "停车场夜间二十二点关闭" in gbk_text

    # question/answer tables: one FAQ chunk per row
    for name, rows in (("faq.csv", CSV_FAQ), ("office-faq.xlsx", XLSX_FAQ)):
        faq = by_source[name]
        assert all(c.kind == "faq" for c in faq)
        assert sorted((c.question, c.text) for c in faq) == sorted(rows)


def test_ingested_good_files_are_found_by_search(mixed_folder, small_limit_settings, embeddings):
    folder, _, _ = mixed_folder
    ingest_paths(small_limit_settings, [folder], KB)
    index = KnowledgeBase(small_limit_settings, KB, embeddings)

    for query, source, fact in [
        ("What is the bicycle cage door code?", "handbook.md", "4471-ZEBRA"),
        ("visitor Wi-Fi password", "wifi.html", "BLUE-HERON-58"),
        ("Where is the quarterly offsite?", "offsite.pptx", "Moganshan"),
        ("健身房几点开放？", "faq.csv", "7:00–22:00"),
        ("快递柜取件码多久失效？", "office-faq.xlsx", "48 小时"),
        ("麻辣香锅什么时候供应？", "食堂.txt", "麻辣香锅"),
    ]:
        top = hybrid_search(index, query, k=5)[0].chunk
        assert top.source == source and fact in top.text, (query, top)


def test_cli_prints_one_line_per_failed_file_and_exits_1(mixed_folder, settings):
    from typer.testing import CliRunner

    from kb_assistant.cli import app

    folder, good, bad = mixed_folder
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_MAX_FILE_MB": str(SIZE_LIMIT_MB)}
    result = CliRunner().invoke(app, ["ingest", str(folder), "--kb", KB], env=env)

    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    for name, phrase in bad.items():
        named = [line for line in lines if line.startswith(f"failed: {folder / name}: ")]
        assert len(named) == 1, (name, result.stderr)
        assert phrase in named[0], named[0]
    assert len(lines) == len(bad), result.stderr  # one line per failed file, and only the bad ones fail
    assert f"{len(good)} documents" in result.stdout
    assert f"{len(bad)} failed" in result.stdout


def test_chunk_ids_are_stable_and_reingest_adds_no_duplicates(tmp_path, settings, embeddings):
    folder = tmp_path / "good"
    make_good_files(folder)
    index = KnowledgeBase(settings, KB, embeddings)

    first = ingest_paths(settings, [folder], KB)
    ids_first = sorted(c.id for c in index.all_chunks())
    second = ingest_paths(settings, [folder], KB)
    ids_second = sorted(c.id for c in index.all_chunks())

    assert first.documents == second.documents > 0
    assert first.failed == second.failed
    assert first.chunks == first.total_chunks == second.total_chunks == len(ids_first)
    assert second.unchanged == second.documents and second.chunks == second.embedded == 0  # nothing redone
    assert ids_second == ids_first
    assert len(set(ids_second)) == len(ids_second)
    assert index.count() == len(ids_first)
    assert second.kb_version == first.kb_version  # nothing changed: the KB version (and any cache) stays


def test_a_document_table_becomes_one_self_describing_line_per_row(tmp_path):
    """A row read on its own says what its cells are; a one-row table stays as unstructured read it."""
    from ingest.loaders import load_document

    md = tmp_path / "leave.md"
    md.write_text("# Leave\n\n| Years of service | Annual leave |\n| --- | --- |\n| Under 5 years | 10 days |\n"
                  "| 5 years or more | 15 days |\n\nText after the table.\n", encoding="utf-8")  # fmt: skip
    html = tmp_path / "wifi.html"
    html.write_text("<h1>Wi-Fi</h1><table><tr><th>网络</th><th>密码</th></tr><tr><td>Lumen-Guest</td>"
                    "<td>每周一更新</td></tr></table><table><tr><td>only</td><td>one row</td></tr></table>"
                    "<table><tr><td>开票名称</td><td>流明科技</td></tr><tr><td>税号</td><td>91310104</td></tr></table>",
                    encoding="utf-8")  # fmt: skip
    rows = [b.text for b in load_document(md, max_bytes=10**6).blocks if b.kind == "table"]
    assert rows == ["Years of service: Under 5 years | Annual leave: 10 days",
                    "Years of service: 5 years or more | Annual leave: 15 days"]  # fmt: skip
    rows = [b.text for b in load_document(html, max_bytes=10**6).blocks if b.kind == "table"]
    # a two-column table with no header row is read as key: value (a header row would garble it)
    assert rows == ["网络: Lumen-Guest | 密码: 每周一更新", "only one row", "开票名称: 流明科技", "税号: 91310104"]
