"""The bounded load test, briefly: Locust (headless) drives 50 concurrent chats against a real `kb serve` with a
fake LLM (latency in its model name) and a real `chroma run`, while a separate `kb ingest` syncs a changed file.
Every process is on 127.0.0.1 and bounded in time; `python -m eval.load_test --users 50 --duration 120` runs longer.
The same with two replicas behind nginx on a Postgres queue, one replica first: `--replicas 2`.
"""

from __future__ import annotations

import pytest

from eval.load_test import run


@pytest.mark.slow
@pytest.mark.timeout(1200)  # starting the stack (the sample KBs are ingested) and draining the users take a while
def test_fifty_concurrent_chats_with_an_ingest_in_the_middle_get_no_errors_and_lose_no_ticket(tmp_path):
    report = run(users=50, duration=20, llm_ms=200, work=tmp_path)
    print("\n".join(report.lines()))  # the figures, for the CI log

    names = {r["name"] for r in report.rows}
    assert {"answerable", "answerable (stream)", "unanswerable", "handoff 转人工", "Aggregated"} <= names
    assert report.total["requests"] > 0 and report.total["errors"] == 0, report.failures
    assert report.ingest_rc == 0, report.ingest  # the changed file was synced while the users chatted
    assert report.tickets_sent > 0 and report.unanswered >= report.tickets_sent  # tickets handed out …
    assert report.tickets_stored == report.tickets_sent  # … every one of them in the queue database
    assert report.requests_recorded == report.unanswered  # … holding every unanswered request


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_two_replicas_behind_nginx_on_one_postgres_queue_get_no_errors_and_lose_no_ticket(tmp_path):
    """`--replicas 2`, briefly: two `kb serve` on one Chroma server and one Postgres queue, behind nginx running
    the compose profile's config; the test runs with one replica behind it, then both (speed is the benchmark's
    business: `python -m eval.load_test --replicas 2 --llm-ms 1000`, README)."""
    from eval.load_test import comparison, run_replicas

    reports = run_replicas(users=20, duration=15, llm_ms=200, replicas=2, work=tmp_path)
    print("\n".join(comparison(reports)))

    assert sorted(reports) == [1, 2]
    for n, report in reports.items():
        assert report.total["requests"] > 0 and report.total["errors"] == 0, (n, report.failures)
        assert report.ingest_rc == 0, report.ingest
        assert report.tickets_sent > 0 and report.tickets_stored == report.tickets_sent, n
        assert report.requests_recorded == report.unanswered, n  # this run's requests, not the earlier run's
