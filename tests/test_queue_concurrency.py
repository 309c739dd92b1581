"""50 escalations at once, from threads of this process and from other processes, into one SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from kb_assistant.queue.store import AnswerRecord, TicketQueue
from kb_assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PROCESSES, THREADS_EACH, LOCAL_THREADS = 5, 5, 25  # 5 x 5 from other processes + 25 here = 50

WORKER = r"""
import sys, threading, time
from pathlib import Path
from kb_assistant.queue.store import AnswerRecord, TicketQueue
from kb_assistant.settings import Settings

data_dir, go, proc, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
queue = TicketQueue(Settings(data_dir=data_dir))
queue.available()  # migrate (races with the other processes' start-up: serialised by the database)
(go.parent / f"ready-{proc}").touch()
ids = []
def escalate(i):
    while not go.exists():
        time.sleep(0.005)
    q = f"process {proc} thread {i}: where is the form?"
    ids.append(queue.record(AnswerRecord(id=f"p{proc}t{i}", kb="default", question=q, standalone_question=q,
        language="en", text="hold", answered=False, confidence=0.1, reason="low_confidence", session_id=f"p{proc}")))
threads = [threading.Thread(target=escalate, args=(i,)) for i in range(n)]
[t.start() for t in threads]
[t.join() for t in threads]
print(" ".join(ids))
"""


def test_fifty_concurrent_escalations_from_threads_and_processes_make_exactly_fifty_tickets(tmp_path):
    data_dir, go = tmp_path / "data", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(data_dir), str(go), str(p), str(THREADS_EACH)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for p in range(PROCESSES)
    ]  # fmt: skip
    queue = TicketQueue(Settings(data_dir=data_dir))
    local_ids: list[str] = []

    def escalate(i: int) -> None:
        while not go.exists():
            time.sleep(0.005)
        q = f"local thread {i}: where is the form?"
        local_ids.append(queue.record(AnswerRecord(
            id=f"local{i}", kb="default", question=q, standalone_question=q, language="en", text="hold",
            answered=False, confidence=0.1, reason="low_confidence", session_id="local")))  # fmt: skip

    threads = [threading.Thread(target=escalate, args=(i,)) for i in range(LOCAL_THREADS)]
    for t in threads:
        t.start()
    deadline = time.time() + 120
    while len(list(tmp_path.glob("ready-*"))) < PROCESSES and time.time() < deadline:
        time.sleep(0.02)  # every process started, migrated and waiting at the line
    go.touch()
    for t in threads:
        t.join()
    remote_ids = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        remote_ids += out.split()

    all_ids = local_ids + remote_ids
    assert len(all_ids) == 50 and len(set(all_ids)) == 50  # every escalation got its own ticket id
    assert all(i.startswith("T-") for i in all_ids)  # none had to wait in the spool
    assert queue.count_tickets() == 50
    tickets = queue.list_tickets(status="all")
    assert len({t.question for t in tickets}) == 50 and all(len(t.requests) == 1 for t in tickets)
    assert sorted(t.id for t in tickets) == list(range(1, 51))


def test_the_same_question_asked_by_twenty_threads_at_once_opens_one_ticket(tmp_path):
    queue = TicketQueue(Settings(data_dir=tmp_path / "data"))
    queue.available()
    barrier, ids = threading.Barrier(20), []

    def escalate(i: int) -> None:
        barrier.wait()
        q = "Where is the visa form?"
        ids.append(queue.record(AnswerRecord(
            id=f"same{i}", kb="default", question=q, standalone_question=q, language="en", text="hold",
            answered=False, confidence=0.1, reason="low_confidence", session_id=f"s{i}")))  # fmt: skip

    threads = [threading.Thread(target=escalate, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(ids) == {"T-000001"} and len(queue.get("T-000001").requests) == 20
