"""`python -m eval.calibrate`: refit the answer confidence on real documents and choose the default threshold.

Runs the calibration sets through ``Assistant.ask`` (threshold 0, cache off: ``eval.runner``), keeps each
question's evidence features (``kb_assistant/answer/confidence.py``) and a label, and fits a logistic regression
(scikit-learn) on them:

- ``policy_pdfs`` (../shared/datasets): correct answer 1, confidently wrong 0, partial ½ (token presence);
- the golden set and the two refusal hold-outs (eval/datasets, on the bundled sample KB): answerable 1, not 0;
- CMRC2018 and DRCD (../shared/datasets, first ``--squad-limit`` questions): answerable reading comprehension, 1.

The default threshold is the lowest at which, on the data the model was fitted on, a confidently wrong policy
answer is rarer than a refusal and at most ``MAX_WRONG`` of the answers, and the refusal recall on unanswerable
questions reaches ``MIN_REFUSAL_RECALL`` (``choose_threshold``). Reported figures are held out: the model and its
threshold are refitted with one group left out (each policy document, each other set), and the group is scored
with them. Writes ``kb_assistant/answer/confidence_model.json`` (unless ``--dry-run``) and, under ``--out``, the
rows of every set (``--reuse`` refits from them without asking again) and ``calibration.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eval.metrics import answered_at

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
MIN_REFUSAL_RECALL = 0.85  # of unanswerable questions (golden set and hold-outs pooled), refused: the golden gate
MIN_REFUSAL_PRECISION = 0.8  # of refused questions of those sets, unanswerable: the golden gate
STEP = 0.01
C = 1.0  # inverse regularisation strength of the logistic regression (scikit-learn's default)


@dataclass(frozen=True)
class CalibrationSet:
    name: str
    path: str  # relative to the repository ("eval/…") or to the shared datasets ("shared:…")
    kind: str  # presence | refusal | squad
    weight: float = 1.0  # of each question in the fit
    corpus: str | None = None


SETS = (
    CalibrationSet("policy_pdfs", "shared:policy_pdfs", "presence"),
    CalibrationSet("golden", "eval/datasets/golden.jsonl", "refusal", 2.0, "sample_kb"),
    CalibrationSet("refusal_holdout", "eval/datasets/refusal_holdout.jsonl", "refusal", 2.0, "sample_kb"),
    CalibrationSet("refusal_holdout2", "eval/datasets/refusal_holdout2.jsonl", "refusal", 2.0, "sample_kb"),
    CalibrationSet("cmrc2018", "shared:cmrc2018/cmrc2018_dev.json", "squad", 0.5),
    CalibrationSet("drcd", "shared:drcd/DRCD_dev.json", "squad", 0.5),
)


def collect(cs: CalibrationSet, settings, embeddings, shared: Path, squad_limit: int) -> list[dict]:
    """Ask one set's questions; each row keeps its features and label (``label``: 1, 0, or 0.5 for partial)."""
    from eval import runner
    from eval.command import _folder_fingerprint, _ingest_folder
    from eval.datasets import load

    path = shared / cs.path.removeprefix("shared:") if cs.path.startswith("shared:") else REPO / cs.path
    ds = load(path, limit=squad_limit if cs.kind == "squad" else None)
    if cs.corpus == "sample_kb":
        from ingest.pipeline import sample_kb_root

        corpus = sample_kb_root() / "default"
        ds.build, ds.fingerprint = _ingest_folder(settings, corpus), _folder_fingerprint(corpus)
    eval_settings, kb = runner.prepare(ds, settings, embeddings, "default", say=_say)
    from eval.cache_eval import remember_query_vectors

    remember_query_vectors(embeddings, [item.question for item in ds.items])  # batched: ~10x faster than one by one
    start = time.perf_counter()
    rows = runner.run(ds, eval_settings, kb=kb, embeddings=embeddings, progress=_progress(cs.name))
    _say(f"\r{cs.name}: {len(rows)} questions in {time.perf_counter() - start:.0f}s")
    for r in rows:
        r["set"] = cs.name
        r["group"] = f"{cs.name}:{r['document']}" if cs.kind == "presence" else cs.name
        if cs.kind == "presence":
            r["label"] = {"correct": 1.0, "partial": 0.5}.get(r["verdict"], 0.0)
        else:
            r["label"] = 1.0 if r["answerable"] else 0.0
        r.pop("timings_ms", None), r.pop("passages", None)  # not needed to refit; keeps the files small
    return rows


