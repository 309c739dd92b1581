"""Bounded load test: Locust (headless, eval/locustfile.py) against `kb serve`, with an ingest in the middle.

    python -m eval.load_test                                  # 50 users, 60 s
    python -m eval.load_test --users 50 --duration 120        # the longer run
    python -m eval.load_test --url http://127.0.0.1:7860      # a server you run (no mid-test ingest)
    python -m eval.load_test --replicas 2 --llm-ms 1000       # 1 replica, then 2, behind nginx: the ratio

Without --url everything runs here, on 127.0.0.1 only: a fake OpenAI-compatible LLM (eval/fake_llm.py) whose
latency is set in its model name (``KB_LLM_MODEL=fake-ttft<ms>``), a `chroma run` server, and `kb serve` over a
fresh data dir (the sample KBs, plus one extra document) with ``KB_CHROMA_URL`` pointing at it. Halfway through, the
extra document changes and a separate `kb ingest` process syncs it: with a Chroma server several processes may
write (the embedded default is single-process). Users mix answerable questions (half streamed), unanswerable ones
(holding reply + ticket) and "转人工". Reports requests, errors, p50/p95 per kind and overall, the ingest's exit code,
and tickets sent (distinct ids in unanswered answers) against tickets stored in the queue database. Exit code 1 on
any error or lost ticket. Bounded by --users and --duration (Locust stops the users; every process has a timeout).

``--replicas N`` starts N `kb serve` processes on one data dir (today's KB state lives there), one `chroma run`,
a throw-away Postgres for the queue (tests/engines.py) and nginx with the compose profile's own config
(docker/nginx.conf, eval/proxy.py) in front; then it runs the same test twice, through nginx each time: with one
replica behind it, then with all N, and prints both and the ratio of their req/s. The semantic cache is off there,
so the second run does the same work as the first instead of serving what the first one cached.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "eval" / "locustfile.py"
DOC_V1 = "# Parking\n\nStaff parking is in garage B, level 2. The parking fee is 150 yuan a month.\n"
DOC_V2 = "# Parking\n\nStaff parking is in garage C, level 1. The parking fee is 120 yuan a month.\n"


@dataclass
class Stack:
    """What `local_stack` started: the replicas' base URLs, the env for `kb` commands, the document to edit."""

    replicas: list[str]
    env: dict
    doc: Path
    data_dir: Path
    database_url: str | None = None
    server_pids: list[int] = field(default_factory=list)  # the replicas' processes, for the CPU account


