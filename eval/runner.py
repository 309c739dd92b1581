"""Run an EvalSet through ``Assistant.ask`` (the same call the chat makes, cache off) and summarise it.

Every question is asked once with the confidence threshold at 0, so the would-be answer and its confidence are
known for every question; "answered at threshold t" is then ``answered and confidence >= t``, exactly what
``ask()`` does at that threshold. This lets one run report the configured threshold and calibrate a new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from eval.datasets import EvalSet
from eval.metrics import (
    answered_at,
    faithfulness,
    keyword_present,
    percentile,
    presence_verdict,
    refusal_pr,
    token_f1,
    token_share,
)
from kb_assistant.answer.spans import key_text
from kb_assistant.settings import Settings

# Stage ablations: what each retrieval stage adds, measured in one run.
ABLATIONS: dict[str, dict] = {
    "dense": {"keyword_search": False, "rerank": False},
    "bm25": {"dense_search": False, "rerank": False},
    "fusion": {"rerank": False},
    "full": {},
}


def prepare(ds: EvalSet, settings: Settings, embeddings, kb: str, say: Callable[[str], None] = print):
    """The settings and KB name to ask: an existing KB, or one built from the dataset's corpus (reused if built)."""
    if ds.build is None:
        return settings, kb
    from kb_assistant.language import TOKENIZER_VERSION
    from kb_assistant.store import KnowledgeBase

    model = Path(settings.embedding_model or "minilm").name
    # the tokenizer version too: a cached KB keeps keyword tokens, which a tokenizer change makes stale
    data_dir = settings.data_dir / "eval" / f"{ds.name}-{ds.fingerprint}-{model}-t{TOKENIZER_VERSION}"
    eval_settings = settings.model_copy(update={"data_dir": data_dir})
    marker = data_dir / "built"
    if not marker.exists():
        say(f"building the '{ds.name}' evaluation KB in {data_dir} (once) …")
        start = time.perf_counter()
        index = KnowledgeBase(eval_settings, "eval", embeddings)
        ds.build(index)
        marker.write_text(f"{time.perf_counter() - start:.1f}s\n", encoding="utf-8")
    return eval_settings, "eval"