# --- fitting ---------------------------------------------------------------------------------------------------
# The confidence is the product of two logistic regressions, each on its own features and labels:
# - scope: does the KB answer such a question at all (every set; policy and reading-comprehension questions are
#   all answerable, the refusal sets half not) — coverage of the question, words and concepts the KB never uses;
# - right: is the best passage the one that answers it (answerable questions: a policy answer's token presence,
#   1 / ½ / 0; elsewhere the expected passage ranked first) — how far the best passage stands out from the rest.
PARTS = {
    "scope": (
        "coverage",
        "window",
        "dense_en",
        "dense_zh",
        "zh",
        "cross_language",
        "unknown",
        "missing",
        "terms",
        "coverage_known",
    ),
    "right": (
        "coverage_lead",
        "rivals",
        "keyword_agrees",
        "dense_agrees",
        "margin",
        "window_top3",
        "same_document",
        "window_known",
    ),
}


def labelled(rows: list[dict], part: str) -> list[dict]:
    """The rows a part is fitted on, with its label in ``label``."""
    if part == "scope":
        return [r | {"label": 1.0 if r["answerable"] else 0.0} for r in rows]
    return [r if r["set"] == "policy_pdfs" else r | {"label": float(r["rank"] == 1)} for r in rows if r["answerable"]]


