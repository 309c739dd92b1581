"""LLM answers through any OpenAI-compatible endpoint (langchain-openai), with token usage kept.

The rules are the system message; the passages travel in the user message as delimited, numbered data (numbered
by us: any ``[n]`` a document writes itself is neutralised, so the prompt never holds two ``[2]``s). The reply
``NOT_IN_CONTEXT`` is the structured signal that the passages do not hold the answer.

A failing endpoint never fails the question: ``LLMClient`` bounds every call by the question's ``LLMBudget``
(``KB_LLM_TIMEOUT_S``), retries with backoff while time is left, and ``LLMHealth`` opens a circuit breaker after
``KB_LLM_BREAKER_THRESHOLD`` failed questions in a row. What is left is ``LLMUnavailable``, on which the
assistant answers extractively or with the holding reply.

The reply is read whole before anyone sees it (``grounding.ground`` then keeps only what the passages support),
so no user ever sees text that is then rejected.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

from kb_assistant.answer import Draft, load_prompt
from kb_assistant.answer.grounding import ground
from kb_assistant.schema import Candidate, Usage
from kb_assistant.settings import Settings

NOT_FOUND = "NOT_IN_CONTEXT"
log = logging.getLogger("kb_assistant.llm")

# Failure kinds (the ``kind`` label of kb_llm_failures_total) and which of them a retry may cure.
RETRYABLE = frozenset(["connect", "timeout", "server_error", "rate_limited", "incomplete_stream"])
MIN_ATTEMPT_S = 0.2  # no retry is started with less time than this left


class LLMError(RuntimeError):
    pass


class LLMUnavailable(LLMError):
    """The LLM gave no usable reply in time (``kind`` says why); the question is answered without it."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class _AttemptFailed(Exception):
    def __init__(self, kind: str, detail: str, retry_after_s: float | None = None):
        super().__init__(detail)
        self.kind, self.detail, self.retry_after_s = kind, detail, retry_after_s


def make_chat_model(settings: Settings):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key or "not-needed",
        model=settings.llm_model,
        temperature=settings.llm_temperature,
        timeout=settings.llm_timeout_s,  # ends calls the deadline gave up on; the deadline itself is LLMClient's
        max_retries=0,  # LLMClient retries, within the question's deadline
        stream_usage=True,
    )


# --- health: failure counts and the circuit breaker ---------------------------------------------------------
class LLMHealth:
    """One endpoint's failure counts and circuit breaker, shared by the condenser and the answerer.

    The breaker opens after ``threshold`` failed calls in a row (each after its retries) and stays open for
    ``cooldown_s``; then calls are tried again, and the first failure opens it again."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.threshold, self.cooldown_s, self.clock = threshold, cooldown_s, clock
        self._lock = threading.Lock()
        self.failures: dict[str, int] = defaultdict(int)  # per failed attempt, by kind
        self.fallbacks: dict[str, int] = defaultdict(int)  # per question, by what answered instead
        self.consecutive = 0
        self.open_until = 0.0

    @classmethod
    def for_settings(cls, settings: Settings) -> LLMHealth:
        return cls(settings.llm_breaker_threshold, settings.llm_breaker_cooldown_s)

    @property
    def is_open(self) -> bool:
        return self.clock() < self.open_until

    def count_failure(self, kind: str) -> None:
        with self._lock:
            self.failures[kind] += 1

    def count_fallback(self, to: str) -> None:
        with self._lock:
            self.fallbacks[to] += 1

    def call_failed(self) -> None:
        with self._lock:
            self.consecutive += 1
            if self.consecutive >= self.threshold:
                self.open_until = self.clock() + self.cooldown_s

    def call_succeeded(self) -> None:
        with self._lock:
            self.consecutive, self.open_until = 0, 0.0

    def snapshot(self) -> dict:
        with self._lock:
            return {"failures": dict(self.failures), "fallbacks": dict(self.fallbacks), "open": self.is_open}


# --- the client: deadline, retries, breaker ---------------------------------------------------------------------
class LLMBudget:
    """One question's time for the LLM (KB_LLM_TIMEOUT_S), condense and answer together. The clock starts at
    the first LLM call, so retrieval on a busy machine does not eat the LLM's time."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._deadline: float | None = None

    def deadline(self, cap_s: float | None = None) -> float:
        """time.monotonic() by which the LLM must have replied; ``cap_s``: at most this much from now."""
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self.seconds
        return self._deadline if cap_s is None else min(self._deadline, now + cap_s)


