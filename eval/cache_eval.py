"""Semantic-cache thresholds on labelled question pairs: seed the cache with question 1, ask question 2.

    python -m eval.cache_eval [--pairs FILE:LANG ...] [--sample 4000] [--seed 0]

Default files (skipped with a message when ../shared is absent): covid_faq/eval_question_similarity_en.csv (en,
IDF from the FAQ file beside it as the KB, question 1's FAQ answer as the cached answer) and a fixed random sample
of afqmc/train.csv (zh, IDF from the sampled sentences). Any CSV of rows ``question_1,question_2,label`` (header
optional, label 1 = same question) works.
For each threshold it prints the hit rate (share of same-question pairs answered from the cache), the wrong-hit
rate (share of hits that were different questions), with and without the near-miss guard, the same on the pairs
without a personal question (the cache never stores or serves those, whatever the threshold), and the chosen
default marked; threshold 1.00 = no embedding layer. Then a held-out check: the threshold chosen on one half
of the file (pairs grouped by their first question, so a question's rewordings stay in one half: the highest hit
rate with wrong hits within the target, 1% in English, 10% in Chinese) and its figures on the other half, over
all pairs and over the pairs without a personal question (the ones the cache decides on). The
decision is the cache's own: exact key, or the same wording key, or similarity ≥ threshold (below 1.0), and for
the last two ``near_miss_reason`` is None.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEFAULT_FILES = [
    (SHARED / "covid_faq" / "eval_question_similarity_en.csv", "en"),
    (SHARED / "afqmc" / "train.csv", "zh"),
]
THRESHOLDS = [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]
MAX_WRONG = {"en": 0.01, "zh": 0.10}  # the targets: the held-out check keeps wrong hits at most this


@dataclass
class Pair:
    q1: str
    q2: str
    same: bool


@dataclass
class Row:
    threshold: float
    hit_rate: float
    wrong_hit_rate: float
    hits: int
    wrong: int
    raw_hit_rate: float
    raw_wrong_hit_rate: float
    own_hit_rate: float = 0.0  # on the pairs without a personal question
    own_wrong_hit_rate: float = 0.0


def load_pairs(path: Path) -> list[Pair]:
    pairs = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            if len(row) < 3 or row[2].strip() not in ("0", "1"):
                continue  # header or a broken line
            pairs.append(Pair(row[0].strip(), row[1].strip(), row[2].strip() == "1"))
    return pairs


def idf_from_texts(texts: list[str]) -> Callable[[str], float]:
    """BM25-style IDF over texts (what the KB's keyword index gives the cache); 0 for an unknown token."""
    from kb_assistant.text import tokenize

    df: Counter = Counter()
    for text in texts:
        df.update(set(tokenize(text)))
    n = len(texts)
    return lambda token: math.log(1 + (n - df[token] + 0.5) / (df[token] + 0.5)) if token in df else 0.0


def evaluate_pairs(
    pairs: list[Pair],
    embeddings,
    idf,
    thresholds=THRESHOLDS,
    max_wrong: float = 0.01,
    *,
    answers: dict[str, str] | None = None,
    glossary=None,
) -> tuple[list[Row], dict]:
    """Rows per threshold plus details: guard rejections by reason, personal share, examples, the held-out check.

    ``answers``: question 1 → the answer the cache would hold for it (the guard lets a swapped word pass when that
    answer says it); ``glossary``: the KB's synonym sets (the cache uses the KB's)."""
    import zlib

    import numpy as np

    from kb_assistant.cache_guard import is_personal, near_miss_reason, normalize_question, wording_key

    texts = list(dict.fromkeys([p.q1 for p in pairs] + [p.q2 for p in pairs]))
    vectors = dict(zip(texts, np.asarray(embeddings.embed_documents(texts), dtype=np.float32), strict=True))
    sims = np.array([float(vectors[p.q1] @ vectors[p.q2]) for p in pairs])
    same = np.array([p.same for p in pairs])
    exact = np.array([normalize_question(p.q1) == normalize_question(p.q2) for p in pairs])
    reworded = np.array([wording_key(p.q1) == wording_key(p.q2) for p in pairs])
    answers = answers or {}
    reasons = [near_miss_reason(p.q2, p.q1, idf, answer=answers.get(p.q1, ""), glossary=glossary) for p in pairs]
    passed = np.array([r is None for r in reasons])
    own = ~np.array([is_personal(p.q1) or is_personal(p.q2) for p in pairs])

    def decided(t: float):
        similar = sims >= t if t < 1.0 else np.zeros_like(same)
        return exact | ((reworded | similar) & passed), exact | reworded | similar

    rows = []
    for t in thresholds:
        guarded, raw = decided(t)
        rows.append(
            Row(t, *_rates(guarded, same), int(guarded.sum()), int((guarded & ~same).sum()), *_rates(raw, same),
                *_rates(guarded[own], same[own]))
        )  # fmt: skip
    half = np.array([zlib.crc32(p.q1.encode()) % 2 for p in pairs]) == 0
    held_out, held_out_own = {}, {}  # on all pairs, and on the pairs the cache may serve (no personal question)
    for name, pick, report_on in (("first", half, ~half), ("second", ~half, half)):
        for out, subset in ((held_out, np.ones_like(own)), (held_out_own, own)):
            fit, check = pick & subset, report_on & subset
            scored = [(t, *_rates(decided(t)[0][fit], same[fit])) for t in thresholds]
            ok = [r for r in scored if r[2] <= max_wrong] or scored[-1:]
            t = max(ok, key=lambda r: (r[1], -r[0]))[0]
            out[name] = (t, *_rates(decided(t)[0][check], same[check]), int(check.sum()))
    rejected = [(p.q1, p.q2, r, float(s)) for p, r, s in zip(pairs, reasons, sims, strict=True) if r and not p.same]
    rejected.sort(key=lambda x: -x[3])
    details = {
        "pairs": len(pairs),
        "same": int(same.sum()),
        "personal": float(1 - own.mean()) if len(pairs) else 0.0,
        "reasons": Counter((r or "passed").split(" ")[0] for r in reasons),
        "rejected_examples": rejected[:8],
        "held_out": held_out,
        "held_out_own": held_out_own,
        "max_wrong": max_wrong,
    }
    return rows, details


def _rates(hit, same) -> tuple[float, float]:
    hits = int(hit.sum())
    return float((hit & same).sum() / max(1, same.sum())), float((hit & ~same).sum() / max(1, hits))


def run(files: list[tuple[Path, str]], *, sample: int = 4000, seed: int = 0, say=print) -> dict:
    """Evaluate each file; returns {file: (rows, details)}. Callable from `kb eval`."""
    from kb_assistant.cache import similarity_threshold
    from kb_assistant.embeddings import make_embeddings
    from kb_assistant.glossary import load_glossary
    from kb_assistant.settings import Settings

    settings = Settings()
    embeddings = make_embeddings(settings)
    glossary = load_glossary(settings.glossary_builtin, settings.glossary_files)
    results = {}
    for path, lang in files:
        if not path.exists():
            say(f"skipped {path}: not found (the public datasets live in ../shared/datasets)")
            continue
        pairs = load_pairs(path)
        if sample and len(pairs) > sample:
            pairs = random.Random(seed).sample(pairs, sample)
            say(f"{path.name}: a fixed random sample of {sample} pairs (seed {seed})")
        faq = path.parent / "faq_covidbert.csv"
        answers: dict[str, str] = {}
        if lang == "en" and faq.exists():
            with faq.open(encoding="utf-8", newline="") as f:
                faq_rows = list(csv.DictReader(f))
            idf = idf_from_texts([r["question"] + "\n" + r["answer"] for r in faq_rows])
            answers = {r["question"].strip(): r["answer"] for r in faq_rows}  # what seeding with question 1 caches
        else:
            idf = idf_from_texts([p.q1 for p in pairs] + [p.q2 for p in pairs])
        rows, details = evaluate_pairs(
            pairs, embeddings, idf, max_wrong=MAX_WRONG.get(lang, 0.01), answers=answers, glossary=glossary
        )
        say(report(path.name, lang, rows, details, similarity_threshold(settings, lang)))
        results[str(path)] = (rows, details)
    return results


def report(name: str, lang: str, rows: list[Row], details: dict, default: float) -> str:
    lines = [
        f"\n{name} ({lang}): {details['pairs']} pairs, {details['same']} same-question; "
        f"{details['personal']:.0%} involve a personal question (never cached)",
        "threshold | hit rate | wrong-hit rate | hits | wrong | without guard: hit, wrong | no personal q.: hit, wrong",
    ]
    for r in rows:
        mark = "  <- default" if abs(r.threshold - default) < 1e-9 else ""
        lines.append(
            f"   {r.threshold:.2f}   |  {r.hit_rate:6.1%} |     {r.wrong_hit_rate:6.1%}     | {r.hits:4d} "
            f"| {r.wrong:4d}  |     {r.raw_hit_rate:6.1%}, {r.raw_wrong_hit_rate:6.1%}    |     "
            f"{r.own_hit_rate:6.1%}, {r.own_wrong_hit_rate:6.1%}{mark}"
        )
    for key, which in (("held_out", "pairs"), ("held_out_own", "pairs without a personal question")):
        for half, (t, hit, wrong, n) in details.get(key, {}).items():
            other = "second" if half == "first" else "first"
            lines.append(
                f"held out ({which}): threshold chosen on the {half} half ({t:.2f}: highest hit rate with wrong "
                f"hits <= {details['max_wrong']:.0%}) gives on the {other} half ({n} pairs) hit rate {hit:.1%}, "
                f"wrong-hit rate {wrong:.1%}"
            )
    lines.append("guard outcome per pair: " + ", ".join(f"{k} {v}" for k, v in details["reasons"].most_common()))
    lines.append("rejected near-miss pairs (different questions, highest similarity first):")
    lines += [f"  {s:.2f}  {a}  |  {b}  -> {r}" for a, b, r, s in details["rejected_examples"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", action="append", help="FILE:LANG (en or zh); repeatable. Default: ../shared sets")
    parser.add_argument("--sample", type=int, default=4000, help="Pairs per file at most (0 = all).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run(parse_pair_files(args.pairs) if args.pairs else DEFAULT_FILES, sample=args.sample, seed=args.seed)


def parse_pair_files(specs: list[str]) -> list[tuple[Path, str]]:
    """``FILE:LANG`` specs; a missing file or a language other than en/zh is an error naming it."""
    from kb_assistant.errors import KBError

    files = []
    for spec in specs:
        path, _, lang = spec.rpartition(":")
        if not path or lang not in ("en", "zh"):
            raise KBError(f"--cache-pairs {spec!r}: use FILE:LANG with LANG en or zh, e.g. pairs.csv:en")
        if not Path(path).is_file():
            raise KBError(f"--cache-pairs {spec!r}: {path} is not a file")
        files.append((Path(path), lang))
    return files


if __name__ == "__main__":
    main()