def fit_part(rows: list[dict], features: tuple[str, ...]) -> dict:
    """A logistic regression on standardised features; a label of ½ counts half right, half wrong."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    weights = {cs.name: cs.weight for cs in SETS}
    usable = [r for r in rows if r.get("features")]
    x = np.array([[r["features"].get(f, 0.0) for f in features] for r in usable], dtype=float)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    xs = (x - mean) / scale
    ys, ws, xx = [], [], []
    for row, r in zip(xs, usable, strict=True):
        w = weights.get(r["set"], 1.0)
        for y, share in ((1, r["label"]), (0, 1 - r["label"])):
            if share > 0:
                xx.append(row), ys.append(y), ws.append(w * share)
    model = LogisticRegression(C=C, max_iter=2000).fit(np.array(xx), np.array(ys), sample_weight=np.array(ws))
    return {
        "features": list(features), "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(),
        "coef": model.coef_[0].round(6).tolist(), "intercept": round(float(model.intercept_[0]), 6),
    }  # fmt: skip


def fit(rows: list[dict]) -> dict:
    return {"parts": {name: fit_part(labelled(rows, name), features) for name, features in PARTS.items()}}


def scored(rows: list[dict], model: dict) -> list[dict]:
    """The rows with ``confidence`` as ``model`` would give it (0 where retrieval found no passage)."""
    from kb_assistant.answer.confidence import predict

    return [r | {"confidence": round(predict(r["features"], model), 4) if r.get("features") else 0.0} for r in rows]


def legacy(rows: list[dict]) -> list[dict]:
    """The rows with the confidence before this calibration (main at 10b0d5d): 0.5 coverage + 0.5 scaled dense
    similarity for English, 0.85 / 0.15 for Chinese, times 0.3 when a concept is missing; threshold 0.25."""
    out = []
    for r in rows:
        f = r.get("features")
        if not f:
            out.append(r | {"confidence": 0.0})
            continue
        zh = f["zh"] > 0
        dense = min(1.0, max(0.0, ((f["dense_zh"] if zh else f["dense_en"]) - 0.25) / 0.45))
        value = (0.85 * f["coverage"] + 0.15 * dense) if zh else (0.5 * f["coverage"] + 0.5 * dense)
        out.append(r | {"confidence": round(min(1.0, value * (0.3 if f["missing"] else 1.0)), 4)})
    return out


LEGACY_THRESHOLD = 0.25


# --- figures ---------------------------------------------------------------------------------------------------
def figures(rows: list[dict], threshold: float | None = None) -> dict:
    """Per set at ``threshold`` (or each row's own ``threshold``): policy correct / partial / wrong / refused,
    refusal precision / recall, squad refusal rate."""
    out = {}
    for name in dict.fromkeys(r["set"] for r in rows):
        part = [r for r in rows if r["set"] == name]
        at = [answered_at(r, r["threshold"] if threshold is None else threshold) for r in part]
        n = len(part)
        kind = next(cs.kind for cs in SETS if cs.name == name)
        if kind == "presence":
            verdicts = [r["verdict"] if a else "refused" for r, a in zip(part, at, strict=True)]
            out[name] = {v: round(verdicts.count(v) / n, 4) for v in ("correct", "partial", "wrong", "refused")}
        elif kind == "refusal":
            refused = [r for r, a in zip(part, at, strict=True) if not a]
            unanswerable = sum(not r["answerable"] for r in part)
            true = sum(not r["answerable"] for r in refused)
            out[name] = {
                "precision": round(true / len(refused), 4) if refused else 1.0,
                "recall": round(true / unanswerable, 4) if unanswerable else 1.0,
            }
        else:
            out[name] = {"refused": round(sum(not a for a in at) / n, 4)}
        out[name]["questions"] = n
    return out


def refusal_pr_pooled(rows: list[dict], t: float) -> tuple[float, float]:
    """Refusal precision and recall at ``t`` over the refusal sets among ``rows``, pooled."""
    part = [r for r in rows if r["set"] in REFUSAL_SETS]
    refused = [r for r in part if not answered_at(r, t)]
    unanswerable = sum(not r["answerable"] for r in part)
    true = sum(not r["answerable"] for r in refused)
    return (true / len(refused) if refused else 1.0), (true / unanswerable if unanswerable else 1.0)


def feasible(rows: list[dict], t: float) -> bool:
    """The refusal gate of the golden set (CI's, tests/test_golden_set.py) reached at ``t`` on the refusal sets
    pooled, and on the golden set alone when it is among ``rows``."""
    precision, recall = refusal_pr_pooled(rows, t)
    if precision < MIN_REFUSAL_PRECISION or recall < MIN_REFUSAL_RECALL:
        return False
    golden = [r for r in rows if r["set"] == "golden"]
    if golden:
        precision, recall = refusal_pr_pooled(golden, t)
    return precision >= MIN_REFUSAL_PRECISION and recall >= MIN_REFUSAL_RECALL


REFUSAL_SETS = frozenset(cs.name for cs in SETS if cs.kind == "refusal")


def policy_wrong(rows: list[dict], t: float) -> float:
    policy = [r for r in rows if r["set"] == "policy_pdfs"]
    return sum(answered_at(r, t) and r["verdict"] == "wrong" for r in policy) / len(policy) if policy else 0.0


def choose_threshold(rows: list[dict]) -> float:
    """Among the thresholds that keep the refusal gate (``feasible``) on ``rows``, the one with the fewest wrong
    policy answers (the highest, ties to the lowest); with none, the best refusal F1 (ties to the lowest)."""
    grid = [round(i * STEP, 4) for i in range(int(round(1 / STEP)) + 1)]
    ok = [t for t in grid if feasible(rows, t)]
    if ok:
        return min(ok, key=lambda t: (round(policy_wrong(rows, t), 6), t))

    def f1(t):
        p, r = refusal_pr_pooled(rows, t)
        return 2 * p * r / (p + r) if p + r else 0.0

    return max(grid, key=lambda t: (round(f1(t), 6), -t))


def held_out(rows: list[dict]) -> list[dict]:
    """Every row scored by a model and threshold fitted without its group (leave one group out)."""
    result = []
    for group in dict.fromkeys(r["group"] for r in rows):
        train = [r for r in rows if r["group"] != group]
        model = fit(train)
        t = choose_threshold(scored(train, model))
        result += [r | {"threshold": t} for r in scored([r for r in rows if r["group"] == group], model)]
    return result


def curve(rows: list[dict], step: float = 0.05) -> list[dict]:
    return [{"threshold": round(i * step, 2)} | figures(rows, round(i * step, 4)) for i in range(int(1 / step) + 1)]


def auc(rows: list[dict]) -> float | None:
    """Of policy answers, how well confidence ranks correct above wrong (partial left out)."""
    from sklearn.metrics import roc_auc_score

    part = [r for r in rows if r["set"] == "policy_pdfs" and r["verdict"] in ("correct", "wrong")]
    labels = [r["verdict"] == "correct" for r in part]
    return round(float(roc_auc_score(labels, [r["confidence"] for r in part])), 4) if len(set(labels)) == 2 else None


def print_curve(points: list[dict], say=print) -> None:
    say("threshold | policy C / P / W / R | golden P / R | holdout P / R | holdout2 P / R | CMRC / DRCD refused")
    for p in points:
        pol, cells = p.get("policy_pdfs", {}), []
        cells.append(" / ".join(f"{100 * pol.get(k, 0):.1f}" for k in ("correct", "partial", "wrong", "refused")))
        for name in ("golden", "refusal_holdout", "refusal_holdout2"):
            s = p.get(name, {})
            cells.append(f"{s.get('precision', 0):.3f} / {s.get('recall', 0):.3f}" if s else "–")
        cells.append(" / ".join(f"{100 * p[n]['refused']:.1f}%" if n in p else "–" for n in ("cmrc2018", "drcd")))
        say(f"{p['threshold']:.2f} | " + " | ".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared datasets folder")
    parser.add_argument("--out", type=Path, default=Path("eval-report/calibration"))
    parser.add_argument("--squad-limit", type=int, default=300, help="CMRC2018 / DRCD questions asked (first N)")
    parser.add_argument("--reuse", action="store_true", help="refit from the rows a previous run left in --out")
    parser.add_argument("--sets", default="", help="comma-separated set names to ask (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="report, but do not write the model file")
    args = parser.parse_args(argv)
    from kb_assistant.answer.confidence import MODEL_FILE
    from kb_assistant.settings import load_settings

    settings = load_settings()
    rows_dir = args.out / "rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    started, rows, embeddings = time.perf_counter(), [], None
    wanted = set(filter(None, args.sets.split(","))) or {cs.name for cs in SETS}
    for cs in SETS:
        saved = rows_dir / f"{cs.name}.json"
        if cs.name not in wanted:
            if saved.exists():
                rows += json.loads(saved.read_text(encoding="utf-8"))
            continue
        if args.reuse and saved.exists():
            rows += json.loads(saved.read_text(encoding="utf-8"))
            continue
        if cs.path.startswith("shared:") and not (args.shared / cs.path.removeprefix("shared:")).exists():
            _say(f"{cs.name}: {args.shared / cs.path.removeprefix('shared:')} is absent; left out")
            continue
        if embeddings is None:
            from kb_assistant.embeddings import make_embeddings

            embeddings = make_embeddings(settings)
        part = collect(cs, settings, embeddings, args.shared, args.squad_limit)
        saved.write_text(json.dumps(part, ensure_ascii=False), encoding="utf-8")
        rows += part
    asked_s = time.perf_counter() - started

    oof = held_out(rows)
    model = fit(rows)
    final = scored(rows, model)
    threshold = choose_threshold(final)
    model |= {
        "threshold": threshold,
        "fitted": datetime.now(UTC).isoformat(timespec="seconds"),
        "sets": {name: sum(r["set"] == name for r in rows) for name in dict.fromkeys(r["set"] for r in rows)},
        "rule": f"fewest wrong policy answers while refusal precision >= {MIN_REFUSAL_PRECISION} and recall >= "
        f"{MIN_REFUSAL_RECALL} on golden + hold-outs pooled",
    }
    report = {
        "model": model,
        "held_out_at_fold_thresholds": figures(oof),
        "held_out_at_default": figures(oof, threshold),
        "fitted_at_default": figures(final, threshold),
        "fold_thresholds": {g: next(r["threshold"] for r in oof if r["group"] == g) for g in _groups(oof)},
        "before_at_0.25": figures(legacy(rows), LEGACY_THRESHOLD),
        "auc_policy": {"fitted": auc(final), "held_out": auc(oof), "before": auc(legacy(rows))},
        "curve_held_out": curve(oof),
        "curve_before": curve(legacy(rows)),
        "seconds": {"asking": round(asked_s), "total": round(time.perf_counter() - started)},
    }
    (args.out / "calibration.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    for part, fitted in model["parts"].items():
        _say(f"\n{part}: coefficients of the standardised features, intercept {fitted['intercept']:+.3f}")
        for name, coef in sorted(zip(fitted["features"], fitted["coef"], strict=True), key=lambda p: -abs(p[1])):
            _say(f"  {name:15s} {coef:+.3f}")
    _say(f"\nthreshold chosen on all the data: {threshold:.2f}; per left-out group: {report['fold_thresholds']}")
    _say(f"AUC correct vs wrong on policy_pdfs: {report['auc_policy']}")
    for title, key in (("before (hand-weighted confidence), at 0.25", "before_at_0.25"),
                       ("held out, each group at its fold's threshold", "held_out_at_fold_thresholds"),
                       (f"held out, at {threshold:.2f}", "held_out_at_default"),
                       (f"fitted, at {threshold:.2f}", "fitted_at_default")):  # fmt: skip
        _say(f"\n{title}:")
        for name, values in report[key].items():
            _say(f"  {name:17s} " + "  ".join(f"{k} {v}" for k, v in values.items()))
    _say("\nheld-out curve:")
    print_curve(report["curve_held_out"], _say)
    if not args.dry_run:
        MODEL_FILE.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
        _say(f"\nwrote {MODEL_FILE}")
    _say(f"wrote {args.out / 'calibration.json'}; {report['seconds']['total']} s in all")
    return 0


def _groups(rows):
    return list(dict.fromkeys(r["group"] for r in rows))


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")


def _progress(name: str):
    def show(done: int, total: int):
        if done == total or done % 50 == 0:
            sys.stderr.write(f"\r{name}: {done}/{total}")
            sys.stderr.flush()

    return show


if __name__ == "__main__":
    sys.exit(main())