class LLMClient:
    """Calls a LangChain chat model within a deadline (time.monotonic()), retrying with backoff."""

    def __init__(self, chat_model, health: LLMHealth, *, max_retries: int = 2, backoff_s: float = 0.25):
        self.chat_model, self.health = chat_model, health
        self.max_retries, self.backoff_s = max_retries, backoff_s

    @classmethod
    def for_settings(cls, chat_model, health: LLMHealth, settings: Settings) -> LLMClient:
        return cls(chat_model, health, max_retries=settings.llm_max_retries, backoff_s=settings.llm_retry_backoff_s)

    @property
    def endpoint(self) -> str:
        return str(getattr(self.chat_model, "openai_api_base", "") or "the LLM endpoint")

    def stream_text(self, messages, deadline: float) -> tuple[str, Usage]:
        """The whole streamed reply and its token usage; raises LLMUnavailable."""
        return self._call(lambda: self._attempt(messages, deadline, stream=True), deadline)

    def invoke_text(self, prompt, deadline: float) -> str:
        return self._call(lambda: self._attempt(prompt, deadline, stream=False), deadline)[0]

    def _call(self, attempt: Callable[[], tuple[str, Usage]], deadline: float) -> tuple[str, Usage]:
        if self.health.is_open:
            self.health.count_failure("circuit_open")
            raise LLMUnavailable("circuit_open", f"{self.endpoint} failed repeatedly: not called for a while")
        for n in range(self.max_retries + 1):
            try:
                result = attempt()
            except _AttemptFailed as failed:
                self.health.count_failure(failed.kind)
                wait = self.backoff_s * (2**n) * random.uniform(0.5, 1.0)
                if failed.retry_after_s is not None:
                    wait = max(wait, failed.retry_after_s)
                time_left = deadline - time.monotonic()
                if failed.kind in RETRYABLE and n < self.max_retries and wait + MIN_ATTEMPT_S < time_left:
                    time.sleep(wait)
                    continue
                self.health.call_failed()
                message = f"the LLM endpoint {self.endpoint} failed ({failed.kind}): {failed.detail}"
                log.warning("%s; answering without it", message)
                raise LLMUnavailable(failed.kind, message) from None
            self.health.call_succeeded()
            return result
        raise AssertionError("unreachable")  # the loop returns or raises

    def _attempt(self, messages, deadline: float, stream: bool) -> tuple[str, Usage]:
        """One call, read in a worker thread so the deadline holds however the endpoint misbehaves (a hung
        socket keeps only that thread, until the model's own timeout ends it)."""
        items: queue.Queue = queue.Queue()
        abandoned = threading.Event()

        def produce():
            try:
                if stream:
                    for chunk in self.chat_model.stream(messages):
                        if abandoned.is_set():
                            return
                        items.put(("chunk", chunk))
                else:
                    items.put(("chunk", self.chat_model.invoke(messages)))
                items.put(("end", None))
            except Exception as exc:  # handed to the caller's thread
                items.put(("error", exc))

        threading.Thread(target=produce, name="kb-llm-call", daemon=True).start()
        text, usage, finished = "", Usage(), not stream
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise queue.Empty
                what, item = items.get(timeout=left)
            except queue.Empty:
                abandoned.set()
                raise _AttemptFailed("timeout", "no complete reply within KB_LLM_TIMEOUT_S") from None
            if what == "error":
                raise _classify(item)
            if what == "end":
                break
            if item.usage_metadata:
                usage.prompt_tokens += item.usage_metadata.get("input_tokens", 0)
                usage.completion_tokens += item.usage_metadata.get("output_tokens", 0)
            text += item.content if isinstance(item.content, str) else ""
            finished = finished or bool((item.response_metadata or {}).get("finish_reason"))
        if not finished:  # the connection closed mid-reply: what came may be half a sentence
            raise _AttemptFailed("incomplete_stream", "the stream ended without a finish_reason")
        return text, usage


