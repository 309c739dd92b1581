"""KB_CHROMA_URL switches from embedded Chroma to a Chroma server: the same code path, tested against a real
`chroma run` that the test starts on 127.0.0.1."""

from __future__ import annotations


def test_ingest_and_answer_through_a_chroma_server(chroma_url, tmp_path, embeddings):
    from ingest.pipeline import ingest_paths
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "parking.md").write_text(
        "# Parking\n\n## Visitor parking\n\n"
        "Visitors park free for three hours in garage B2 with a code from reception.\n",
        encoding="utf-8",
    )
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_url)
    report = ingest_paths(settings, [docs], "facilities")
    assert report.ok and report.chunks >= 1
    assert not (tmp_path / "data" / "chroma").exists(), "the embedded store must not be used"

    answer = Assistant(settings, embeddings=embeddings).ask("Where can visitors park?", kb="facilities")
    assert answer.answered and "B2" in answer.text
    assert answer.citations[0].source == "parking.md"
