"""The LLM-fault matrix: one question through ``Assistant.ask`` against each fault of the fake LLM, timed.

    python -m eval.llm_faults [--timeout-s 2] [--question "How many days of sick leave do I get?"]

Each row: the fault, the outcome (the LLM's answer, the extractive fallback, the holding reply + ticket, or the
error that reached the user), the escalation reason and the seconds to answer. "refused" is a closed port.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

FAULTS = ["ok", "ttft800-itl40", "refused", "hang", "fail500", "fail429", "garbage", "halfstream", "cite9", "inject"]


def closed_port_url() -> str:
    with socket.socket() as s:  # free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def run_matrix(data_dir: Path, question: str, timeout_s: float, embeddings=None) -> list[dict]:
    from eval.fake_llm import FakeLLM
    from kb_assistant.assistant import Assistant
    from kb_assistant.retrieval import hybrid_search
    from kb_assistant.settings import Settings

    llm = FakeLLM().start()
    rows = []
    try:
        for fault in FAULTS:
            url = closed_port_url() if fault == "refused" else llm.base_url
            model = "fake" if fault in ("ok", "refused") else f"fake-{fault}"
            settings = Settings(data_dir=data_dir, cache_enabled=False, llm_base_url=url, llm_api_key="test",
                                llm_model=model, llm_timeout_s=timeout_s)  # fmt: skip
            assistant = Assistant(settings, embeddings=embeddings)
            if embeddings is None:
                embeddings = assistant.embeddings
            hybrid_search(assistant.index("default"), question, k=5)  # warm: time the LLM, not loading
            start = time.perf_counter()
            try:
                answer = assistant.ask(question)
                fell_back = getattr(assistant, "llm_health", None) and assistant.llm_health.fallbacks.get("extractive")
                outcome = "extractive" if fell_back else "LLM answer"
                outcome = outcome if answer.answered else f"holding, ticket {answer.ticket_id}"
                reason = answer.escalation_reason or ""
                text = answer.text
            except Exception as exc:  # what the user would have got instead of an answer
                outcome, reason, text = f"error {type(exc).__name__}", "", str(exc)[:80]
            rows.append({"fault": fault, "outcome": outcome, "reason": reason,
                         "seconds": round(time.perf_counter() - start, 2), "text": text[:70]})  # fmt: skip
    finally:
        llm.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout-s", type=float, default=2.0, help="KB_LLM_TIMEOUT_S for every row.")
    parser.add_argument("--question", default="How many days of sick leave do I get?")
    args = parser.parse_args()

    from ingest.pipeline import ensure_sample_kbs
    from kb_assistant.settings import Settings

    with tempfile.TemporaryDirectory(prefix="kb-llm-faults-") as tmp:
        data_dir = Path(tmp) / "data"
        ensure_sample_kbs(Settings(data_dir=data_dir), say=lambda m: None)
        rows = run_matrix(data_dir, args.question, args.timeout_s)
    print(f"KB_LLM_TIMEOUT_S={args.timeout_s}  question: {args.question}")
    print("| fault | outcome | reason | seconds | text |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['fault']} | {r['outcome']} | {r['reason']} | {r['seconds']} | {r['text']} |")


if __name__ == "__main__":
    main()
