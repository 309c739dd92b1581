"""Two replicas, one database, one vector server, no shared disk: two real `kb serve` processes with data dirs of
their own, against one real Postgres and one real `chroma run`; `kb ingest` runs in a third process with a third
data dir. Both replicas answer from a new document within seconds of its ingest; after an edit and a re-ingest both
answer the new value (neither serves a stale cached answer); a ticket opened on one is answered with
`kb queue answer` run on the other, and its asker reads the reply through either.

Each step's time is printed (run with -s to see it); the only deadlines are generous timeouts for a step that
never happens.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
QUESTION = "What is the visitor parking code?"
PARKING = "# Parking\n\n## Visitor parking\n\nThe visitor parking code is {code}. Visitors park in garage B2.\n"
LUNCH = "# Lunch\n\n## Canteen\n\nThe canteen on floor 3 serves lunch from 11:30 to 14:00 on weekdays.\n"
STEP_TIMEOUT_S = 120  # a step that has not happened by then never will


@dataclass
class Cluster:
    env: dict[str, str]
    root: Path
    docs: Path
    replicas: dict[str, str] = field(default_factory=dict)  # name → base URL
    data_dirs: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def kb(self, data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """`kb …` as a process of its own on ``data_dir`` (a host with its own disk)."""
        env = {**self.env, "KB_DATA_DIR": str(data_dir)}
        done = subprocess.run(
            [sys.executable, "-m", "kb_assistant.cli", *args], env=env, cwd=self.root, capture_output=True,
            text=True, input=stdin, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    def ingest(self) -> float:
        """Ingest the docs folder from the third process; returns when it finished (time.monotonic())."""
        self.kb(self.root / "ingester", "ingest", str(self.docs), "--kb", "hr")
        return time.monotonic()

    def ask(self, replica: str, question: str = QUESTION) -> dict:
        r = httpx.post(f"{self.replicas[replica]}/api/ask", json={"question": question, "kb": "hr"}, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()

    def until_both_answer(self, needle: str, since: float) -> dict[str, float]:
        """Ask each replica until its answer says ``needle``: seconds from ``since`` per replica."""
        seen: dict[str, float] = {}
        while len(seen) < len(self.replicas):
            for name in self.replicas:
                if name not in seen:
                    answer = self.ask(name)
                    if answer["answered"] and needle in answer["text"]:
                        seen[name] = round(time.monotonic() - since, 2)
            assert time.monotonic() - since < STEP_TIMEOUT_S, f"{needle!r} not answered by every replica: {seen}"
            time.sleep(0.1)
        return seen


def _start_server(env: dict[str, str], data_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    from engines import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb_assistant.cli", "serve", "--port", str(port)],
        env={**env, "KB_DATA_DIR": str(data_dir)}, cwd=data_dir.parent, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 600  # loading the model on a busy machine
    while True:
        assert proc.poll() is None, f"kb serve exited: {log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"kb serve did not become healthy: {log.read_text()[-3000:]}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(postgres_url, tmp_path_factory):
    """Postgres (a schema of this module's own), `chroma run`, the KB's first document ingested by the third
    process, and the two replicas, healthy."""
    from engines import chroma_server
    from sqlalchemy import create_engine

    root = tmp_path_factory.mktemp("replicas")
    schema = "replicas_" + uuid.uuid4().hex[:8]
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in postgres_url else "?"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               KB_DATABASE_URL=f"{postgres_url}{sep}options=-csearch_path%3D{schema}")  # fmt: skip
    procs: list[subprocess.Popen] = []
    try:
        with chroma_server(root / "chroma") as chroma_url:
            env["KB_CHROMA_URL"] = chroma_url
            docs = root / "docs"
            docs.mkdir()
            (docs / "lunch.md").write_text(LUNCH, encoding="utf-8")
            c = Cluster(env=env, root=root, docs=docs)
            started = time.monotonic()
            c.ingest()
            c.timings["first ingest (third process, cold)"] = round(time.monotonic() - started, 2)
            started = time.monotonic()
            logs = {}
            for name in ("a", "b"):
                c.data_dirs[name] = root / f"replica-{name}"
                logs[name] = root / f"replica-{name}.log"
                proc, c.replicas[name] = _start_server(env, c.data_dirs[name], logs[name])
                procs.append(proc)
            for proc, name in zip(procs, c.replicas, strict=True):
                _wait_healthy(proc, c.replicas[name], logs[name])
            c.timings["two replicas started and healthy"] = round(time.monotonic() - started, 2)
            yield c
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.mark.slow
@pytest.mark.timeout(1200)  # starting Postgres, Chroma and two servers (each loads the model) takes a while
def test_two_replicas_serve_one_kb_version_and_share_the_human_queue(cluster):
    c = cluster
    assert {n: c.ask(n, "When does the canteen serve lunch?")["answered"] for n in c.replicas} == {"a": True, "b": True}
    assert c.ask("a")["answered"] is False  # nothing about parking yet

    # a new document, ingested by the third process: both replicas answer from it
    (c.docs / "parking.md").write_text(PARKING.format(code="ZEBRA-42"), encoding="utf-8")
    started = time.monotonic()
    done = c.ingest()
    c.timings["ingest of the new document (third process)"] = round(done - started, 2)
    for name, seconds in c.until_both_answer("ZEBRA-42", done).items():
        c.timings[f"new document answered by replica {name} (s after the ingest ended)"] = seconds
    for name in c.replicas:  # asked again: each serves it from the semantic cache now
        again = c.ask(name)
        assert again["cached"] and "ZEBRA-42" in again["text"], again

    # an edit and a re-ingest: both answer the new value, neither serves its cached answer
    (c.docs / "parking.md").write_text(PARKING.format(code="LION-77"), encoding="utf-8")
    started = time.monotonic()
    done = c.ingest()
    c.timings["re-ingest of the edited document"] = round(done - started, 2)
    for name, seconds in c.until_both_answer("LION-77", done).items():
        c.timings[f"edited value answered by replica {name} (s after the ingest ended)"] = seconds
    for name in c.replicas:
        answer = c.ask(name)
        assert "LION-77" in answer["text"] and "ZEBRA-42" not in answer["text"], answer

    # a ticket opened on replica a, answered on replica b's host, read through either
    started = time.monotonic()
    asked = c.ask("a", "How many parrots live on the roof of building C?")
    assert not asked["answered"] and asked["ticket_id"] and asked["ticket_token"], asked
    c.timings["question escalated on replica a"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    c.kb(c.data_dirs["b"], "queue", "answer", asked["ticket_id"], "Two parrots, Kiwi and Mango.", "--agent", "bob")
    c.timings["ticket answered with kb queue answer on replica b's host"] = round(time.monotonic() - started, 2)
    for name, base in c.replicas.items():
        r = httpx.get(f"{base}/api/tickets/{asked['ticket_id']}", params={"token": asked["ticket_token"]}, timeout=30)
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["status"] == "answered" and view["answer"] == "Two parrots, Kiwi and Mango.", (name, view)
        wrong = httpx.get(f"{base}/api/tickets/{asked['ticket_id']}", params={"token": "not-it"}, timeout=30)
        assert wrong.status_code == 404  # the reply is its asker's only, on either replica

    print("\nreplica test timings (s):")
    for step, seconds in c.timings.items():
        print(f"  {step}: {seconds}")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_thumbs_down_on_one_replica_reaches_the_other_replicas_cache(cluster):
    c = cluster
    question = "On which floor is the canteen?"  # asked nowhere before: neither replica has cached it
    first = c.ask("a", question)
    assert first["answered"]
    from_a = c.ask("b", question)  # the cache is shared: replica b serves the answer replica a stored
    assert from_a["cached"], from_a
    r = httpx.post(f"{c.replicas['a']}/api/feedback", json={"answer_id": first["id"], "rating": "down"}, timeout=30)
    assert r.status_code == 200, r.text
    after = c.ask("b", question)
    assert after["answered"] and not after["cached"], after  # the 👎'd answer left the cache for every replica
