"""Eval reports: a terminal table, a JSON file, and an HTML page with plots (matplotlib, embedded as PNG)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

HEADLINE = ("correct", "partial", "wrong", "refused", "hit@1", "hit@5", "mrr", "answer_rate", "keyword", "f1",
            "faithfulness", "refusal_precision", "refusal_recall", "total_p50_ms", "total_p95_ms")  # fmt: skip


def table(columns: dict[str, dict], metrics: tuple[str, ...] = HEADLINE, old: dict | None = None) -> str:
    """Metrics as rows, one column per configuration; with ``old`` (a previous summary) a delta column."""
    names = list(columns)
    metrics = tuple(m for m in metrics if any(m in columns[n] for n in names)) + tuple(
        sorted({m for n in names for m in columns[n] if m.endswith("_ms") and m not in metrics and "total" not in m})
    )
    header = ["metric", *names] + (["Δ vs old"] if old else [])
    lines = [header]
    last = names[-1]
    for m in metrics:
        row = [m] + [_fmt(columns[n].get(m)) for n in names]
        if old:
            new, prev = columns[last].get(m), old.get(m)
            row.append(f"{new - prev:+.4f}" if isinstance(new, int | float) and isinstance(prev, int | float) else "")
        lines.append(row)
    widths = [max(len(str(r[i])) for r in lines) for i in range(len(header))]
    out = ["  ".join(_cell(c, w, i) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def presence_tables(presence: dict, threshold: float) -> str:
    """Token presence: ours / plain baseline / ideal-extract ceiling, overall and per document, and the curve."""
    lines = [f"token presence ({presence['overall']['ours']['scored']} scored questions, {presence['skipped']} "
             f"left out: no token once Yes/No are dropped; threshold {threshold:.2f})"]  # fmt: skip
    lines.append(_systems_table(presence["overall"]))
    for document, systems in presence["documents"].items():
        lines.append(f"\n{document} ({systems['ours']['scored']} questions)")
        lines.append(_systems_table(systems))
    lines.append("\nour answers as the confidence threshold varies (answered at t = answered and confidence >= t):")
    lines.append("threshold  correct  partial  wrong  refused")
    for c in presence["curve"]:
        mark = "  ← configured" if abs(c["threshold"] - threshold) < 1e-9 else ""
        lines.append(f"{c['threshold']:9.2f}  {c['correct']:7.1%}  {c['partial']:7.1%}  {c['wrong']:5.1%}  "
                     f"{c['refused']:7.1%}{mark}")  # fmt: skip
    return "\n".join(lines)


def _systems_table(systems: dict) -> str:
    names = {"ours": "kb-assistant", "baseline": "plain top-1 chunk (500/50 + MiniLM)",
             "ceiling": "ideal 600-char extract", "chance": "chance: another document's best window"}  # fmt: skip
    names = {key: label for key, label in names.items() if key in systems}
    width = max(len(n) for n in names.values())
    out = [f"{'system'.ljust(width)}  correct  partial  wrong  refused"]
    for key, label in names.items():
        s = systems[key]
        refused = f"{s['refused']:7.1%}" if "refused" in s else f"{'—':>7}"
        out.append(f"{label.ljust(width)}  {s['correct']:7.1%}  {s['partial']:7.1%}  {s['wrong']:5.1%}  {refused}")
    return "\n".join(out)


def calibration_table(calibration: dict, every: float = 0.05) -> str:
    lines = ["threshold  precision  recall  f1"]
    chosen = calibration["chosen"]["threshold"]
    for c in calibration["curve"]:
        t = c["threshold"]
        if abs(t / every - round(t / every)) < 1e-6 or t == chosen:
            mark = "  ← chosen" if t == chosen else ""
            lines.append(f"{t:9.2f}  {c['precision']:9.3f}  {c['recall']:6.3f}  {c['f1']:.3f}{mark}")
    return "\n".join(lines)


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")


def load_json(path: Path) -> dict:
    from eval.datasets import DatasetError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return data["summary"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not a kb eval JSON report ({exc})") from None


def write_html(result: dict, path: Path) -> None:
    """One self-contained page: the table, confidence histogram with the threshold, stage latency, failures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, threshold = result["rows"], result["threshold"]
    figures = []

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ok = [r["confidence"] for r in rows if r["answerable"]]
    no = [r["confidence"] for r in rows if not r["answerable"]]
    bins = [i / 40 for i in range(41)]
    ax.hist(ok, bins=bins, alpha=0.6, label=f"answerable ({len(ok)})", color="#2b8a3e")
    if no:
        ax.hist(no, bins=bins, alpha=0.6, label=f"unanswerable ({len(no)})", color="#c92a2a")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set_xlabel("confidence")
    ax.set_ylabel("questions")
    ax.legend()
    figures.append(("Confidence of answerable vs unanswerable questions", _png(fig, plt)))

    stages = [
        s for s in ("condense", "retrieve", "rerank", "answer", "total") if any(s in r["timings_ms"] for r in rows)
    ]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.boxplot([[r["timings_ms"].get(s, 0.0) for r in rows] for s in stages], showfliers=False)
    ax.set_xticks(range(1, len(stages) + 1), stages)
    ax.set_ylabel("ms")
    figures.append(("Latency per stage", _png(fig, plt)))

    if result.get("calibration"):
        curve = result["calibration"]["curve"]
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.plot([c["threshold"] for c in curve], [c["precision"] for c in curve], label="refusal precision")
        ax.plot([c["threshold"] for c in curve], [c["recall"] for c in curve], label="refusal recall")
        ax.axvline(result["calibration"]["chosen"]["threshold"], color="black", linestyle=":", label="chosen")
        ax.set_xlabel("threshold")
        ax.legend()
        figures.append(("Refusal precision / recall by threshold", _png(fig, plt)))

    presence = result.get("presence")
    if presence:
        curve = presence["curve"]
        fig, ax = plt.subplots(figsize=(7, 3.2))
        for key, colour in (("correct", "#2b8a3e"), ("partial", "#e67700"), ("wrong", "#c92a2a"),
                            ("refused", "#495057")):  # fmt: skip
            ax.plot([c["threshold"] for c in curve], [c[key] for c in curve], label=key, color=colour)
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.2f}")
        ax.set_xlabel("confidence threshold")
        ax.set_ylabel("share of questions")
        ax.legend()
        figures.append(("Answers by confidence threshold", _png(fig, plt)))

    failures = [r for r in rows if _failed(r, threshold)]
    e = html.escape
    parts = [
        "<!doctype html><meta charset='utf-8'><title>kb eval: " + e(result["dataset"]) + "</title>",
        "<style>body{font:14px system-ui;margin:2em;max-width:1100px}pre{background:#f6f8fa;padding:1em}"
        "td,th{padding:2px 8px;text-align:left;vertical-align:top}.p{color:#555;font-size:12px}</style>",
        f"<h1>kb eval — {e(result['dataset'])} ({e(result['kind'])})</h1>",
        f"<p>{len(rows)} questions · threshold {threshold:.2f} · {e(result.get('created', ''))}</p>",
        "<pre>" + e(result.get("table", "")) + "</pre>",
    ]
    if presence:
        parts.append("<h2>Token presence: ours / baseline / ceiling</h2><pre>"
                     + e(presence_tables(presence, threshold)) + "</pre>")  # fmt: skip
    for title, png in figures:
        parts.append(f"<h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{png}'>")
    if presence:
        parts.extend(_presence_failures(failures, threshold))
        failures = []
    else:
        parts.append(
            f"<h2>Failures ({len(failures)})</h2><table><tr><th>question</th><th>expected</th><th>got</th></tr>"
        )
    for r in failures[:300]:
        passages = "".join(
            f"<div class='p'>[{p['n']}] {e(p['source'])} — {e(p['section'])} ({p['score']:.2f}): "
            f"{e(p['text'][:200])}</div>"
            for p in r["passages"][:3]
        )
        got = f"rank {r['rank'] or '—'}, confidence {r['confidence']:.2f}, {e(r['reason'] or 'answered')}"
        parts.append(
            f"<tr><td>{e(r['question'])}</td><td>{e(r['expected'])}</td>"
            f"<td>{got}<div>{e(r['answer'][:300])}</div>{passages}</td></tr>"
        )
    parts.append("</table>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")


