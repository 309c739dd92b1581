"""Prometheus metrics for the server, written in the text exposition format (no client library needed).

Requests by endpoint and status; per-stage latency histograms from ``Answer.timings_ms``; answers, cache hits,
escalations and tokens from each Answer; LLM failures, fallbacks and the circuit breaker from the assistant's
``LLMHealth``.
"""

from __future__ import annotations

import threading
from collections import defaultdict

from kb_assistant.schema import Answer

# Seconds. Stages run from ~1 ms (rerank) to seconds (an LLM answer).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    def __init__(self):
        self.counts = [0] * len(BUCKETS)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1


class Metrics:
    def __init__(self, llm_health=None):
        self.llm_health = llm_health  # kb_assistant.answer.llm.LLMHealth: counts kept where the LLM is called
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.request_seconds: dict[str, Histogram] = defaultdict(Histogram)
        self.stage_seconds: dict[str, Histogram] = defaultdict(Histogram)
        self.answers: dict[tuple[str, str], int] = defaultdict(int)
        self.cache_hits: dict[str, int] = defaultdict(int)
        self.escalations: dict[tuple[str, str], int] = defaultdict(int)
        self.tokens: dict[tuple[str, str], int] = defaultdict(int)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, method, status)] += 1
            self.request_seconds[endpoint].observe(seconds)

    def observe_answer(self, answer: Answer) -> None:
        with self._lock:
            kb = answer.kb
            self.answers[(kb, "true" if answer.answered else "false")] += 1
            for stage, ms in answer.timings_ms.items():
                self.stage_seconds[stage].observe(ms / 1000.0)
            if answer.cached:
                self.cache_hits[kb] += 1
            if not answer.answered:
                self.escalations[(kb, answer.escalation_reason or "unknown")] += 1
            if answer.usage is not None:
                self.tokens[(kb, "prompt")] += answer.usage.prompt_tokens
                self.tokens[(kb, "completion")] += answer.usage.completion_tokens

    def render(self) -> str:
        out: list[str] = []
        with self._lock:
            _counter(
                out,
                "kb_http_requests_total",
                "HTTP requests by endpoint, method and status.",
                {(("endpoint", e), ("method", m), ("status", str(s))): n for (e, m, s), n in self.requests.items()},
            )
            _histograms(
                out,
                "kb_http_request_duration_seconds",
                "HTTP request duration by endpoint.",
                "endpoint",
                self.request_seconds,
            )
            _histograms(
                out,
                "kb_stage_duration_seconds",
                "Pipeline stage latency (Answer.timings_ms).",
                "stage",
                self.stage_seconds,
            )
            _counter(
                out,
                "kb_answers_total",
                "Answers by knowledge base and whether the KB answered.",
                {(("kb", kb), ("answered", a)): n for (kb, a), n in self.answers.items()},
            )
            _counter(
                out,
                "kb_cache_hits_total",
                "Answers served from the semantic cache.",
                {(("kb", kb),): n for kb, n in self.cache_hits.items()},
            )
            _counter(
                out,
                "kb_escalations_total",
                "Questions the KB did not answer (holding reply), by reason.",
                {(("kb", kb), ("reason", r)): n for (kb, r), n in self.escalations.items()},
            )
            _counter(
                out,
                "kb_llm_tokens_total",
                "LLM tokens by kind (prompt, completion).",
                {(("kb", kb), ("kind", k)): n for (kb, k), n in self.tokens.items()},
            )
        if self.llm_health is not None:
            llm = self.llm_health.snapshot()
            _counter(
                out,
                "kb_llm_failures_total",
                "Failed LLM calls (each attempt) by kind: connect, timeout, server_error, rate_limited, bad_response, "
                "incomplete_stream, client_error; circuit_open = a call skipped while the breaker is open.",
                {(("kind", k),): n for k, n in llm["failures"].items()},
            )
            _counter(
                out,
                "kb_llm_fallbacks_total",
                "Questions the LLM could not serve, by what served them: extractive, holding_reply, topic_carryover "
                "(the follow-up condensed without the LLM).",
                {(("to", k),): n for k, n in llm["fallbacks"].items()},
            )
            out += [
                "# HELP kb_llm_circuit_open 1 while the LLM circuit breaker is open (the LLM is not called).",
                "# TYPE kb_llm_circuit_open gauge",
                f"kb_llm_circuit_open {int(llm['open'])}",
            ]
        return "\n".join(out) + "\n"


def _labels(pairs) -> str:
    if not pairs:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _counter(out: list[str], name: str, help_: str, series: dict) -> None:
    out += [f"# HELP {name} {help_}", f"# TYPE {name} counter"]
    for labels, value in sorted(series.items()):
        out.append(f"{name}{_labels(labels)} {value}")


def _histograms(out: list[str], name: str, help_: str, label: str, series: dict[str, Histogram]) -> None:
    out += [f"# HELP {name} {help_}", f"# TYPE {name} histogram"]
    for key, h in sorted(series.items()):
        for bound, count in zip(BUCKETS, h.counts, strict=True):
            out.append(f"{name}_bucket{_labels([(label, key), ('le', repr(bound))])} {count}")
        out.append(f"{name}_bucket{_labels([(label, key), ('le', '+Inf')])} {h.total}")
        out.append(f"{name}_sum{_labels([(label, key)])} {h.sum:.6f}")
        out.append(f"{name}_count{_labels([(label, key)])} {h.total}")
