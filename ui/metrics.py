"""Prometheus metrics for the server, exposed with prometheus-client (``generate_latest`` on a registry of our own).

Requests by endpoint and status; per-stage latency histograms from ``Answer.timings_ms``; answers, cache hits,
escalations and tokens from each Answer; LLM failures, fallbacks and the circuit breaker read at scrape time from
the assistant's ``LLMHealth`` by a custom collector (the counts stay where the LLM is called).

Each ``Metrics`` has its own ``CollectorRegistry`` (never the global one), so two servers or tests in one process
do not collide. The exposed sample names are the ones we had before the library: counters are named with
``_total`` (the library keeps it as the sample name), and ``_created`` samples are turned off
(``disable_created_metrics()``, process-wide) since we never exposed them.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kb_assistant.schema import Answer

__all__ = ["BUCKETS", "LLMHealthCollector", "Metrics"]

# Seconds. Stages run from ~1 ms (rerank) to seconds (an LLM answer).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

disable_created_metrics()  # no <name>_created samples: the series stay the ones dashboards already know


class LLMHealthCollector(Collector):
    """kb_llm_failures_total, kb_llm_fallbacks_total and kb_llm_circuit_open from ``LLMHealth.snapshot()``."""

    def __init__(self, llm_health):
        self.llm_health = llm_health  # kb_assistant.answer.llm.LLMHealth: counts kept where the LLM is called

    def collect(self) -> Iterator[Metric]:
        llm = self.llm_health.snapshot()
        failures = CounterMetricFamily(
            "kb_llm_failures_total",
            "Failed LLM calls (each attempt) by kind: connect, timeout, server_error, rate_limited, bad_response, "
            "incomplete_stream, client_error; circuit_open = a call skipped while the breaker is open.",
            labels=["kind"],
        )
        for kind, n in sorted(llm["failures"].items()):
            failures.add_metric([kind], n)
        yield failures
        fallbacks = CounterMetricFamily(
            "kb_llm_fallbacks_total",
            "Questions the LLM could not serve, by what served them: extractive, holding_reply, topic_carryover "
            "(the follow-up condensed without the LLM).",
            labels=["to"],
        )
        for to, n in sorted(llm["fallbacks"].items()):
            fallbacks.add_metric([to], n)
        yield fallbacks
        yield GaugeMetricFamily(
            "kb_llm_circuit_open",
            "1 while the LLM circuit breaker is open (the LLM is not called).",
            value=int(llm["open"]),
        )


class Metrics:
    def __init__(self, llm_health=None):
        self.llm_health = llm_health
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "kb_http_requests_total",
            "HTTP requests by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "kb_http_request_duration_seconds",
            "HTTP request duration by endpoint.",
            ["endpoint"],
            buckets=BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "kb_stage_duration_seconds",
            "Pipeline stage latency (Answer.timings_ms).",
            ["stage"],
            buckets=BUCKETS,
            registry=r,
        )
        self.answers = Counter(
            "kb_answers_total",
            "Answers by knowledge base and whether the KB answered.",
            ["kb", "answered"],
            registry=r,
        )
        self.cache_hits = Counter("kb_cache_hits_total", "Answers served from the semantic cache.", ["kb"], registry=r)
        self.escalations = Counter(
            "kb_escalations_total",
            "Questions the KB did not answer (holding reply), by reason.",
            ["kb", "reason"],
            registry=r,
        )
        self.tokens = Counter(
            "kb_llm_tokens_total", "LLM tokens by kind (prompt, completion).", ["kb", "kind"], registry=r
        )
        if llm_health is not None:
            r.register(LLMHealthCollector(llm_health))

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.request_seconds.labels(endpoint).observe(seconds)

    def observe_answer(self, answer: Answer) -> None:
        kb = answer.kb
        self.answers.labels(kb, "true" if answer.answered else "false").inc()
        for stage, ms in answer.timings_ms.items():
            self.stage_seconds.labels(stage).observe(ms / 1000.0)
        if answer.cached:
            self.cache_hits.labels(kb).inc()
        if not answer.answered:
            self.escalations.labels(kb, answer.escalation_reason or "unknown").inc()
        if answer.usage is not None:
            self.tokens.labels(kb, "prompt").inc(answer.usage.prompt_tokens)
            self.tokens.labels(kb, "completion").inc(answer.usage.completion_tokens)

    def render(self) -> bytes:
        """The Prometheus text exposition (serve it as prometheus_client's ``CONTENT_TYPE_LATEST``)."""
        return generate_latest(self.registry)
