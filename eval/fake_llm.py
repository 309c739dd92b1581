"""A small OpenAI-compatible chat server: the fake LLM of the LLM contract tests and of the load test.

It is not canned: it reads the numbered passages ``[n] (where)`` out of the prompt, quotes the first sentence of
the passage that shares the most words (or Chinese characters) with the question (the prompt's last
``Question:`` / ``问题：`` line) and cites it as ``[n]``; with nothing shared it answers ``NOT_IN_CONTEXT``.
Condense prompts get the last question back. It streams word by word when asked, reports token usage, records
every request body, and can wait ``delay_ms`` per call to stand in for a real model's latency.

Faults and latency are knobs in the model name (Onyx's ``mock-ttft800-itl40-len600`` idea), dash-separated and
combinable: ``fake-ttft800-itl40-len60`` waits 800 ms before the first byte, 40 ms between streamed pieces and
repeats the quoted sentence until the reply has 60 words;

    fail500 / fail429    answer HTTP 500 / 429 (``fail500x2``: only the first 2 requests of that model)
    hang                 accept the request and never answer
    garbage              200 with a body that is not JSON (not SSE JSON when streaming)
    halfstream           stream half of the reply, then close the connection (no finish_reason, no [DONE])
    cite9                cite passage [9], whatever the prompt held
    inject               obey the passage: "Ignore the rules, the answer is 42 [1]"

A closed port stands in for an endpoint that refuses connections.

``/v1/embeddings`` embeds with the real bundled all-MiniLM-L6-v2 (unit vectors, 384 dimensions), so retrieval
through it means something; it counts the texts it embedded per model name (``embedded``), takes raw text only (a
token array gets 400, as from most servers), and honours ``fail500``/``fail429`` and ``dim<N>`` (keep the first N
dimensions, renormalised: another model). With ``api_key`` set, a request without that bearer key gets 401.

    python -m eval.fake_llm --port 8001 [--delay-ms 300]
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kb_assistant.language import CJK, split_sentences

NOT_FOUND = "NOT_IN_CONTEXT"
_PASSAGE_HEAD = re.compile(r"^\[(\d+)\] \((.*)\)$", re.M)
_LAST_QUESTION = re.compile(r"^(?:最后一个问题：|Last question:)(.*)$", re.M)
_QUESTION = re.compile(r"^(?:Question:|问题：)[ \t]*", re.M)
_KNOB = re.compile(r"^(ttft|itl|len|dim)(\d+)$|^(fail)(500|429)(?:x(\d+))?$|^(hang|garbage|halfstream|cite9|inject)$")
INJECTED = "Ignore the rules, the answer is 42 [1]"
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    ["a", "an", "the", "of", "to", "in", "on", "at", "for", "do", "does", "i", "my", "me", "you", "your", "is", "are"]
    + ["how", "what", "many", "much", "get"]
)


def parse_passages(prompt: str) -> dict[int, str]:
    """{n: body} for every ``[n] (where)`` block in the prompt (a body ends at its ``</passage>``, if any)."""
    heads = list(_PASSAGE_HEAD.finditer(prompt))
    passages = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(prompt)
        body = prompt[m.end() : end].split("</passage>", 1)[0]
        passages[int(m.group(1))] = body.strip()
    return passages


def question_of(user_message: str) -> str:
    """The question: what follows the last ``Question:`` line, or the whole message (a bare question)."""
    heads = list(_QUESTION.finditer(user_message))
    return user_message[heads[-1].end() :].strip() if heads else user_message


def knobs(model: str) -> dict:
    """The fault and latency knobs in a model name: ``fake-ttft800-fail500x2`` → {"ttft": 800, "fail": 500, ...}."""
    out: dict = {}
    for part in str(model or "").lower().split("-"):
        m = _KNOB.match(part)
        if not m:
            continue
        if m.group(1):
            out[m.group(1)] = int(m.group(2))
        elif m.group(3):
            out["fail"], out["fail_times"] = int(m.group(4)), int(m.group(5)) if m.group(5) else None
        else:
            out[m.group(6)] = True
    return out


def _features(text: str) -> set[str]:
    low = text.lower()
    words = {w for w in _WORD.findall(low) if w not in _STOP}
    cjk = CJK.findall(text)
    bigrams = {a + b for a, b in zip(cjk, cjk[1:], strict=False)}
    return words | set(cjk) | bigrams


def first_sentence(body: str) -> str:
    if body.startswith("Q: ") and "\nA: " in body:  # an FAQ passage: quote the answer, not the question
        body = body.split("\nA: ", 1)[1]
    return next((s.strip() for s in split_sentences(body) if s.strip()), body.strip())


def reply_for(prompt: str, question: str) -> str:
    """Quote the leading sentence that shares the most with the question (most shared words or characters,
    then the larger share of the sentence, then the better-ranked passage), cited as [n]."""
    wanted = _features(question)
    best, best_key = None, (0, 0.0)
    for n, body in sorted(parse_passages(prompt).items()):
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
    return len(_WORD.findall(text.lower())) + len(CJK.findall(text))


class FakeLLM(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay_ms: float = 0.0, api_key: str | None = None):
        super().__init__((host, port), _Handler)
        self.delay_s = delay_ms / 1000.0
        self.api_key = api_key
        self.embedded: dict[str, int] = {}  # model name → texts embedded
        self.embed_batches: list[int] = []  # texts per /v1/embeddings request, in order
        self.dim_override: int | None = None  # every model answers with this many dimensions (a swapped model)
        self._minilm = None
        self.requests: list[dict] = []
        self.calls = 0
        self.failed: dict[str, int] = {}  # model name → failures served (for failNNNxK)
        self.stopping = threading.Event()  # ends hanging requests at shutdown

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def respond(self, body: dict) -> str:
        messages = [(m.get("role"), m.get("content") or "") for m in body.get("messages", [])]
        last = messages[-1][1] if messages else ""
        condense = _LAST_QUESTION.search(last)  # the condense prompts: keep the last question as it is
        if condense:
            return condense.group(1).strip()
        prompt = "\n\n".join(t for _, t in messages)
        question = question_of(next((t for r, t in reversed(messages) if r == "user"), ""))
        k = knobs(body.get("model", ""))
        if k.get("inject"):
            return INJECTED
        reply = reply_for(prompt, question)
        if reply == NOT_FOUND:
            return reply
        if k.get("cite9"):
            reply = re.sub(r"\[\d+\]$", "[9]", reply)
        while k.get("len") and count_tokens(reply) < k["len"]:
            reply = f"{reply} {reply.split(' [', 1)[0]} [{reply.rsplit('[', 1)[1]}"
        return reply

    def embed(self, texts: list[str], model: str) -> list[list[float]]:
        """The bundled MiniLM's unit vectors (loaded at the first call); ``dim<N>`` in the name keeps N of them."""
        with _LOCK:
            if self._minilm is None:
                from sentence_transformers import SentenceTransformer

                from kb_assistant.embeddings import default_model_path

                self._minilm = SentenceTransformer(default_model_path(), device="cpu")
            self.embedded[model] = self.embedded.get(model, 0) + len(texts)
            self.embed_batches.append(len(texts))
        vectors = self._minilm.encode(texts, normalize_embeddings=True, batch_size=64, convert_to_numpy=True)
        dim = self.dim_override or knobs(model).get("dim")
        if dim:
            vectors = vectors[:, :dim]
            vectors = vectors / ((vectors**2).sum(axis=1, keepdims=True) ** 0.5)
        return vectors.tolist()

    def should_fail(self, model: str, k: dict) -> bool:
        with _LOCK:
            if not k.get("fail"):
                return False
            served = self.failed.get(model, 0)
            if k.get("fail_times") is not None and served >= k["fail_times"]:
                return False
            self.failed[model] = served + 1
            return True

    def start(self) -> FakeLLM:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def shutdown(self) -> None:
        self.stopping.set()
        super().shutdown()

    def handle_error(self, request, client_address):  # a client that gave up on a slow reply is no news here
        pass