def _classify(exc: Exception) -> _AttemptFailed:
    import openai

    detail = f"{type(exc).__name__}: {str(exc)[:200]}"
    if isinstance(exc, openai.APITimeoutError):
        return _AttemptFailed("timeout", detail)
    if isinstance(exc, openai.APIConnectionError):
        return _AttemptFailed("connect", detail)
    if isinstance(exc, openai.RateLimitError):
        return _AttemptFailed("rate_limited", detail, _retry_after(exc))
    if isinstance(exc, openai.APIStatusError):
        return _AttemptFailed("server_error" if exc.status_code >= 500 else "client_error", detail)
    name = type(exc).__name__
    if name in ("RemoteProtocolError", "ReadError", "ConnectError", "ReadTimeout"):  # httpx, unwrapped
        return _AttemptFailed("incomplete_stream" if name != "ConnectError" else "connect", detail)
    return _AttemptFailed("bad_response", detail)  # not JSON, not the OpenAI shape, …


def _retry_after(exc) -> float | None:
    try:
        return max(0.0, float(exc.response.headers.get("retry-after")))
    except (AttributeError, TypeError, ValueError):
        return None


# --- the prompt ------------------------------------------------------------------------------------------------
_MARKER = re.compile(r"[\[［【]\s*(\d{1,4})\s*[\]］】]")
_TAG = re.compile(r"<(\s*/?\s*passages?\b)", re.IGNORECASE)


def neutralise(text: str) -> str:
    """Text from a document or a user, made unable to pose as our structure: its ``[n]`` markers become
    ``(n)`` and ``<passage>`` tags lose their angle bracket."""
    return _TAG.sub(r"‹\1", _MARKER.sub(r"(\1)", text or ""))


def format_passages(passages: list[Candidate]) -> str:
    blocks = []
    for n, cand in enumerate(passages, start=1):
        c = cand.chunk
        where = " / ".join(x for x in (c.source, c.section, f"p. {c.page}" if c.page else "") if x)
        body = f"Q: {c.question}\nA: {c.text}" if c.kind == "faq" else c.text
        blocks.append(f'<passage n="{n}">\n[{n}] ({neutralise(where)})\n{neutralise(body)}\n</passage>')
    return "\n\n".join(blocks)


class LLMAnswerer:
    def __init__(self, chat_model, *, client: LLMClient | None = None, budget: LLMBudget | None = None):
        self.chat_model = chat_model
        self.client = client or LLMClient(chat_model, LLMHealth())
        self.budget = budget or LLMBudget(60.0)

    def messages(self, question: str, passages: list[Candidate], lang: str) -> list[tuple[str, str]]:
        user = (
            load_prompt("passages", lang)
            .replace("{passages}", format_passages(passages))
            .replace("{question}", neutralise(question))
        )
        return [("system", load_prompt("answer", lang)), ("human", user)]

    def generate(self, question: str, passages: list[Candidate], lang: str) -> Iterator[str | Draft]:
        """One Draft (no deltas: the reply is judged whole); raises LLMUnavailable."""
        text, usage = self.client.stream_text(self.messages(question, passages, lang), self.budget.deadline())
        if not text.strip() or NOT_FOUND in text:
            yield Draft(text="", found=False, usage=usage, reason="not_in_context")
            return
        kept, reason = ground(text.strip(), passages)
        yield Draft(text=kept, found=reason is None, usage=usage, reason=reason)