@dataclass
class LoadReport:
    users: int
    duration: float
    rows: list[dict] = field(default_factory=list)  # Locust's stats per request name, "Aggregated" last
    failures: list[str] = field(default_factory=list)
    ticket_ids: list[str] = field(default_factory=list)
    tickets_sent: int = 0
    tickets_stored: int = 0
    unanswered: int = 0  # unanswered answers returned (each named a ticket)
    requests_recorded: int = 0  # the requests those tickets hold in the queue database
    ingest: str = "not run"
    ingest_rc: int | None = None
    cpu: dict = field(default_factory=dict)  # CPU the phase used: the machine's and each replica's, in cores

    @property
    def total(self) -> dict:
        return self.rows[-1] if self.rows else {"requests": 0, "errors": 0, "p50": 0, "p95": 0, "rps": 0.0}

    @property
    def ok(self) -> bool:
        return (
            self.total["requests"] > 0
            and self.total["errors"] == 0
            and self.tickets_sent == self.tickets_stored
            and self.requests_recorded == self.unanswered
            and self.ingest_rc in (None, 0)
        )

    def lines(self) -> list[str]:
        out = [f"users={self.users} duration={self.duration:.0f}s"]
        out.append(f"{'request':<22} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} {'req/s':>6}")
        for r in self.rows:
            figures = f"{r['requests']:>8} {r['errors']:>6} {r['p50']:>7.0f} {r['p95']:>7.0f} {r['rps']:>6.1f}"
            out.append(f"{r['name']:<22} {figures}")
        out.append(f"mid-test ingest: {self.ingest}")
        out.append(
            f"tickets sent={self.tickets_sent} (in {self.unanswered} unanswered answers) "
            f"stored={self.tickets_stored} lost={self.tickets_sent - self.tickets_stored}; "
            f"requests recorded on them={self.requests_recorded}"
        )
        if self.cpu:
            replicas = ", ".join(f"{c:.2f}" for c in self.cpu["replicas"])
            out.append(
                f"CPU during the run, in cores of {self.cpu['cores']}: machine busy {self.cpu['busy']:.2f}, "
                f"replicas {replicas}, everything else (Locust, nginx, Chroma, Postgres, fake LLM, ingest) "
                f"{self.cpu['busy'] - sum(self.cpu['replicas']):.2f}"
            )
        out += [f"  failure: {f}" for f in self.failures[:10]]
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start (waited for {url})") from None
            time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def local_stack(work: Path, llm_ms: int, replicas: int = 1, cache: bool = True):
    """Fake LLM + `chroma run` + ``replicas`` × `kb serve` on 127.0.0.1 (more than one: on a throw-away Postgres
    queue, one data dir); yields the Stack."""
    from eval.fake_llm import FakeLLM

    llm = FakeLLM().start()
    chroma_port = _free_port()
    chroma_exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    procs: list[subprocess.Popen] = []
    with contextlib.ExitStack() as engines:
        try:
            chroma = subprocess.Popen(
                [chroma_exe, "run", "--path", str(work / "chroma"), "--host", "127.0.0.1", "--port", str(chroma_port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            procs.append(chroma)
            _wait_http(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", chroma, "chroma run", 60)
            env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
            env.update(
                KB_DATA_DIR=str(work / "data"), KB_HOST="127.0.0.1", KB_LLM_BASE_URL=llm.base_url,
                KB_LLM_API_KEY="fake", KB_LLM_MODEL=f"fake-ttft{llm_ms}",
                KB_CHROMA_URL=f"http://127.0.0.1:{chroma_port}", KB_CACHE_ENABLED=str(cache).lower(),
                PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
            )  # fmt: skip
            database_url = None
            if replicas > 1:
                database_url = engines.enter_context(_tests_engines().postgres_server())
                env["KB_DATABASE_URL"] = database_url
            doc = work / "docs" / "parking.md"
            doc.parent.mkdir(parents=True, exist_ok=True)
            doc.write_text(DOC_V1, encoding="utf-8")
            kb = [sys.executable, "-m", "kb_assistant.cli"]
            bases = []
            for n in range(replicas):  # one by one: the first ingests the sample KBs into the empty data dir
                port = _free_port()
                server = subprocess.Popen([*kb, "serve"], env={**env, "KB_PORT": str(port)}, cwd=ROOT)
                procs.append(server)
                bases.append(f"http://127.0.0.1:{port}")
                _wait_http(f"{bases[-1]}/healthz", server, f"kb serve #{n + 1}", 900)
                if n == 0:
                    subprocess.run([*kb, "ingest", str(doc), "--kb", "default"], env=env, cwd=ROOT, check=True,
                                   timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            servers = [p.pid for p in procs[1:]]  # procs[0] is chroma
            yield Stack(bases, env, doc, work / "data", database_url, servers)
        finally:
            for proc in reversed(procs):
                _stop(proc)
            llm.shutdown()


def _tests_engines():
    """tests/engines.py (the test suite's throw-away Postgres), loaded from its file: tests/ is no package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("kb_test_engines", ROOT / "tests" / "engines.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mid_test_ingest(env: dict, doc: Path, after_s: float, report: LoadReport) -> None:
    time.sleep(after_s)
    doc.write_text(DOC_V2 if doc.read_text(encoding="utf-8") == DOC_V1 else DOC_V1, encoding="utf-8")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "kb_assistant.cli", "ingest", str(doc), "--kb", "default"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report.ingest_rc = done.returncode
    report.ingest = (
        f"`kb ingest {doc.name}` (changed) at t={after_s:.0f}s: exit {done.returncode} "
        f"in {time.perf_counter() - start:.1f}s" + (f" — {done.stderr.strip()[-300:]}" if done.returncode else "")
    )


def run_locust(base: str, users: int, duration: float, work: Path, think_s: float = 0.5) -> LoadReport:
    report = LoadReport(users=users, duration=duration)
    prefix = work / "locust"
    tickets_file = work / "tickets.json"
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", base,
        "-u", str(users), "-r", str(users), "-t", f"{int(duration)}s", "--stop-timeout", "60",
        "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    run_env = {
        **os.environ,
        "KB_LOAD_TICKETS": str(tickets_file),
        "KB_LOAD_THINK_S": str(think_s),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(cmd, env=run_env, cwd=ROOT, timeout=duration + 180, capture_output=True, text=True)
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        raise SystemExit(f"locust wrote no stats (exit {done.returncode}): {done.stderr[-2000:]}")
    with stats.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            report.rows.append({
                "name": row["Name"], "requests": int(row["Request Count"]), "errors": int(row["Failure Count"]),
                "p50": float(row["50%"] or 0), "p95": float(row["95%"] or 0), "rps": float(row["Requests/s"] or 0),
            })  # fmt: skip
    failures = Path(f"{prefix}_failures.csv")
    if failures.exists():
        with failures.open(encoding="utf-8") as f:
            report.failures = [f"{r['Name']}: {r['Error']} ×{r['Occurrences']}" for r in csv.DictReader(f)]
    sent = json.loads(tickets_file.read_text(encoding="utf-8")) if tickets_file.exists() else {}
    report.tickets_sent = len(sent.get("tickets", {}))
    report.unanswered = sum(sent.get("unanswered", {}).values())
    report.ticket_ids = list(sent.get("tickets", {}))
    return report


def count_stored(
    data_dir: Path, ticket_ids: list[str], database_url: str | None = None, since: datetime | None = None
) -> tuple[int, int]:
    """How many of ``ticket_ids`` are in the server's queue database, and how many requests they hold (a repeat
    of an open question joins its ticket as one more request), counting those made ``since`` (UTC) when given."""
    from kb_assistant.errors import KBError
    from kb_assistant.queue.store import TicketQueue
    from kb_assistant.settings import Settings

    queue = TicketQueue(Settings(data_dir=data_dir, database_url=database_url))
    stored = recorded = 0
    for tid in ticket_ids:
        try:
            made = [r.created_at.replace(tzinfo=r.created_at.tzinfo or UTC) for r in queue.get(tid).requests]
            recorded += sum(1 for t in made if since is None or t >= since)
            stored += 1
        except KBError:
            pass
    return stored, recorded


def run(users: int, duration: float, llm_ms: int, work: Path | None = None, think_s: float = 0.5) -> LoadReport:
    """The whole local run (fake LLM, chroma, kb serve, locust, mid-test ingest); the report."""
    work = work or Path(tempfile.mkdtemp(prefix="kb-load-"))
    with local_stack(work, llm_ms) as stack:
        print(f"server {stack.replicas[0]} (data {stack.data_dir}, fake LLM model fake-ttft{llm_ms})", flush=True)
        return _phase(stack, stack.replicas[0], users, duration, work, think_s)


def _phase(stack: Stack, base: str, users: int, duration: float, work: Path, think_s: float = 0.5) -> LoadReport:
    """Locust against ``base`` with the mid-test ingest; tickets counted in the stack's queue database."""
    holder = LoadReport(users=users, duration=duration)
    started = datetime.now(UTC)  # a later run's tickets may be earlier ones reopened: count its requests only
    ingest = threading.Thread(target=_mid_test_ingest, args=(stack.env, stack.doc, duration / 2, holder), daemon=True)
    ingest.start()
    before = _cpu_seconds(stack.server_pids)
    report = run_locust(base, users, duration, work, think_s)
    report.cpu = _cpu_used(before, _cpu_seconds(stack.server_pids))
    ingest.join(timeout=600)
    report.ingest, report.ingest_rc = holder.ingest, holder.ingest_rc
    stored = count_stored(stack.data_dir, report.ticket_ids, stack.database_url, since=started)
    report.tickets_stored, report.requests_recorded = stored
    return report


def _cpu_seconds(pids: list[int]) -> dict:
    """The machine's busy CPU seconds and each process's (with its children), now."""
    import psutil

    def of(pid: int) -> float:
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
            return sum(sum(p.cpu_times()[:2]) for p in procs if p.is_running())
        except psutil.Error:
            return 0.0

    total = psutil.cpu_times()
    return {"t": time.monotonic(), "busy": sum(total) - total.idle - getattr(total, "iowait", 0.0),
            "procs": [of(pid) for pid in pids]}  # fmt: skip


def _cpu_used(before: dict, after: dict) -> dict:
    """Average cores used between two ``_cpu_seconds`` snapshots: the machine's, and each replica's."""
    import psutil

    wall = max(after["t"] - before["t"], 1e-9)
    return {
        "cores": psutil.cpu_count(),
        "busy": (after["busy"] - before["busy"]) / wall,
        "replicas": [(b - a) / wall for a, b in zip(before["procs"], after["procs"], strict=True)],
    }


def run_replicas(
    users: int, duration: float, llm_ms: int, replicas: int, work: Path | None = None, think_s: float = 0.5
) -> dict[int, LoadReport]:
    """One stack of ``replicas`` servers; the test through nginx with one of them behind it, then with all."""
    from eval.proxy import nginx_proxy

    work = work or Path(tempfile.mkdtemp(prefix="kb-load-"))
    reports: dict[int, LoadReport] = {}
    with local_stack(work, llm_ms, replicas=replicas, cache=False) as stack:
        what = f"queue {stack.database_url}, fake LLM model fake-ttft{llm_ms}, semantic cache off"
        print(f"{replicas} replicas {stack.replicas} (data {stack.data_dir}, {what})", flush=True)
        for n in (1, replicas):
            phase = work / f"replicas-{n}"
            phase.mkdir(parents=True, exist_ok=True)
            upstreams = [url.removeprefix("http://") for url in stack.replicas[:n]]
            with nginx_proxy(upstreams, _free_port(), phase / "nginx") as base:
                reports[n] = _phase(stack, base, users, duration, phase, think_s)
            print(f"\n--- {n} replica(s) behind nginx\n" + "\n".join(reports[n].lines()), flush=True)
    return reports


def comparison(reports: dict[int, LoadReport]) -> list[str]:
    """One line per replica count, then the req/s ratio of the most replicas to one."""
    one, many = reports[min(reports)], reports[max(reports)]
    out = [f"{'replicas':>8} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} {'req/s':>6}  tickets"]
    for n, r in sorted(reports.items()):
        t = r.total
        figures = f"{t['requests']:>8} {t['errors']:>6} {t['p50']:>7.0f} {t['p95']:>7.0f} {t['rps']:>6.1f}"
        out.append(f"{n:>8} {figures}  {r.tickets_sent} sent, {r.tickets_stored} stored")
    ratio = many.total["rps"] / max(one.total["rps"], 1e-9)
    p95 = f"p95 {many.total['p95']:.0f} ms vs {one.total['p95']:.0f} ms"
    out.append(f"req/s ratio, {max(reports)} replicas vs 1: {ratio:.2f}x ({p95})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="A running server (no mid-test ingest; tickets are not checked).")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds.")
    parser.add_argument("--llm-ms", type=int, default=200, help="The fake LLM's latency per call (model fake-ttftMS).")
    parser.add_argument(
        "--think-s", type=float, default=0.5,
        help="Each user's pause between questions; 0 keeps all users' requests in flight (compare replicas so).",
    )  # fmt: skip
    parser.add_argument("--work-dir", type=Path, help="Where data, Chroma and Locust's CSVs go (default: a temp dir).")
    parser.add_argument(
        "--replicas", type=int, default=1,
        help="N > 1: N `kb serve` on a Postgres queue behind nginx; runs with 1 replica, then N, and prints the ratio.",
    )  # fmt: skip
    args = parser.parse_args()
    if args.replicas > 1 and not args.url:
        reports = run_replicas(args.users, args.duration, args.llm_ms, args.replicas, args.work_dir, args.think_s)
        print("\n" + "\n".join(comparison(reports)))
        sys.exit(0 if all(r.ok for r in reports.values()) else 1)
    if args.url:
        work = args.work_dir or Path(tempfile.mkdtemp(prefix="kb-load-"))
        report = run_locust(args.url.rstrip("/"), args.users, args.duration, work, args.think_s)
        # not checked here: the queue database is the server's
        report.tickets_stored, report.requests_recorded = report.tickets_sent, report.unanswered
        print("(tickets stored are not checked against a server started elsewhere)")
    else:
        report = run(args.users, args.duration, args.llm_ms, args.work_dir, args.think_s)
    print("\n".join(report.lines()))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