def run(
    ds: EvalSet,
    settings: Settings,
    *,
    kb: str = "default",
    embeddings=None,
    overrides: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Ask every question; one row per question with rank, confidence, answer metrics and timings."""
    from kb_assistant.assistant import Assistant

    # eval measures the pipeline, not the cache (unless an override switches it on: --cache-compare)
    update = {"confidence_threshold": 0.0, "cache_enabled": False, **(overrides or {})}
    assistant = Assistant(settings.model_copy(update=update), embeddings=embeddings)
    rows = []
    for i, item in enumerate(ds.items):
        answer = assistant.ask(item.question, history=item.history or None, kb=kb)
        rank = next((p.n for p in answer.passages if item.is_right(p)), None)
        supported, cited = faithfulness(answer) if answer.answered else (0, 0)
        rows.append(
            {
                "id": item.id,
                "question": item.question,
                "standalone_question": answer.standalone_question,
                "lang": item.lang or answer.language,
                "answerable": item.answerable,
                "expected": item.expected_answer or ", ".join(item.expected_sources or item.expected_questions),
                "expected_answer": item.expected_answer,
                "rank": rank,
                "confidence": answer.confidence,
                "features": answer._evidence() if answer._evidence else None,  # what eval.calibrate refits on
                "answered_any": answer.answered,
                "cached": answer.cached,
                "reason": answer.escalation_reason,
                "answer": answer.text,
                "f1": round(token_f1(key_text(answer.text), item.expected_answer), 4) if answer.answered else 0.0,
                "keyword": keyword_present(answer.text, item.expected_answer) if answer.answered else False,
                "faithful": [supported, cited],
                "timings_ms": answer.timings_ms,
                "usage": answer.usage.model_dump() if answer.usage else None,
                "passages": [
                    {"n": p.n, "source": p.source, "section": p.section, "score": p.score, "text": p.snippet[:300]}
                    for p in answer.passages
                ],
            }
        )
        if item.tokens:
            share = token_share(answer.text, item.tokens) if answer.answered else 0.0
            rows[-1] |= {"document": item.document, "tokens": item.tokens, "share": round(share, 4),
                         "verdict": presence_verdict(share)}  # fmt: skip
        if progress:
            progress(i + 1, len(ds.items))
    return rows


VERDICTS = ("correct", "partial", "wrong", "refused")


def presence_summary(rows: list[dict], threshold: float) -> dict:
    """Shares of correct / partial / (confidently) wrong / refused at ``threshold``; refused = not answered."""
    counts = dict.fromkeys(VERDICTS, 0)
    for r in rows:
        counts[r["verdict"] if answered_at(r, threshold) else "refused"] += 1
    n = len(rows) or 1
    return {"scored": len(rows)} | {v: round(c / n, 4) for v, c in counts.items()}


def yardstick_summary(rows: list[dict]) -> dict:
    """The same shares for a yardstick that always answers (baseline, ceiling): nothing is refused."""
    n = len(rows) or 1
    return {"scored": len(rows)} | {v: round(sum(r["verdict"] == v for r in rows) / n, 4) for v in VERDICTS[:3]}


def answered_curve(rows: list[dict], step: float = 0.05) -> list[dict]:
    """correct / partial / wrong / refused as the confidence threshold varies (to calibrate the default)."""
    return [{"threshold": round(i * step, 4)} | presence_summary(rows, round(i * step, 4))
            for i in range(int(round(1 / step)) + 1)]  # fmt: skip


def summarise(rows: list[dict], threshold: float, *, k: int = 5, price_per_mtok: tuple[float, float] = (0, 0)) -> dict:
    answerable = [r for r in rows if r["answerable"]]
    n = len(answerable) or 1
    with_expected = [r for r in answerable if r["expected_answer"]]
    answered = [r for r in rows if answered_at(r, threshold)]
    summary = {
        "questions": len(rows),
        "answerable": len(answerable),
        "hit@1": _mean(r["rank"] == 1 for r in answerable),
        f"hit@{k}": _mean(r["rank"] is not None for r in answerable),
        "mrr": round(sum(1 / r["rank"] for r in answerable if r["rank"]) / n, 4),
        "answer_rate": _mean(answered_at(r, threshold) for r in answerable),
    }
    if with_expected:
        summary["keyword"] = _mean(answered_at(r, threshold) and r["keyword"] for r in with_expected)
        summary["f1"] = _mean_values(r["f1"] if answered_at(r, threshold) else 0.0 for r in with_expected)
    supported = sum(r["faithful"][0] for r in answered)
    cited = sum(r["faithful"][1] for r in answered)
    summary["faithfulness"] = round(supported / cited, 4) if cited else None
    if len(answerable) < len(rows):
        summary["refusal_precision"], summary["refusal_recall"] = refusal_pr(rows, threshold)
    stages = sorted({s for r in rows for s in r["timings_ms"]})
    for stage in stages:
        values = [r["timings_ms"][stage] for r in rows if stage in r["timings_ms"]]
        summary[f"{stage}_p50_ms"] = percentile(values, 0.5)
        summary[f"{stage}_p95_ms"] = percentile(values, 0.95)
    usages = [r["usage"] for r in rows if r["usage"]]
    if usages:
        prompt = sum(u["prompt_tokens"] for u in usages)
        completion = sum(u["completion_tokens"] for u in usages)
        summary["prompt_tokens"], summary["completion_tokens"] = prompt, completion
        if any(price_per_mtok):
            summary["cost"] = round((prompt * price_per_mtok[0] + completion * price_per_mtok[1]) / 1e6, 4)
    return summary


def calibrate(rows: list[dict], step: float = 0.01) -> dict:
    """Refusal precision/recall across thresholds; the chosen point maximises F1, centred on its best plateau."""
    if all(r["answerable"] for r in rows):
        return {}
    curve = []
    for i in range(int(1 / step) + 1):
        t = round(i * step, 4)
        p, r = refusal_pr(rows, t)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        curve.append({"threshold": t, "precision": p, "recall": r, "f1": round(f1, 4)})
    best = max(c["f1"] for c in curve)
    plateau = [c for c in curve if c["f1"] == best]
    chosen = plateau[len(plateau) // 2]
    return {"curve": curve, "chosen": chosen}


def _mean(flags) -> float:
    flags = list(flags)
    return round(sum(1 for f in flags if f) / len(flags), 4) if flags else 0.0


def _mean_values(values) -> float:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else 0.0
