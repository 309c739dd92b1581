"""/v1/chat/completions and /v1/models with the real `openai` client against a live server on 127.0.0.1.

The server answers through the fake OpenAI-compatible LLM of test_llm_contract.py (it quotes and cites the
passages it is shown), so the answer really streams token by token and reports token usage.
"""

from __future__ import annotations

import openai
import pytest
from test_llm_contract import FakeOpenAI  # the fake LLM the LLM contract tests already check

from kb_assistant.assistant import Assistant
from ui.server import build_app


@pytest.fixture(scope="module")
def fake_llm_server():
    import threading

    server = FakeOpenAI()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def base_url(live_server, sample_assistant, fake_llm_server):
    settings = sample_assistant.settings.model_copy(
        update={"llm_base_url": fake_llm_server.base_url, "llm_api_key": "test", "llm_model": "fake"}
    )
    assistant = Assistant(settings, embeddings=sample_assistant.embeddings)
    return live_server(build_app(assistant, mount_ui=False))


@pytest.fixture
def client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)


def test_models_are_the_knowledge_bases(client):
    assert sorted(m.id for m in client.models.list()) == ["default", "sales"]


def test_chat_completion_answers_with_citations_in_text_and_extra_field(client):
    completion = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "How many days of sick leave do I get?"}]
    )

    message = completion.choices[0].message
    assert "12 days" in message.content
    citations = message.model_extra["citations"]
    assert citations and citations[0]["source"] in ("leave-policy.md", "请假制度.md")
    assert f"[{citations[0]['n']}] {citations[0]['source']}" in message.content  # the Sources footer
    assert completion.model == "default" and completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.model_extra["kb_answer"]["answered"] is True
    assert completion.id == f"chatcmpl-{completion.model_extra['kb_answer']['answer_id']}"


def test_chat_completion_streams_chunks_and_ends_with_citations(client):
    stream = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "公司几点上班？"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 2  # the answer once accepted (sentence by sentence), then the sources
    assert "10:00" in text and "来源：" in text
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    assert final.choices[0].model_extra["citations"][0]["source"] == "员工手册-考勤与工时.md"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_history_comes_from_the_earlier_messages(client, fake_llm_server):
    fake_llm_server.requests.clear()
    client.chat.completions.create(
        model="default",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "公司几点上班？"},
            {"role": "assistant", "content": "10:00 上班。[1]\n\n来源：\n[1] 员工手册-考勤与工时.md"},
            {"role": "user", "content": [{"type": "text", "text": "那周末呢？"}]},
        ],
    )
    condense = [r for r in fake_llm_server.requests if any("完整问题" in m["content"] for m in r["messages"])]
    assert condense, "a follow-up with history is condensed by the LLM"
    prompt = " ".join(m["content"] for m in condense[0]["messages"])
    assert "公司几点上班？" in prompt and "那周末呢？" in prompt
    assert "来源：" not in prompt  # our own Sources footer is not fed back as history


def test_openai_errors_reach_the_client_as_api_errors(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert "no knowledge base named 'nope'" in str(err.value)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="default", messages=[{"role": "user", "content": "  "}])
    assert "empty" in str(err.value)
