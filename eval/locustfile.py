"""Locust users for the load test (eval/load_test.py runs it headless; `locust -f eval/locustfile.py` works too).

Each user chats back to back: answerable golden-set questions (half of them streamed), unanswerable ones (the
holding reply must carry a ticket id) and "转人工" handoffs (a ticket too). A response is a failure when it is not
a 200 with an answer, or when an unanswered answer comes without a ticket id. The ticket ids handed out are
written to $KB_LOAD_TICKETS (JSON) when the test stops, so the caller can check each is in the queue database.

Light on purpose: Locust monkeypatches with gevent, so nothing of kb_assistant is imported here.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

from locust import HttpUser, constant, events, task

GOLDEN = Path(__file__).resolve().parent / "datasets" / "golden.jsonl"
_ROWS = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line.strip()]
ANSWERABLE = [r["question"] for r in _ROWS if r.get("answerable")]
UNANSWERABLE = [r["question"] for r in _ROWS if not r.get("answerable")]
HANDOFF = ["转人工", "我的工资条有问题，转人工", "talk to a human about my visa", "人工客服：社保基数怎么改？"]
KB = os.environ.get("KB_LOAD_KB", "default")
THINK_S = float(os.environ.get("KB_LOAD_THINK_S", "0.5"))

tickets: Counter[str] = Counter()  # ticket id -> unanswered answers that named it
unanswered = Counter()  # task name -> unanswered answers (each must carry a ticket id)


def _check(response, answer: dict | None, name: str) -> None:
    if answer is None or "text" not in answer:
        response.failure(f"no answer in the response ({response.status_code})")
    elif not answer.get("answered"):
        unanswered[name] += 1
        if answer.get("ticket_id"):
            tickets[answer["ticket_id"]] += 1
        else:
            response.failure("an unanswered answer without a ticket id")


class ChatUser(HttpUser):
    # a person reads the answer before asking the next question; 0 (--think-s 0) keeps every user's request in
    # flight, which is what a throughput comparison of 1 vs N replicas needs (with 0.5 s, 50 users ask at most
    # 50 / (0.5 + answer time) questions a second, whatever serves them)
    wait_time = constant(THINK_S)

    def ask(self, question: str, name: str, stream: bool = False) -> None:
        body = {"question": question, "kb": KB, "stream": stream}
        with self.client.post("/api/ask", json=body, name=name, catch_response=True, timeout=120) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            if not stream:
                _check(response, response.json(), name)
                return
            answer, event = None, None
            for line in response.text.splitlines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "error":
                    response.failure(f"error event: {line[5:200]}")
                    return
                elif line.startswith("data:") and event == "answer":
                    answer = json.loads(line[5:])
            _check(response, answer, name)

    @task(6)
    def answerable(self):
        stream = random.random() < 0.5
        self.ask(random.choice(ANSWERABLE), "answerable (stream)" if stream else "answerable", stream=stream)

    @task(3)
    def unanswerable(self):
        self.ask(random.choice(UNANSWERABLE), "unanswerable")

    @task(1)
    def handoff(self):
        self.ask(random.choice(HANDOFF), "handoff 转人工")


@events.test_stop.add_listener
def _write_tickets(**_kwargs):
    path = os.environ.get("KB_LOAD_TICKETS")
    if path:
        Path(path).write_text(json.dumps({"tickets": dict(tickets), "unanswered": dict(unanswered)}), encoding="utf-8")
