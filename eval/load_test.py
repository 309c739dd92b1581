"""Bounded load test of the HTTP API: N concurrent users for T seconds, each asking questions back to back.

    python -m eval.load_test                        # 20 users, 60 s, against `kb serve` started here
    python -m eval.load_test --url http://127.0.0.1:7860 --users 20 --duration 60

Without --url it starts a fake OpenAI-compatible LLM (eval/fake_llm.py) and `kb serve` in a subprocess on a
free 127.0.0.1 port over --data-dir (the sample KBs are ingested into an empty one), so the whole LLM path
(prompt, streaming, citations) runs. Questions come from the golden set (answerable and not); half the requests
stream (SSE, time to first event recorded). Prints requests, errors, throughput and latency percentiles.
A measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "eval" / "datasets" / "golden.jsonl"


def load_questions() -> list[str]:
    return [json.loads(line)["question"] for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line.strip()]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def user(client, base: str, questions: list[str], stop_at: float, stream_share: float, kb: str, stats: dict):
    rng = random.Random()
    while time.monotonic() < stop_at:
        question = rng.choice(questions)
        stream = rng.random() < stream_share
        body = {"question": question, "kb": kb, "stream": stream}
        start = time.perf_counter()
        try:
            if stream:
                first = None
                async with client.stream("POST", f"{base}/api/ask", json=body) as r:
                    ok = r.status_code == 200
                    final = False
                    async for line in r.aiter_lines():
                        if first is None and line.startswith("data:"):
                            first = time.perf_counter() - start
                        if line.startswith("event: answer"):
                            final = True
                        if line.startswith("event: error"):
                            ok = False
                    ok = ok and final
                if first is not None:
                    stats["ttfb"].append(first)
            else:
                r = await client.post(f"{base}/api/ask", json=body)
                ok = r.status_code == 200 and "text" in r.json()
        except Exception as exc:  # a refused or broken connection is an error of the run, not of the script
            ok = False
            stats["exceptions"].append(f"{type(exc).__name__}: {exc}")
        elapsed = time.perf_counter() - start
        stats["latency"].append(elapsed)
        stats["requests"] += 1
        if not ok:
            stats["errors"] += 1


async def run_load(base: str, users: int, duration: float, stream_share: float, kb: str) -> dict:
    import httpx

    questions = load_questions()
    stats = {"requests": 0, "errors": 0, "latency": [], "ttfb": [], "exceptions": []}
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        stop_at = time.monotonic() + duration
        started = time.perf_counter()
        await asyncio.gather(*(user(client, base, questions, stop_at, stream_share, kb, stats) for _ in range(users)))
        stats["wall"] = time.perf_counter() - started
    return stats


@contextlib.contextmanager
def local_server(data_dir: Path, llm_delay_ms: float):
    from eval.fake_llm import FakeLLM

    llm = FakeLLM(delay_ms=llm_delay_ms).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(
        KB_DATA_DIR=str(data_dir), KB_HOST="127.0.0.1", KB_PORT=str(port), KB_LLM_BASE_URL=llm.base_url,
        KB_LLM_API_KEY="fake", KB_LLM_MODEL="fake", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
    )  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "kb_assistant.cli", "serve"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600  # an empty data dir first ingests the sample KBs
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("kb serve did not start") from None
                time.sleep(1)
        yield base, llm
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        llm.shutdown()


def report(stats: dict, args) -> None:
    lat, ttfb = stats["latency"], stats["ttfb"]
    print(f"users={args.users} duration={args.duration:.0f}s stream_share={args.stream_share} kb={args.kb}")
    rate = stats["requests"] / stats["wall"]
    print(f"requests={stats['requests']} errors={stats['errors']} throughput={rate:.1f} req/s")
    print(
        "latency  p50={:.0f} ms  p95={:.0f} ms  p99={:.0f} ms  max={:.0f} ms  mean={:.0f} ms".format(
            *(1000 * percentile(lat, p) for p in (50, 95, 99, 100)), 1000 * statistics.fmean(lat) if lat else 0
        )
    )
    if ttfb:
        print(f"stream first event  p50={1000 * percentile(ttfb, 50):.0f} ms  p95={1000 * percentile(ttfb, 95):.0f} ms")
    for line in sorted(set(stats["exceptions"]))[:5]:
        print(f"  error: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="A running server; default: start fake LLM + kb serve here.")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds.")
    parser.add_argument("--stream-share", type=float, default=0.5, help="Share of requests with stream=true.")
    parser.add_argument("--kb", default="default")
    parser.add_argument("--data-dir", type=Path, help="Data dir for the local server (default: a temp dir).")
    parser.add_argument("--llm-delay-ms", type=float, default=0.0, help="The fake LLM's latency per call.")
    args = parser.parse_args()
    if args.url:
        stats = asyncio.run(run_load(args.url.rstrip("/"), args.users, args.duration, args.stream_share, args.kb))
        report(stats, args)
        return
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="kb-load-")) / "data"
    with local_server(data_dir, args.llm_delay_ms) as (base, llm):
        print(f"server {base} (fake LLM {llm.base_url}, data {data_dir})", flush=True)
        stats = asyncio.run(run_load(base, args.users, args.duration, args.stream_share, args.kb))
        report(stats, args)
        print(f"fake LLM calls={llm.calls}")
    sys.exit(1 if stats["errors"] else 0)


if __name__ == "__main__":
    main()