def _presence_failures(failures: list[dict], threshold: float) -> list[str]:
    """Each question not answered correctly, beside our passages, the ideal window and the baseline's chunk."""
    from eval.metrics import presence_text

    e = html.escape
    parts = [
        f"<h2>Not correct ({len(failures)})</h2><table><tr><th>question · tokens</th><th>our answer</th>"
        "<th>our passages</th><th>ideal 600-char window · plain baseline's chunk</th></tr>"
    ]
    for r in failures[:400]:
        answered = r["answered_any"] and r["confidence"] >= threshold
        verdict = r["verdict"] if answered else "refused"
        head = presence_text(r["answer"])[:600] if answered else ""
        tokens = " ".join(
            f"<b>{e(t)}</b>" if presence_text(t) in head else f"<s>{e(t)}</s>" for t in r["tokens"]
        )  # bold: present in our answer; struck: missing
        passages = "".join(
            f"<div class='p'>[{p['n']}] {e(p['source'])} — {e(p['section'])} ({p['score']:.2f}): {e(p['text'])}</div>"
            for p in r["passages"][:3]
        )
        c, b = r["ceiling"], r["baseline"]
        parts.append(
            f"<tr><td>{e(r['question'])}<div class='p'>{e(r['document'])} · {tokens}</div></td>"
            f"<td><b>{verdict}</b> ({r['share']:.0%}, confidence {r['confidence']:.2f}, {e(r['reason'] or 'answered')})"
            f"<div>{e(r['answer'][:600])}</div></td><td>{passages}</td>"
            f"<td><div class='p'>ceiling {c['verdict']} ({c['share']:.0%}): {e(c['text'])}</div>"
            f"<div class='p'>baseline {b['verdict']} ({b['share']:.0%}, {e(b['source'])}): {e(b['text'])}</div>"
            "</td></tr>"
        )
    return parts


def _failed(row: dict, threshold: float) -> bool:
    answered = row["answered_any"] and row["confidence"] >= threshold
    if "verdict" in row:
        return not answered or row["verdict"] != "correct"
    if not row["answerable"]:
        return answered
    return row["rank"] != 1 or not answered or (row["expected_answer"] and not row["keyword"])


def _png(fig, plt) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _cell(value, width: int, column: int) -> str:
    return str(value).ljust(width) if column == 0 else str(value).rjust(width)


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}" if value <= 1.0 else f"{value:.1f}"
    return str(value)
