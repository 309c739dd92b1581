"""Golden-set retrieval with a restricted source present: does limiting a source to a group change anything for a
principal who may see it, and what does an outsider lose?

    .venv/bin/python -m eval.bench_access_groups [--data-dir DIR]

Three KBs from the bundled sample documents: ``alone`` (the HR handbook the golden set asks), ``open`` (the
handbook plus the sales sample folder, visible to everyone) and ``limited`` (the same two sources, the sales
folder ingested with ``--groups managers``). Every golden question is asked (confidence threshold 0, cache off,
as `kb eval` does) by a principal in no group on ``alone`` and ``open``, by a manager and by an outsider on
``limited``. Prints hit@1, hit@5, MRR and the mean confidence per run, on how many questions the manager's
passages on ``limited`` are exactly those of ``open`` (source, section, score), and on how many the outsider's
passages on ``limited`` come from the same sources, in order, as on ``alone``. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def ask_all(assistant, items, kb: str, principal) -> list[dict]:
    rows = []
    for item in items:
        answer = assistant.ask(item.question, history=item.history or None, kb=kb, principal=principal)
        rank = next((p.n for p in answer.passages if item.is_right(p)), None)
        passages = [(p.source, p.section, p.score) for p in answer.passages]
        rows.append(
            {
                "rank": rank,
                "confidence": answer.confidence,
                "passages": passages,
                "judged": item.answerable and bool(item.expected_sources),
            }
        )
    return rows


def summary(rows: list[dict]) -> dict:
    judged = [r for r in rows if r["judged"]]
    n = len(judged) or 1
    return {
        "questions": len(judged),
        "hit@1": round(sum(r["rank"] == 1 for r in judged) / n, 4),
        "hit@5": round(sum(r["rank"] is not None and r["rank"] <= 5 for r in judged) / n, 4),
        "mrr": round(sum(1 / r["rank"] for r in judged if r["rank"]) / n, 4),
        "mean confidence": round(sum(r["confidence"] for r in rows) / (len(rows) or 1), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="Reused between runs (default: a temp dir).")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="kb-bench-groups-"))

    from eval.datasets import GOLDEN, load_golden
    from ingest.pipeline import sample_kb_root, sync_sources
    from ingest.visibility import set_source_groups
    from kb_assistant.assistant import Assistant
    from kb_assistant.embeddings import make_embeddings
    from kb_assistant.schema import Principal
    from kb_assistant.settings import Settings
    from kb_assistant.store import list_kbs

    settings = Settings(data_dir=data_dir, confidence_threshold=0.0, cache_enabled=False)
    embeddings = make_embeddings(settings)
    handbook, restricted = sample_kb_root() / "default", sample_kb_root() / "sales"
    if not {"alone", "open", "limited"} <= set(list_kbs(settings)):
        sync_sources(settings, [handbook], "alone", embeddings=embeddings)
        sync_sources(settings, [handbook, restricted], "open", embeddings=embeddings)
        set_source_groups(settings, [restricted], "limited", "managers")
        sync_sources(settings, [handbook, restricted], "limited", embeddings=embeddings)
    items = load_golden(GOLDEN).items
    assistant = Assistant(settings, embeddings=embeddings)
    anyone, manager, outsider = Principal(), Principal.of("maria", "managers"), Principal.of("otto", "staff")
    runs = {
        "alone, no group": ask_all(assistant, items, "alone", anyone),
        "open, no group": ask_all(assistant, items, "open", anyone),
        "limited, manager": ask_all(assistant, items, "limited", manager),
        "limited, outsider": ask_all(assistant, items, "limited", outsider),
    }
    print(f"golden set {GOLDEN.name}: {len(items)} questions; data dir {data_dir}")
    print(f"{'KB, principal':<20} {'judged':>6} {'hit@1':>7} {'hit@5':>7} {'MRR':>7} {'mean conf':>9}")
    for name, rows in runs.items():
        s = summary(rows)
        print(f"{name:<20} {s['questions']:>6} {s['hit@1']:>7} {s['hit@5']:>7} {s['mrr']:>7} {s['mean confidence']:>9}")
    same = sum(
        a["passages"] == b["passages"] and a["confidence"] == b["confidence"]
        for a, b in zip(runs["open, no group"], runs["limited, manager"], strict=True)
    )
    print(f"manager on 'limited' vs everyone on 'open': same passages, scores and confidence on {same} of {len(items)}")
    sources = sum(
        [p[0] for p in a["passages"]] == [p[0] for p in b["passages"]]
        for a, b in zip(runs["alone, no group"], runs["limited, outsider"], strict=True)
    )
    print(f"outsider on 'limited' vs no group on 'alone': same passage sources in order on {sources} of {len(items)}")


if __name__ == "__main__":
    main()
