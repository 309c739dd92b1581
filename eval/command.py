"""`kb eval`: load a dataset, ask every question, print the table, write JSON + HTML, compare, gate."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from eval import report, runner
from eval.datasets import GOLDEN, DatasetError, load


def parse_fail_under(specs: list[str], option: str = "--fail-under", example: str = "hit@5=0.95") -> dict[str, float]:
    gates = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        try:
            gates[name.strip()] = float(value)
        except ValueError:
            raise DatasetError(f"{option} {spec!r}: use METRIC=VALUE, e.g. {option} {example}") from None
    return gates


def evaluate(
    settings,
    dataset: Path | None = None,
    *,
    kind: str | None = None,
    paraphrases: Path | None = None,
    corpus: Path | None = None,
    kb: str | None = None,
    limit: int | None = None,
    ablate: bool = False,
    calibrate: bool = False,
    out: Path = Path("eval-report"),
    compare: Path | None = None,
    fail_under: list[str] = (),
    fail_over: list[str] = (),
    price_per_mtok: tuple[float, float] = (0.0, 0.0),
    cache_compare: bool = False,
    embeddings=None,
    say: Callable[[str], None] = print,
) -> tuple[dict, list[str]]:
    """Run the evaluation; returns (result, failed gates)."""
    gates = parse_fail_under(list(fail_under))
    ceilings = parse_fail_under(list(fail_over), "--fail-over", "wrong=0.15")
    old = report.load_json(compare) if compare else None
    dataset = Path(dataset) if dataset else GOLDEN
    ds = load(dataset, kind=kind, paraphrases=paraphrases, limit=limit)
    if ds.kind == "golden" and kb is None and corpus is None and dataset.resolve() == GOLDEN.resolve():
        from ingest.pipeline import sample_kb_root

        corpus = sample_kb_root() / "default"  # the bundled golden set asks the bundled sample KB
    if corpus is not None:
        ds.build, ds.fingerprint = _ingest_folder(settings, Path(corpus)), _folder_fingerprint(Path(corpus))
    if embeddings is None:
        from kb_assistant.embeddings import make_embeddings

        embeddings = make_embeddings(settings)
    eval_settings, kb_name = runner.prepare(ds, settings, embeddings, kb or "default", say=say)
    if cache_compare:  # three passes over the questions: embed them once, batched (the model's query memo)
        from eval.cache_eval import remember_query_vectors

        remember_query_vectors(embeddings, [item.question for item in ds.items])

    configs = dict(runner.ABLATIONS) if ablate else {"full": {}}
    summaries, rows = {}, []
    for name, overrides in configs.items():
        start = time.perf_counter()
        rows = runner.run(ds, eval_settings, kb=kb_name, embeddings=embeddings, overrides=overrides,
                          progress=_progress(name))  # fmt: skip
        summaries[name] = runner.summarise(rows, settings.confidence_threshold, k=settings.top_k,
                                           price_per_mtok=price_per_mtok)  # fmt: skip
        if ds.kind == "token_presence":
            summaries[name] |= runner.presence_summary(rows, settings.confidence_threshold)
        sys.stderr.write(f"\r{name}: {len(rows)} questions in {time.perf_counter() - start:.0f}s\n")
    summary = summaries["full"]
    result = {
        "dataset": str(dataset),
        "kind": ds.kind,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "threshold": settings.confidence_threshold,
        "settings": {k: getattr(settings, k) for k in ("top_k", "candidate_k", "keyword_search", "dense_search",
                                                        "rerank", "reranker_model", "llm_model", "embedding_model")},
        "summary": summary,
        "ablations": summaries if ablate else {},
        "rows": rows,
    }  # fmt: skip
    if ds.kind == "token_presence":
        result["presence"] = _yardsticks(ds, rows, settings, embeddings, summary, say=say)
    if cache_compare:  # the same questions again, in order, with the semantic cache on (eval/cache_eval.py)
        from eval.cache_eval import cache_on_off

        result["cache_compare"] = cache_on_off(ds, eval_settings, kb_name, embeddings, rows, settings, say=say)
    result["table"] = report.table(summaries, old=old)
    say(result["table"])
    if ds.kind == "token_presence":
        say("\n" + report.presence_tables(result["presence"], settings.confidence_threshold))
    if calibrate:
        result["calibration"] = runner.calibrate(rows)
        if result["calibration"]:
            say(
                "\nrefusal precision/recall by confidence threshold:\n"
                + report.calibration_table(result["calibration"])
            )
            chosen = result["calibration"]["chosen"]
            say(f"chosen: KB_CONFIDENCE_THRESHOLD={chosen['threshold']:.2f} "
                f"(precision {chosen['precision']:.3f}, recall {chosen['recall']:.3f})")  # fmt: skip
        else:
            say("--calibrate: the dataset has no unanswerable questions; nothing to calibrate")
    out = Path(out)
    report.write_json(result, out / "report.json")
    report.write_html(result, out / "report.html")
    say(f"\nwrote {out / 'report.json'} and {out / 'report.html'}")
    failed = [
        f"{m} = {summary.get(m)} < {v}"
        for m, v in gates.items()
        if not isinstance(summary.get(m), int | float) or summary[m] < v
    ] + [
        f"{m} = {summary.get(m)} > {v}"
        for m, v in ceilings.items()
        if not isinstance(summary.get(m), int | float) or summary[m] > v
    ]
    return result, failed


def _yardsticks(ds, rows: list[dict], settings, embeddings, summary: dict, say: Callable[[str], None]) -> dict:
    """Token presence: the ideal-extract ceiling, the chance level (another document's best window) and the plain
    top-1-chunk baseline beside our answers, per document and overall, and our answers' shares as the threshold
    varies. Adds baseline_*/ceiling_*/chance_* to ``summary`` (so they can be gated) and each row's ceiling window,
    chance share and baseline chunk (for the reports)."""
    from eval.extract_baseline import ceiling as ideal_extract
    from eval.extract_baseline import chance as chance_level
    from eval.extract_baseline import document_texts, plain_baseline
    from eval.metrics import WINDOW, presence_text

    cache = settings.data_dir / "eval" / "pdftext"
    say(f"the ideal-extract ceiling and the plain baseline (PDF text via pdfminer, cached in {cache}) …")
    texts = document_texts(ds.documents, cache)
    ceil_rows = ideal_extract(ds.items, texts)
    chance_rows = chance_level(ds.items, texts)
    from kb_assistant.embeddings import embedder_id, make_embeddings

    # the baseline is what a user builds in an afternoon: always the bundled MiniLM, whatever model we are measured on
    plain = settings.model_copy(update={"embedding_model": None, "embedding_base_url": None})
    base_embeddings = embeddings if embedder_id(plain) == embedder_id(settings) else make_embeddings(plain)
    base_rows = plain_baseline(ds.items, texts, base_embeddings, cache, model=embedder_id(plain))
    normalised = {name: presence_text(text) for name, text in texts.items()}
    for row, c, b in zip(rows, ceil_rows, base_rows, strict=True):
        window = normalised[row["document"]][c["start"] : c["start"] + WINDOW]
        row["ceiling"] = {"share": c["share"], "verdict": c["verdict"], "text": window}
        row["baseline"] = {"share": b["share"], "verdict": b["verdict"], "source": b["source"], "text": b["text"]}
    if chance_rows:  # one per question, as the ceiling's
        for row, c in zip(rows, chance_rows, strict=True):
            row["chance"] = c
    yardsticks = ("baseline", "ceiling", "chance") if chance_rows else ("baseline", "ceiling")
    threshold = settings.confidence_threshold

    def three(subset: list[dict]) -> dict:
        return {"ours": runner.presence_summary(subset, threshold)} | {
            system: runner.yardstick_summary([r[system] for r in subset]) for system in yardsticks
        }

    overall = three(rows)
    for system in yardsticks:
        for verdict in ("correct", "partial", "wrong"):
            summary[f"{system}_{verdict}"] = overall[system][verdict]
    documents = sorted({r["document"] for r in rows})
    return {
        "overall": overall,
        "documents": {d: three([r for r in rows if r["document"] == d]) for d in documents},
        "curve": runner.answered_curve(rows),
        "skipped": ds.skipped,
    }


def _ingest_folder(settings, folder: Path):
    def build(index):
        from ingest.pipeline import ingest_paths

        report = ingest_paths(index.settings, [folder], index.name)
        if not report.ok:
            raise DatasetError(f"{folder}: {len(report.failed)} file(s) failed to ingest: {report.failed}")

    return build


def _folder_fingerprint(folder: Path) -> str:
    import hashlib

    h = hashlib.sha1()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def _progress(name: str):
    def show(done: int, total: int):
        if sys.stderr.isatty() or done == total or done % 50 == 0:
            sys.stderr.write(f"\r{name}: {done}/{total}")
            sys.stderr.flush()

    return show
