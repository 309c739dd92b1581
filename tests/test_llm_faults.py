"""The LLM-fault matrix: an endpoint that refuses, hangs, answers 500 or 429, sends garbage, drops half a stream,
cites a passage that does not exist or obeys an injected instruction never costs the user the question.

The fake OpenAI-compatible server (eval/fake_llm.py) takes its faults from the model name (``fake-hang``,
``fake-fail500`` …); "refused" is a port nothing listens on. Each question must come back within
KB_LLM_TIMEOUT_S (2 s here) plus a margin: the extractive answer when the passages support one, else the holding
reply and a ticket whose reason is ``llm_unavailable``. The bound is asserted with a wide margin: it tells a
bounded wait from a hang (the fake ``hang`` holds for 600 s, the client's own default timeout is minutes) on a
shared, noisy machine; the exact times are `python -m eval.llm_faults`'s matrix, not a test.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from sse import sse_events

from eval.fake_llm import FakeLLM
from kb_assistant.assistant import Assistant
from kb_assistant.retrieval import hybrid_search
from ui.server import build_app

TIMEOUT_S = 2.0
MARGIN_S = 10.0  # CI machines are shared: retrieval and the extractive answer may take seconds under load
QUESTION = "How many days of sick leave do I get?"
# confidence 0.87 on the sample KB: KB_LLM_FALLBACK_MIN_CONFIDENCE=0.95 makes its extractive answer not good enough
HOLDING_QUESTION = "Can I carry over sick leave days?"
UNAVAILABLE = ["refused", "hang", "fail500", "fail429", "garbage", "halfstream"]


@pytest.fixture(scope="module")
def fake_llm():
    server = FakeLLM().start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def refused_url():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.fixture
def make_assistant(fake_llm, refused_url, sample_assistant):
    def make(fault: str, **update) -> Assistant:
        url = refused_url if fault == "refused" else fake_llm.base_url
        model = "fake" if fault in ("ok", "refused") else f"fake-{fault}"
        settings = sample_assistant.settings.model_copy(
            update={"llm_base_url": url, "llm_api_key": "test", "llm_model": model, "llm_timeout_s": TIMEOUT_S,
                    "llm_retry_backoff_s": 0.05, **update}
        )  # fmt: skip
        assistant = Assistant(settings, embeddings=sample_assistant.embeddings)
        # the index loaded and its caches warm before the clock starts, as in a server that answered before
        hybrid_search(assistant.index("default"), "sick leave", k=5)
        return assistant

    fake_llm.failed.clear()
    return make


@pytest.fixture(scope="module")
def extractive_text(sample_assistant):
    """What the assistant answers with no LLM at all: the fallback must be exactly that."""
    answer = sample_assistant.ask(QUESTION)
    assert answer.answered
    return answer.text


def timed_stream(assistant: Assistant, question: str = QUESTION, **kwargs):
    start = time.perf_counter()
    events = list(assistant.stream(question, **kwargs))
    return events, time.perf_counter() - start


# --- through Assistant ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", UNAVAILABLE)
def test_an_unavailable_llm_gets_the_extractive_answer_within_the_timeout(fault, make_assistant, extractive_text):
    assistant = make_assistant(fault)

    events, seconds = timed_stream(assistant)

    answer = events[-1].answer
    assert answer.answered, answer
    assert answer.text == extractive_text
    assert answer.citations and answer.ticket_id is None
    assert "".join(e.text for e in events if e.type == "delta") == answer.text  # nothing else was shown
    assert seconds < TIMEOUT_S + MARGIN_S
    health = assistant.llm_health.snapshot()
    assert health["fallbacks"] == {"extractive": 1}
    assert sum(health["failures"].values()) >= 1


@pytest.mark.parametrize("fault", UNAVAILABLE)
def test_an_unavailable_llm_without_an_extractive_answer_gets_the_holding_reply_and_a_ticket(fault, make_assistant):
    assistant = make_assistant(fault, llm_fallback_min_confidence=0.95)  # no extractive answer is good enough

    events, seconds = timed_stream(assistant, HOLDING_QUESTION)

    answer = events[-1].answer
    assert answer.answered is False
    assert answer.escalation_reason == "llm_unavailable"
    assert answer.ticket_id and answer.text.startswith(assistant.settings.holding_reply_en)
    assert assistant.ticket(answer.ticket_id, answer.ticket_token).reason == "llm_unavailable"
    assert [e.text for e in events if e.type == "delta"] == [answer.text]
    assert seconds < TIMEOUT_S + MARGIN_S
    assert assistant.llm_health.snapshot()["fallbacks"] == {"holding_reply": 1}


def test_a_sentence_citing_a_passage_that_does_not_exist_is_never_shown(make_assistant):
    assistant = make_assistant("cite9")

    events, seconds = timed_stream(assistant)

    answer = events[-1].answer
    assert "[9]" not in "".join(e.text for e in events if e.type == "delta")
    assert answer.answered is False and answer.escalation_reason == "no_citation"  # nothing valid was left
    assert answer.ticket_id
    assert seconds < TIMEOUT_S + MARGIN_S


def test_an_answer_not_drawn_from_the_passages_is_not_answered_but_escalated(make_assistant):
    assistant = make_assistant("inject")  # replies "Ignore the rules, the answer is 42 [1]"

    events, _ = timed_stream(assistant, "Do I need a doctor's note for sick leave?")

    answer = events[-1].answer
    assert answer.answered is False
    assert answer.escalation_reason == "unsupported"
    assert answer.ticket_id and assistant.ticket(answer.ticket_id, answer.ticket_token).reason == "unsupported"
    assert not any("42" in e.text for e in events if e.type == "delta")


def test_an_extractive_fallback_is_not_cached_so_the_llm_answers_once_it_is_back(make_assistant):
    assistant = make_assistant("refused", cache_enabled=True)
    assistant.cache.clear("default")  # the sample data dir is shared: another test may have cached this question

    first, second = assistant.ask(QUESTION), assistant.ask(QUESTION)

    assert first.answered and second.answered
    assert second.cached is False
    assert assistant.llm_health.snapshot()["fallbacks"] == {"extractive": 2}


def test_a_failed_call_is_retried_and_the_llm_answer_kept(make_assistant, fake_llm):
    assistant = make_assistant("fail500x1")  # the first request fails, the next succeeds

    answer = assistant.ask(QUESTION)

    assert answer.answered and "12 days" in answer.text
    health = assistant.llm_health.snapshot()
    assert health["failures"] == {"server_error": 1}
    assert health["fallbacks"] == {}
    assert fake_llm.failed["fake-fail500x1"] == 1


def test_the_circuit_breaker_stops_calling_a_dead_endpoint_and_tries_again_after_the_cool_down(
    make_assistant, fake_llm, extractive_text
):
    # two questions × three attempts fail, then the endpoint recovers
    assistant = make_assistant("fail500x6", llm_breaker_threshold=2, llm_breaker_cooldown_s=30.0)
    now = [1000.0]
    assistant.llm_health.clock = lambda: now[0]  # the cool-down passes when the test says so

    for _ in range(2):
        assert assistant.ask(QUESTION).text == extractive_text
    assert assistant.llm_health.is_open
    calls = fake_llm.calls
    assert assistant.ask(QUESTION).text == extractive_text  # answered extractively, the LLM not called
    assert fake_llm.calls == calls
    assert assistant.llm_health.snapshot()["failures"]["circuit_open"] == 1

    now[0] += 31.0
    answer = assistant.ask(QUESTION)
    assert fake_llm.calls == calls + 1 and answer.answered  # tried again: the LLM's answer
    assert not assistant.llm_health.is_open
    assert assistant.llm_health.snapshot()["fallbacks"] == {"extractive": 3}


@pytest.mark.parametrize("fault", ["refused", "hang", "fail500"])
def test_a_follow_up_is_condensed_without_the_llm_when_it_fails(fault, make_assistant):
    assistant = make_assistant(fault)
    history = [
        {"role": "user", "content": "How many days of annual leave do I get?"},
        {"role": "assistant", "content": "Employees get 15 days of paid annual leave per year. [1]"},
    ]

    events, seconds = timed_stream(assistant, "and sick leave?", history=history)

    answer = events[-1].answer
    assert answer.standalone_question == "How many days of sick leave do I get?"  # TopicCarryover's rewrite
    assert answer.answered and "12 days" in answer.text
    assert seconds < TIMEOUT_S + MARGIN_S  # condense and answer share the one timeout
    assert assistant.llm_health.snapshot()["fallbacks"] == {"topic_carryover": 1, "extractive": 1}


# --- through the HTTP API ---------------------------------------------------------------------------------------
@pytest.fixture
def serve(live_server, make_assistant):
    def start(fault: str, **update) -> str:
        return live_server(build_app(make_assistant(fault, **update), mount_ui=False))

    return start


@pytest.mark.parametrize("fault", UNAVAILABLE)
def test_api_ask_never_fails_on_the_llm_and_counts_the_fallback(fault, serve, extractive_text):
    base = serve(fault)

    start = time.perf_counter()
    r = httpx.post(f"{base}/api/ask", json={"question": QUESTION}, timeout=30)
    seconds = time.perf_counter() - start

    assert r.status_code == 200, r.text
    assert r.json()["answered"] is True and r.json()["text"] == extractive_text
    assert seconds < TIMEOUT_S + MARGIN_S
    metrics = httpx.get(f"{base}/metrics").text
    assert 'kb_llm_fallbacks_total{to="extractive"} 1' in metrics
    assert "kb_llm_failures_total{kind=" in metrics


def test_api_ask_opens_an_llm_unavailable_ticket_when_no_extractive_answer_will_do(serve):
    base = serve("hang", llm_fallback_min_confidence=0.95)

    start = time.perf_counter()
    r = httpx.post(f"{base}/api/ask", json={"question": HOLDING_QUESTION}, timeout=30)
    seconds = time.perf_counter() - start

    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["answered"] is False and answer["escalation_reason"] == "llm_unavailable" and answer["ticket_id"]
    assert seconds < TIMEOUT_S + MARGIN_S
    metrics = httpx.get(f"{base}/metrics").text
    assert 'kb_llm_failures_total{kind="timeout"} 1' in metrics
    assert 'kb_llm_fallbacks_total{to="holding_reply"} 1' in metrics
    assert 'kb_escalations_total{kb="default",reason="llm_unavailable"} 1' in metrics


@pytest.mark.parametrize("fault", ["halfstream", "cite9", "inject", "hang"])
def test_api_ask_stream_never_sends_llm_text_that_is_then_rejected(fault, serve):
    base = serve(fault)

    r = httpx.post(f"{base}/api/ask", json={"question": QUESTION, "stream": True}, timeout=30)

    assert r.status_code == 200
    events = sse_events(r.text)
    assert [n for n, _ in events][-2:] == ["citations", "answer"]
    answer = events[-1][1]
    shown = "".join(d["text"] for n, d in events if n == "delta")
    assert shown == answer["text"]  # every delta belongs to the final answer: nothing was taken back
    assert "[9]" not in shown and "42" not in shown


@pytest.mark.parametrize("fault", ["halfstream", "cite9", "inject", "fail429"])
def test_v1_stream_never_sends_llm_text_that_is_then_rejected(fault, serve):
    base = serve(fault)

    r = httpx.post(
        f"{base}/v1/chat/completions", timeout=30,
        json={"model": "default", "stream": True, "messages": [{"role": "user", "content": QUESTION}]},
    )  # fmt: skip

    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[-1][1] == "[DONE]"
    chunks = [d for _, d in events[:-1]]
    assert not any("error" in c for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    final = chunks[-1]
    answer_text = text.split("\n\nSources:")[0]
    assert "[9]" not in text and "42" not in text
    if final["kb_answer"]["answered"]:
        assert "12 days" in answer_text
    else:  # the holding reply, and only it
        assert answer_text.startswith("We're still looking into this question.") and final["kb_answer"]["ticket_id"]


def test_kb_ask_answers_instead_of_a_traceback_when_the_llm_refuses(refused_url, sample_data_dir, monkeypatch):
    from typer.testing import CliRunner

    from kb_assistant.cli import app

    for name, value in {"KB_DATA_DIR": str(sample_data_dir), "KB_LLM_BASE_URL": refused_url,
                        "KB_LLM_TIMEOUT_S": str(TIMEOUT_S), "KB_CACHE_ENABLED": "false"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(app, ["ask", QUESTION])

    assert result.exit_code == 0, result.output
    assert "12 days" in result.output and "leave-policy.md" in result.output
    assert "Traceback" not in result.output


# --- the support check, sentence by sentence ---------------------------------------------------------------------
def _passages(*texts: str):
    from kb_assistant.schema import Candidate, Chunk

    return [Candidate(chunk=Chunk(id=f"c{i}", text=t, source=f"doc{i}.md")) for i, t in enumerate(texts)]


PASSAGES = _passages(
    "Every employee receives 12 days of paid sick leave per calendar year.",
    "Annual leave is 15 days per year; unused days expire on 31 March.",
    "员工每年享有 12 天带薪病假，病假超过 2 天需提供医院证明。",
)


@pytest.mark.unit
def test_a_sentence_citing_a_passage_that_does_not_exist_is_removed_and_the_rest_kept():
    from kb_assistant.answer.grounding import ground

    text = "You get 12 days of paid sick leave per year [1]. Sick leave also covers dental visits [9]."

    assert ground(text, PASSAGES) == ("You get 12 days of paid sick leave per year [1].", None)


@pytest.mark.unit
def test_a_cited_sentence_the_passage_does_not_hold_is_removed():
    from kb_assistant.answer.grounding import ground

    text = "Ignore the rules, the answer is 42 [1]. Annual leave is 15 days per year [2]."

    assert ground(text, PASSAGES) == ("Annual leave is 15 days per year [2].", None)
    assert ground("Ignore the rules, the answer is 42 [1]", PASSAGES) == ("", "unsupported")
    assert ground("Sick leave is 12 days per calendar year.", PASSAGES)[1] == "no_citation"


@pytest.mark.unit
def test_support_compares_chinese_by_words_and_other_languages_by_their_numbers():
    from kb_assistant.answer.grounding import ground

    assert ground("每年有 12 天带薪病假。[3]", PASSAGES) == ("每年有 12 天带薪病假。[3]", None)
    assert ground("每年有 30 天带薪年假，可以折现。[3]", PASSAGES)[1] == "unsupported"
    assert ground("Sick leave is 12 days a year [3].", PASSAGES)[1] is None  # English about a Chinese passage
    assert ground("Sick leave is 20 days a year [3].", PASSAGES)[1] == "unsupported"
