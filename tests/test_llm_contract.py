"""The LLM answer path against a small OpenAI-compatible server started by the test on 127.0.0.1.

The fake server is not canned per test: it reads the numbered passages out of the system prompt, quotes the
first sentence of the passage that shares the most words (or Chinese characters) with the question and cites
it as ``[n]``; it answers ``NOT_IN_CONTEXT`` when the question mentions a unicorn or nothing is shared. It
records every request body, so the tests can look at the prompt the assistant really sent.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.text import split_sentences

NOT_FOUND = "NOT_IN_CONTEXT"
CONDENSED = "周末上班吗？"
_PASSAGE_HEAD = re.compile(r"^\[(\d+)\] \((.*)\)$", re.M)
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_STOP = frozenset(
    ["a", "an", "the", "of", "to", "in", "on", "at", "for", "do", "does", "i", "my", "me", "you", "your", "is", "are"]
    + ["how", "what", "many", "much", "get"]
)


# --- the fake model's reply logic --------------------------------------------------------------------
def parse_passages(system: str) -> dict[int, str]:
    """{n: body} for every ``[n] (where)`` block in the system prompt."""
    heads = list(_PASSAGE_HEAD.finditer(system))
    passages = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(system)
        passages[int(m.group(1))] = system[m.end() : end].strip()
    return passages


def _features(text: str) -> set[str]:
    low = text.lower()
    words = {w for w in _WORD.findall(low) if w not in _STOP}
    cjk = _CJK.findall(text)
    bigrams = {a + b for a, b in zip(cjk, cjk[1:], strict=False)}
    return words | set(cjk) | bigrams


def first_sentence(body: str) -> str:
    if body.startswith("Q: ") and "\nA: " in body:  # an FAQ passage: quote the answer, not the question
        body = body.split("\nA: ", 1)[1]
    return next((s.strip() for s in split_sentences(body) if s.strip()), body.strip())


def reply_for(system: str, question: str) -> str:
    """Quote the leading sentence that shares the most with the question (most shared words or characters,
    then the larger share of the sentence, then the better-ranked passage), cited as [n]."""
    if "unicorn" in question.lower():
        return NOT_FOUND
    wanted = _features(question)
    best, best_key = None, (0, 0.0)
    for n, body in sorted(parse_passages(system).items()):
        sentence = first_sentence(body)
        have = _features(sentence)
        shared = len(wanted & have)
        key = (shared, shared / max(1, len(have)))
        if shared and key > best_key:  # strictly greater: ties go to the better-ranked passage
            best, best_key = (n, sentence), key
    if best is None:
        return NOT_FOUND
    n, sentence = best
    return f"{sentence} [{n}]"


def word_pieces(text: str) -> list[str]:
    """Word by word (and NOT_/IN_/CONTEXT in three pieces), so the pieces join back to ``text``."""
    return re.findall(r"[^\s_]+[_\s]*|[_\s]+", text)


def count_tokens(text: str) -> int:
    return len(_WORD.findall(text.lower())) + len(_CJK.findall(text))


class FakeOpenAI(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def respond(self, body: dict) -> str:
        texts = [(m.get("role"), m.get("content") or "") for m in body.get("messages", [])]
        last = texts[-1][1] if texts else ""
        if "完整问题" in last:  # the Chinese condense prompt
            return CONDENSED
        if "Standalone question" in last:  # the English one: keep the last question as it is
            return last.rsplit("Last question:", 1)[-1].strip().splitlines()[0]
        system = next((t for role, t in texts if role == "system"), "")
        question = next((t for role, t in reversed(texts) if role == "user"), "")
        return reply_for(system, question)


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, "application/json", b'{"error": {"message": "not found"}}')
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.requests.append(body)
        reply = self.server.respond(body)
        prompt = " ".join(m.get("content") or "" for m in body.get("messages", []) if isinstance(m.get("content"), str))
        usage = {"prompt_tokens": count_tokens(prompt), "completion_tokens": count_tokens(reply)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": "chatcmpl-fake", "created": 0, "model": body.get("model", "fake")}
        if not body.get("stream"):
            message = {"role": "assistant", "content": reply}
            out = {**base, "object": "chat.completion", "usage": usage,
                   "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
            self._send(200, "application/json", json.dumps(out).encode())
            return
        events = []
        chunk = {**base, "object": "chat.completion.chunk"}
        events.append({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        for piece in word_pieces(reply):
            events.append({**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk, "choices": [], "usage": usage})
        payload = b"".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n".encode() for e in events)
        self._send(200, "text/event-stream", payload + b"data: [DONE]\n\n")

    def _send(self, status: int, ctype: str, payload: bytes):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


# --- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake_llm():
    server = FakeOpenAI()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def llm_assistant(fake_llm, sample_assistant):
    fake_llm.requests.clear()
    settings = sample_assistant.settings.model_copy(
        update={"llm_base_url": fake_llm.base_url, "llm_api_key": "test", "llm_model": "fake"}
    )
    return Assistant(settings, embeddings=sample_assistant.embeddings)


def _answer_requests(server: FakeOpenAI) -> list[dict]:
    return [r for r in server.requests if any(m.get("role") == "system" for m in r["messages"])]


def _system_message(request: dict) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "system")


# --- the contract -------------------------------------------------------------------------------------
def test_llm_answer_quotes_the_passages_that_reached_the_prompt_and_cites_them(llm_assistant, fake_llm):
    answer = llm_assistant.ask("How many days of sick leave do I get?")

    assert answer.answered, answer
    assert answer.escalation_reason is None
    assert answer.citations
    (request,) = _answer_requests(fake_llm)
    assert request["model"] == "fake"
    system = _system_message(request)
    assert answer.citations[0].snippet in system  # the cited passage is the one the model was shown
    for c in answer.citations:
        assert f"[{c.n}]" in answer.text
        assert c.source in ("leave-policy.md", "请假制度.md")
    assert "12 days" in answer.text  # the quoted sentence really comes from the sick-leave passage
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0
    assert answer.usage.completion_tokens > 0


def test_llm_streaming_yields_deltas_that_add_up_to_the_answer(llm_assistant, fake_llm):
    events = list(llm_assistant.stream("How many days of sick leave do I get?"))

    deltas = [e.text for e in events if e.type == "delta"]
    finals = [e for e in events if e.type == "final"]
    assert len(finals) == 1 and events[-1] is finals[0]
    answer = finals[0].answer
    assert answer.answered
    assert len(deltas) > 1
    assert "".join(deltas).strip() == answer.text
    assert _answer_requests(fake_llm)[0]["stream"] is True


def test_not_in_context_signal_maps_to_not_answered_with_holding_reply(llm_assistant, fake_llm):
    events = list(llm_assistant.stream("How many days of sick leave does a unicorn get?"))

    answer = events[-1].answer
    assert _answer_requests(fake_llm), "the question should pass the confidence threshold and reach the LLM"
    assert answer.answered is False
    assert answer.escalation_reason == "not_in_context"
    # the holding reply, then the number of the ticket the question opened in the human queue
    assert answer.ticket_id and answer.text == f"{llm_assistant.settings.holding_reply_en} (ticket #{answer.ticket_id})"
    assert answer.citations == []
    deltas = [e.text for e in events if e.type == "delta"]
    assert not any(part in d for d in deltas for part in (NOT_FOUND, "NOT_", "CONTEXT"))
    assert "".join(deltas) == answer.text


def test_chinese_question_uses_the_chinese_prompt(llm_assistant, fake_llm):
    answer = llm_assistant.ask("公司几点上班？")

    (request,) = _answer_requests(fake_llm)
    assert "只能根据下面编号的资料" in _system_message(request)
    assert answer.language == "zh"
    assert answer.answered, answer
    assert "10:00" in answer.text
    assert answer.citations and answer.citations[0].snippet in _system_message(request)


def test_follow_up_is_condensed_by_the_llm(llm_assistant, fake_llm):
    history = [
        {"role": "user", "content": "公司几点上班？"},
        {"role": "assistant", "content": "公司上班时间为周一至周五 10:00–19:00。[1]"},
    ]
    answer = llm_assistant.ask("那周末呢？", history=history)

    condense = [r for r in fake_llm.requests if any("完整问题" in (m.get("content") or "") for m in r["messages"])]
    assert len(condense) == 1
    prompt = " ".join(m["content"] for m in condense[0]["messages"])
    assert "公司几点上班？" in prompt and "那周末呢？" in prompt
    assert answer.question == "那周末呢？"
    assert answer.standalone_question == CONDENSED


def test_unreachable_llm_endpoint_gives_a_clear_error(sample_assistant):
    from kb_assistant.answer.llm import LLMError

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    settings = sample_assistant.settings.model_copy(
        update={"llm_base_url": base_url, "llm_api_key": "test", "llm_model": "fake", "llm_timeout_s": 5.0}
    )
    assistant = Assistant(settings, embeddings=sample_assistant.embeddings)

    with pytest.raises(LLMError) as err:
        assistant.ask("How many days of sick leave do I get?")
    message = str(err.value)
    assert base_url in message
    assert "failed" in message
    assert "connect" in message.lower()
