"""The golden set: JSONL lines {question, answerable, expected_sources, expected_answer, lang}; see datasets/README.md.

``evaluate_golden`` runs each question through ``Assistant.ask`` and reports retrieval hit@k (expected source among
the top-k passages), answer keyword presence, and refusal precision/recall on the unanswerable questions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kb_assistant.errors import KBError

DATASETS = Path(__file__).resolve().parent / "datasets"


class DatasetError(KBError):
    pass


@dataclass
class GoldenItem:
    question: str
    answerable: bool
    expected_sources: list[str] = field(default_factory=list)
    expected_answer: str = ""
    lang: str = ""


def load_golden(path: Path) -> list[GoldenItem]:
    items = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(
                GoldenItem(
                    question=str(raw["question"]),
                    answerable=bool(raw["answerable"]),
                    expected_sources=[str(s) for s in raw.get("expected_sources", [])],
                    expected_answer=str(raw.get("expected_answer", "")),
                    lang=str(raw.get("lang", "")),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}:{no}: not a golden-set line ({exc}); see eval/datasets/README.md") from None
    return items


def _source_matches(source: str, expected: list[str]) -> bool:
    name = Path(source).name
    return any(name == Path(e).name for e in expected)


def evaluate_golden(assistant, items: list[GoldenItem], kb: str = "default", k: int = 5) -> dict:
    from kb_assistant.retrieval import hybrid_search

    s = assistant.settings
    rows = []
    for item in items:
        answer = assistant.ask(item.question, kb=kb)
        index = assistant.index(kb)
        cands = hybrid_search(index, answer.standalone_question, k=s.candidate_k,
                              dense=s.dense_search, keyword=s.keyword_search)  # fmt: skip
        cands = assistant._reranker(index).rerank(answer.standalone_question, cands)[:k]
        rank = next((i for i, c in enumerate(cands, 1) if _source_matches(c.chunk.source, item.expected_sources)), None)
        rows.append({"item": item, "answer": answer, "rank": rank})
    answerable = [r for r in rows if r["item"].answerable]
    unanswerable = [r for r in rows if not r["item"].answerable]
    refused = [r for r in rows if not r["answer"].answered]
    true_refusals = [r for r in refused if not r["item"].answerable]
    keyword_hits = [
        r for r in answerable
        if r["answer"].answered and _norm(r["item"].expected_answer) in _norm(r["answer"].text)
    ]  # fmt: skip
    return {
        "questions": len(rows),
        "hit@1": _ratio(sum(1 for r in answerable if r["rank"] == 1), len(answerable)),
        f"hit@{k}": _ratio(sum(1 for r in answerable if r["rank"]), len(answerable)),
        "mrr": _ratio(sum(1 / r["rank"] for r in answerable if r["rank"]), len(answerable)),
        "answered_correct_keyword": _ratio(len(keyword_hits), len(answerable)),
        "refusal_precision": _ratio(len(true_refusals), len(refused)),
        "refusal_recall": _ratio(len(true_refusals), len(unanswerable)),
        "rows": rows,
    }


def _norm(text: str) -> str:
    return "".join(text.lower().split()).replace("—", "–").replace("-", "–")


def _ratio(a: float, b: int) -> float:
    return round(a / b, 4) if b else 0.0
