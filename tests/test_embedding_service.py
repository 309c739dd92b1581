"""Embeddings from a service: ``KB_EMBEDDING_BASE_URL`` + ``KB_EMBEDDING_MODEL`` (+ key) embed ingest and questions
through any OpenAI-compatible ``/v1/embeddings`` endpoint.

The service here is eval/fake_llm.py on 127.0.0.1, whose ``/v1/embeddings`` runs the real bundled MiniLM, so what
retrieval finds through it is what the model finds. The model name tags every vector and names its collection: a
switch of model re-embeds into the new model's collection and never mixes the two. A service that is down, refuses
the key, or changes the model behind a name gives a message naming the setting, and the KB keeps what it had.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from eval.fake_llm import FakeLLM
from kb_assistant.assistant import Assistant

KEY = "sk-test-embeddings"
FAQ = (
    "question,answer\n"
    "How many days of paternity leave do fathers get?,Fathers get 10 working days of paid paternity leave.\n"
    "Can I work from home?,Up to two days a week when your manager agrees.\n"
    "Where do I find my payslip?,Payslips are in the HR portal under Documents.\n"
    "Who do I call when my laptop breaks?,Call the IT service desk on extension 4400.\n"
)
PARKING = "# Parking\n\nStaff parking is in garage B, level 2. The monthly parking fee is 150 yuan.\n"


@pytest.fixture(scope="module")
def service():
    server = FakeLLM(api_key=KEY).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "faq.csv").write_text(FAQ, encoding="utf-8")
    (folder / "parking.md").write_text(PARKING, encoding="utf-8")
    return folder


def remote(settings, service, model: str, **extra):
    return settings.model_copy(
        update={"embedding_base_url": service.base_url, "embedding_api_key": KEY, "embedding_model": model,
                "embedding_batch_size": 3, "embedding_max_retries": 2, **extra}
    )  # fmt: skip


def stored(settings, kb: str = "default") -> tuple[str, set[str], set[int]]:
    """(collection name, embedder tags, vector sizes) of what ``settings`` reads for ``kb``."""
    from kb_assistant.store.vectors import Vectors

    vectors = Vectors(settings, kb, None)
    got = vectors.collection.get(include=["metadatas", "embeddings"])
    return vectors.collection.name, {m["embedder"] for m in got["metadatas"]}, {len(e) for e in got["embeddings"]}


def test_a_kb_ingested_and_asked_through_the_service_answers_by_meaning(settings, service, docs):
    from ingest.pipeline import sync_sources

    svc = remote(settings, service, "minilm", keyword_search=False)  # dense retrieval only: the service's vectors
    before = service.embedded.get("minilm", 0)
    report = sync_sources(svc, [docs], "default")

    assert report.ok and report.embedded > 3
    assert service.embedded["minilm"] - before == report.embedded  # every vector came from the service …
    assert max(service.embed_batches[-2:]) <= 3  # … in batches of KB_EMBEDDING_BATCH_SIZE
    answer = Assistant(svc).ask("My computer is broken, who can help?")  # no word shared with the FAQ's question
    assert answer.answered and "extension 4400" in answer.text
    assert answer.citations[0].section == "Who do I call when my laptop breaks?"
    name, tags, sizes = stored(svc)
    assert name.startswith("kb_default.minilm-") and tags == {"remote:minilm"} and sizes == {384}


def test_switching_models_re_embeds_into_the_new_models_collection_and_never_mixes(settings, service, docs, embeddings):
    from ingest.pipeline import sync_sources

    local = sync_sources(settings, [docs], "default", embeddings=embeddings)  # the bundled model first
    first = remote(settings, service, "minilm")
    second = remote(settings, service, "minilm-dim128")  # another model: 128 dimensions
    on_first = sync_sources(first, [docs], "default")
    on_second = sync_sources(second, [docs], "default")

    assert local.ok and on_first.ok and on_second.ok
    assert on_first.updated == on_second.updated == 2 and on_first.unchanged == on_second.unchanged == 0
    assert on_second.embedded == on_first.embedded == local.embedded  # every chunk embedded again, by its model
    assert service.embedded["minilm-dim128"] == on_second.embedded
    assert stored(settings) == ("kb_default", {"bundled-minilm"}, {384})
    assert stored(first)[1:] == ({"remote:minilm"}, {384})
    assert stored(second)[1:] == ({"remote:minilm-dim128"}, {128})
    assert len({stored(s)[0] for s in (settings, first, second)}) == 3
    assert sync_sources(second, [docs], "default").unchanged == 2  # the new model's vectors are now the documents'
    for s in (second, first):  # a replica still on the old model reads the old model's collection
        answer = Assistant(s).ask("Where do I get my payslip?")
        assert answer.answered and "HR portal" in answer.text
    assert Assistant(second).knowledge_bases() == ["default"]


def test_a_wrong_key_fails_the_ingest_with_a_message_naming_the_setting_and_the_kb_keeps_its_answers(
    settings, service, docs, monkeypatch
):
    from ingest.pipeline import sync_sources
    from kb_assistant.cli import app

    good = remote(settings, service, "minilm")
    assert sync_sources(good, [docs], "default").ok
    (docs / "parking.md").write_text(PARKING.replace("150", "180"), encoding="utf-8")
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_EMBEDDING_BASE_URL": service.base_url,
           "KB_EMBEDDING_MODEL": "minilm", "KB_EMBEDDING_API_KEY": "sk-wrong"}  # fmt: skip
    result = CliRunner().invoke(app, ["ingest", str(docs), "--kb", "default"], env=env)

    assert result.exit_code == 2, result.output  # a wrong setting (2), not a failed file (1)
    assert "refused the key (HTTP 401): check KB_EMBEDDING_API_KEY" in result.output
    assert "Traceback" not in result.output
    answer = Assistant(good).ask("How much is the monthly parking fee?")
    assert "150 yuan" in answer.text  # the published version still answers


def test_a_service_that_is_down_is_named_with_its_setting(settings):
    from engines import free_port

    from kb_assistant.embedding_service import EmbeddingServiceError
    from kb_assistant.embeddings import make_embeddings

    down = settings.model_copy(
        update={"embedding_base_url": f"http://127.0.0.1:{free_port()}/v1", "embedding_model": "minilm",
                "embedding_max_retries": 0}
    )  # fmt: skip
    with pytest.raises(EmbeddingServiceError, match=r"cannot reach the embeddings service KB_EMBEDDING_BASE_URL=http"):
        make_embeddings(down).embed_query("hello")


def test_a_question_while_the_service_is_down_gets_a_503_naming_the_setting_not_the_url(settings, service, docs):
    from engines import free_port
    from fastapi.testclient import TestClient

    from ingest.pipeline import sync_sources
    from ui.server import build_app

    svc = remote(settings, service, "minilm")
    assert sync_sources(svc, [docs], "default").ok
    down = svc.model_copy(
        update={"embedding_base_url": f"http://127.0.0.1:{free_port()}/v1", "embedding_max_retries": 0}
    )
    response = TestClient(build_app(Assistant(down), mount_ui=False)).post(
        "/api/ask", json={"question": "Where do I park?"}
    )

    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "embeddings_unavailable" and "KB_EMBEDDING_BASE_URL" in error["message"]
    assert "127.0.0.1" not in error["message"]  # the service's address is for the server's log only


def test_retries_ride_out_a_flaky_service(settings, service):
    from kb_assistant.embeddings import make_embeddings

    flaky = remote(settings, service, "minilm-fail500x2", embedding_max_retries=2)
    vector = make_embeddings(flaky).embed_query("Where do I park?")

    assert len(vector) == 384 and service.failed["minilm-fail500x2"] == 2
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-4  # unit length, whatever the service sends


def test_a_model_changed_behind_its_name_is_refused_by_name_not_mixed(settings, service, docs):
    from ingest.pipeline import sync_sources
    from kb_assistant.embedding_service import EmbeddingServiceError, service_embeddings
    from kb_assistant.embeddings import EmbeddingModelError, make_embeddings
    from kb_assistant.store import KnowledgeBase

    svc = remote(settings, service, "minilm-swapped")
    assert sync_sources(svc, [docs], "default").ok  # 384 dimensions
    service.dim_override = 128
    try:
        with pytest.raises(EmbeddingServiceError, match=r"128 dimensions, not the 384 it returned before"):
            make_embeddings(svc).embed_query("Where do I park?")  # this process saw 384 from that name
        fresh = KnowledgeBase(svc, "default", service_embeddings(svc))  # a replica started after the swap
        with pytest.raises(EmbeddingModelError, match=r"remote:minilm-swapped \(KB_EMBEDDING_MODEL\) do not fit"):
            fresh.vectors.search(fresh.embeddings.embed_query("Where do I park?"), 3, live=fresh.live_ids())
        (docs / "parking.md").write_text(PARKING.replace("150", "180"), encoding="utf-8")
        with pytest.raises(EmbeddingModelError, match=r"give each model its own KB_EMBEDDING_MODEL name"):
            sync_sources(svc, [docs], "default", embeddings=service_embeddings(svc))
    finally:
        service.dim_override = None
    assert stored(svc)[1:] == ({"remote:minilm-swapped"}, {384})  # nothing of the other size went in


@pytest.mark.unit
def test_a_service_url_without_a_model_name_is_refused_naming_both_settings(monkeypatch):
    from kb_assistant.settings import SettingsError, load_settings

    monkeypatch.setenv("KB_EMBEDDING_BASE_URL", "http://127.0.0.1:8080/v1")
    with pytest.raises(SettingsError, match=r"KB_EMBEDDING_BASE_URL is set, so KB_EMBEDDING_MODEL must name"):
        load_settings()
    monkeypatch.setenv("KB_EMBEDDING_BASE_URL", "tei:8080")
    with pytest.raises(SettingsError, match=r"KB_EMBEDDING_BASE_URL: .*http://"):
        load_settings(embedding_model="bge-m3")


@pytest.mark.unit
def test_each_service_model_has_a_collection_name_chroma_accepts(settings):
    from kb_assistant.store.vectors import collection_name

    names = {
        collection_name(settings.model_copy(update={"embedding_base_url": "http://x/v1", "embedding_model": m}), "hr")
        for m in ("BAAI/bge-m3", "bge-m3", "text-embedding-3-large", "nomic-embed-text:latest", "嵌入")
    }
    assert len(names) == 5 and collection_name(settings, "hr") == "kb_hr"
    for name in names:
        assert name.startswith("kb_hr.") and name[-1].isalnum() and len(name) <= 512
        assert all(c.isalnum() and c.isascii() or c in "._-" for c in name), name
