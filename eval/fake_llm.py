"""A small OpenAI-compatible chat server: the fake LLM of the LLM contract tests and of the load test.

It is not canned: it reads the numbered passages ``[n] (where)`` out of the system prompt, quotes the first
sentence of the passage that shares the most words (or Chinese characters) with the question and cites it as
``[n]``; with nothing shared it answers ``NOT_IN_CONTEXT``. Condense prompts get the last question back. It
streams word by word when asked, reports token usage, records every request body, and can wait ``delay_ms``
per call to stand in for a real model's latency; a model name with ``ttft<ms>`` in it (``fake-ttft1000``) sets
that wait per request (the load test uses it: the latency lives in ``KB_LLM_MODEL``).

    python -m eval.fake_llm --port 8001 [--delay-ms 300]
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kb_assistant.text import split_sentences

NOT_FOUND = "NOT_IN_CONTEXT"
_PASSAGE_HEAD = re.compile(r"^\[(\d+)\] \((.*)\)$", re.M)
_LAST_QUESTION = re.compile(r"^(?:最后一个问题：|Last question:)(.*)$", re.M)
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_TTFT = re.compile(r"ttft(\d+)")
_STOP = frozenset(
    ["a", "an", "the", "of", "to", "in", "on", "at", "for", "do", "does", "i", "my", "me", "you", "your", "is", "are"]
    + ["how", "what", "many", "much", "get"]
)


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


class FakeLLM(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay_ms: float = 0.0):
        super().__init__((host, port), _Handler)
        self.delay_s = delay_ms / 1000.0
        self.requests: list[dict] = []
        self.calls = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def respond(self, body: dict) -> str:
        messages = [(m.get("role"), m.get("content") or "") for m in body.get("messages", [])]
        last = messages[-1][1] if messages else ""
        condense = _LAST_QUESTION.search(last)  # the condense prompts: keep the last question as it is
        if condense:
            return condense.group(1).strip()
        system = next((t for r, t in messages if r == "system"), "")
        question = next((t for r, t in reversed(messages) if r == "user"), "")
        return reply_for(system, question)

    def start(self) -> FakeLLM:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


class _Handler(BaseHTTPRequestHandler):
    server: FakeLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test and benchmark output clean
        pass

    def do_POST(self):
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, "application/json", b'{"error": {"message": "not found"}}')
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.requests.append(body)
        self.server.calls += 1
        ttft = _TTFT.search(str(body.get("model", "")))
        delay_s = int(ttft.group(1)) / 1000.0 if ttft else self.server.delay_s
        if delay_s:
            time.sleep(delay_s)
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
        chunk = {**base, "object": "chat.completion.chunk"}
        events = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeLLM(port=args.port, delay_ms=args.delay_ms)
    print(f"fake OpenAI-compatible LLM on {server.base_url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
