"""A small OpenAI-compatible chat server for benchmarks (the idea of tests/test_llm_contract.py's fake).

It reads the numbered passages ``[n] (where)`` out of the system prompt, quotes the first sentence of the passage
sharing the most words or Chinese characters with the question and cites it as ``[n]``; with nothing shared it
answers ``NOT_IN_CONTEXT``. Condense prompts get the last question back. Streams word by word when asked.
An optional delay stands in for a real model's latency.

    python -m eval.fake_llm --port 8001 [--delay-ms 300]
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HEAD = re.compile(r"^\[(\d+)\] \((.*)\)$", re.M)
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LAST_QUESTION = re.compile(r"^(?:最后一个问题：|Last question:)(.*)$", re.M)
_SENTENCE = re.compile(r"(?<=[。！？.!?])\s*")


def _features(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) | set(_CJK.findall(text))


def reply_for(system: str, question: str) -> str:
    heads = list(_HEAD.finditer(system))
    best, best_shared = None, 0
    for i, m in enumerate(heads):
        body = system[m.end() : heads[i + 1].start() if i + 1 < len(heads) else len(system)].strip()
        if body.startswith("Q: ") and "\nA: " in body:
            body = body.split("\nA: ", 1)[1]
        sentence = next((s.strip() for s in _SENTENCE.split(body) if s.strip()), "")
        shared = len(_features(question) & _features(sentence))
        if shared > best_shared:
            best, best_shared = f"{sentence} [{m.group(1)}]", shared
    return best or "NOT_IN_CONTEXT"


class FakeLLM(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay_ms: float = 0.0):
        super().__init__((host, port), _Handler)
        self.delay_s = delay_ms / 1000.0
        self.calls = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def reply(self, body: dict) -> str:
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

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.calls += 1
        if self.server.delay_s:
            time.sleep(self.server.delay_s)
        reply = self.server.reply(body)
        usage = {"prompt_tokens": 300, "completion_tokens": len(reply.split()) + 1}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": "chatcmpl-fake", "created": 0, "model": body.get("model", "fake")}
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
            payload = json.dumps({**base, "object": "chat.completion", "usage": usage, "choices": [choice]}).encode()
            self._send("application/json", payload)
            return
        chunk = {**base, "object": "chat.completion.chunk"}
        events = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        for piece in re.findall(r"\S+\s*|\s+", reply):
            events.append({**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        events.append({**chunk, "choices": [], "usage": usage})
        data = b"".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n".encode() for e in events)
        self._send("text/event-stream", data + b"data: [DONE]\n\n")

    def _send(self, ctype: str, payload: bytes):
        self.send_response(200)
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