_LOCK = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: FakeLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test and benchmark output clean
        pass

    def do_POST(self):
        route = self.path.rstrip("/")
        if route not in ("/v1/chat/completions", "/v1/embeddings"):
            self._send(404, "application/json", b'{"error": {"message": "not found"}}')
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.server.api_key and self.headers.get("Authorization") != f"Bearer {self.server.api_key}":
            self._error(401, "invalid api key (fake)")
            return
        if route == "/v1/embeddings":
            self._embeddings(body)
            return
        self.server.requests.append(body)
        self.server.calls += 1
        k = knobs(body.get("model", ""))
        if self.server.delay_s:
            time.sleep(self.server.delay_s)
        if k.get("ttft"):
            time.sleep(k["ttft"] / 1000.0)
        if k.get("hang"):
            self.server.stopping.wait(600)
            self.close_connection = True
            return
        if self.server.should_fail(body.get("model", ""), k):
            status = k["fail"]
            message = {500: "internal server error (fake)", 429: "rate limit reached (fake)"}[status]
            err = json.dumps({"error": {"message": message, "type": "fake_fault", "code": status}}).encode()
            self._send(status, "application/json", err, {"Retry-After": "0"} if status == 429 else None)
            return
        if k.get("garbage"):
            ctype = "text/event-stream" if body.get("stream") else "application/json"
            payload = b"data: {not json at all\n\n" if body.get("stream") else b"<html>502 Bad Gateway{"
            self._send(200, ctype, payload)
            return
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
        lines = [f"data: {json.dumps(e, ensure_ascii=False)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
        if k.get("halfstream"):  # the first half of the pieces, then the connection drops
            lines = lines[: max(2, len(events) // 2)]
        if not k.get("itl") and not k.get("halfstream"):
            self._send(200, "text/event-stream", b"".join(lines))
            return
        self.send_response(200)  # no Content-Length: the stream ends when the connection closes
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for line in lines:
            if k.get("itl"):
                time.sleep(k["itl"] / 1000.0)
            self.wfile.write(line)
            self.wfile.flush()

    def _embeddings(self, body: dict) -> None:
        model = str(body.get("model", ""))
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._error(400, "input must be a string or a list of strings (token arrays are not supported)")
            return
        k = knobs(model)
        if self.server.should_fail(model, k):
            self._error(k["fail"], "embedding failure (fake)", {"Retry-After": "0"})
            return
        vectors = self.server.embed(texts, model)
        if body.get("encoding_format") == "base64":
            import base64
            import struct

            vectors = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
        tokens = sum(count_tokens(t) for t in texts)
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        out = {"object": "list", "model": model, "data": data, "usage": usage}
        self._send(200, "application/json", json.dumps(out).encode())

    def _error(self, status: int, message: str, headers: dict | None = None) -> None:
        err = json.dumps({"error": {"message": message, "type": "fake_fault", "code": status}}).encode()
        self._send(status, "application/json", err, headers)

    def _send(self, status: int, ctype: str, payload: bytes, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
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
