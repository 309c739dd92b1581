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
the last two the guard passes (``guard_reason``: ``near_miss_reason`` and, in English, ``intent_reason``).
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
    (Path(__file__).resolve().parent / "datasets" / "policy_pdfs_cache_pairs.csv", "en"),
    (SHARED / "afqmc" / "train.csv", "zh"),
]
THRESHOLDS = [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]
FAQ_THRESHOLDS = [0.5, 0.55, *THRESHOLDS]  # answers drawn from one FAQ entry: the evidence is stronger
MAX_WRONG = {"en": 0.01, "zh": 0.10}  # the targets: the held-out check keeps wrong hits at most this


@dataclass
class Pair:
    q1: str
    q2: str
    same: bool
    group: str = ""  # pairs of one group stay in one half of the held-out split (default: question 1)


@dataclass(frozen=True)
class Evidence:
    """What the full pipeline (cache off) does with one question in the KB: what the cache would store for it
    (``cited``: the chunk ids its answer cites, None when it is not answered) and what the evidence check sees
    (``top``: the top passage after rerank, ``confidence``)."""

    cited: frozenset[str] | None
    top: str | None
    confidence: float
    answer: str = ""
    faq: str | None = None  # the FAQ entry the answer was drawn from (its first citation, when an FAQ entry)


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


def load_pairs(path: Path, symmetric: bool | None = None) -> list[Pair]:
    """``symmetric``: both wordings of a pair appear as question 1 (then the split groups by the pair, not by
    question 1)."""
    pairs = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            if len(row) < 3 or row[2].strip() not in ("0", "1"):
                continue  # header or a broken line
            a, b = row[0].strip(), row[1].strip()
            pairs.append(Pair(a, b, row[2].strip() == "1", group=a if symmetric is None else min(a, b)))
    return pairs


def idf_from_texts(texts: list[str]) -> Callable[[str], float]:
    """BM25-style IDF over texts (what the KB's keyword index gives the cache); 0 for an unknown token."""
    from kb_assistant.language import tokenize

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
    evidence: dict[str, Evidence] | None = None,
    confidence_threshold: float = 0.25,
    max_unmatched: float | None = None,
    faq_threshold: float = 1.0,
) -> tuple[list[Row], dict]:
    """Rows per threshold plus details: guard rejections by reason, personal share, examples, the held-out check.

    ``answers``: question 1 → the answer the cache would hold for it (the guard lets a swapped word pass when that
    answer says it); ``glossary``: the KB's synonym sets (the cache uses the KB's). ``evidence``: each question's
    outcome in the KB (``Evidence``); with it only pairs whose question 1 the pipeline answers (so the cache holds
    an entry) are scored, and a paraphrase is served only when question 2's top passage is one question 1's answer
    cited and its confidence clears ``confidence_threshold`` — the cache's evidence check. ``faq_threshold``
    (``cache_threshold_faq_en``): below the threshold, a pair whose question 1 was answered from one FAQ entry is
    served at this similarity when question 2's top passage is that entry and the answer types, numbers and negation
    agree; ``details["faq_curve"]`` varies it (the general threshold at ``thresholds``' last value, 1.0)."""
    import zlib

    import numpy as np

    from kb_assistant.cache.intent import WordVectors
    from kb_assistant.cache.keys import is_personal, normalize_question, wording_key
    from kb_assistant.language import tokenize

    dropped = 0
    if evidence is not None:
        kept = [p for p in pairs if evidence[p.q1].cited]
        dropped, pairs = len(pairs) - len(kept), kept
        answers = {p.q1: evidence[p.q1].answer for p in pairs}
    texts = list(dict.fromkeys([p.q1 for p in pairs] + [p.q2 for p in pairs]))
    vectors = dict(zip(texts, np.asarray(embeddings.embed_documents(texts), dtype=np.float32), strict=True))
    sims = np.array([float(vectors[p.q1] @ vectors[p.q2]) for p in pairs])
    same = np.array([p.same for p in pairs])
    exact = np.array([normalize_question(p.q1) == normalize_question(p.q2) for p in pairs])
    reworded = np.array([wording_key(p.q1) == wording_key(p.q2) for p in pairs])
    answers = answers or {}
    words = WordVectors(embeddings)
    words.vectors(sorted({t for text in texts for t in tokenize(text)}))  # in one batch, not one call per pair
    reasons = [guard_reason(p.q2, p.q1, idf, answers.get(p.q1, ""), glossary, words, max_unmatched) for p in pairs]
    passed = np.array([r is None for r in reasons])
    own = ~np.array([is_personal(p.q1) or is_personal(p.q2) for p in pairs])
    agree = np.ones_like(same)
    faq_served = np.zeros_like(same)  # may be served by the FAQ path: guard (types, numbers, negation) + evidence
    if evidence is not None:
        agree = np.array(
            [evidence[p.q2].top in evidence[p.q1].cited and evidence[p.q2].confidence >= confidence_threshold
             for p in pairs]
        )  # fmt: skip
        faq_served = np.array(
            [faq_path_serves(p.q2, evidence[p.q2], p.q1, evidence[p.q1], idf, glossary, words, confidence_threshold)
             for p in pairs]
        )  # fmt: skip

    def decided(t: float, ft: float = faq_threshold):
        similar = sims >= t if t < 1.0 else np.zeros_like(same)
        faq_similar = (sims >= ft) & ~similar if ft < 1.0 else np.zeros_like(same)
        served = exact | ((reworded | similar) & passed & agree) | (faq_similar & faq_served)
        return served, exact | reworded | similar | faq_similar

    rows = []
    for t in thresholds:
        guarded, raw = decided(t)
        rows.append(
            Row(t, *_rates(guarded, same), int(guarded.sum()), int((guarded & ~same).sum()), *_rates(raw, same),
                *_rates(guarded[own], same[own]))
        )  # fmt: skip
    half = np.array([zlib.crc32((p.group or p.q1).encode()) % 2 for p in pairs]) == 0
    held_out, held_out_own = {}, {}  # on all pairs, and on the pairs the cache may serve (no personal question)
    curves = {}  # half -> [(threshold, hit rate, wrong-hit rate, hits, wrong)] on the pairs the cache decides on
    for name, pick in (("first", half), ("second", ~half)):
        rows_half = pick & own
        curves[name] = [
            (t, *_rates(d[rows_half], same[rows_half]), int(d[rows_half].sum()), int((d & ~same)[rows_half].sum()))
            for t in thresholds
            for d in [decided(t)[0]]
        ]
    for name, pick, report_on in (("first", half, ~half), ("second", ~half, half)):
        for out, subset in ((held_out, np.ones_like(own)), (held_out_own, own)):
            fit, check = pick & subset, report_on & subset
            scored = [(t, *_rates(decided(t)[0][fit], same[fit])) for t in thresholds]
            ok = [r for r in scored if r[2] <= max_wrong] or scored[-1:]
            t = max(ok, key=lambda r: (r[1], -r[0]))[0]
            out[name] = (t, *_rates(decided(t)[0][check], same[check]), int(check.sum()))
    faq_curve = {}  # half -> [(FAQ threshold, hit rate, wrong-hit rate, hits, wrong)], general threshold 1.0
    for name, pick in (("all", np.ones_like(own)), ("first", half), ("second", ~half)):
        rows_half = pick & own
        faq_curve[name] = [
            (ft, *_rates(d[rows_half], same[rows_half]), int(d[rows_half].sum()), int((d & ~same)[rows_half].sum()))
            for ft in FAQ_THRESHOLDS
            for d in [decided(1.0, ft)[0]]
        ]
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
        "curves": curves,
        "faq_curve": faq_curve if evidence is not None and faq_served.any() else {},
        "dropped": dropped,  # pairs whose question 1 the KB does not answer: the cache holds nothing to serve
        "disagreed": int(((reworded | (sims >= min(thresholds))) & passed & ~agree).sum()),
    }
    return rows, details


def guard_reason(question: str, cached: str, idf, answer: str, glossary, words, max_unmatched=None) -> str | None:
    """What the cache's lookup asks of a paraphrase candidate besides similarity and evidence: the near-miss guard,
    then (English) that it asks what the cached question asked (``cache.intent``)."""
    from kb_assistant.cache.guard import near_miss_reason
    from kb_assistant.cache.intent import MAX_UNMATCHED, intent_reason

    reason = near_miss_reason(question, cached, idf, answer=answer, glossary=glossary)
    limit = MAX_UNMATCHED if max_unmatched is None else max_unmatched
    return reason or intent_reason(question, cached, idf, words=words, glossary=glossary, max_unmatched=limit)


def faq_path_serves(question: str, new: Evidence, cached: str, old: Evidence, idf, glossary, words, threshold) -> bool:
    """Whether the cache's FAQ path (``cache_threshold_faq_en``, similarity aside) serves ``cached``'s answer to
    ``question``: that answer was drawn from one FAQ entry, the question's own top passage is that entry with a
    confidence over the answer threshold, and the guard passes on answer types, numbers and negation."""
    return (
        old.faq is not None and new.top == old.faq and new.confidence >= threshold
        and guard_reason(question, cached, idf, old.answer, glossary, words, 1.0) is None
    )  # fmt: skip


def _rates(hit, same) -> tuple[float, float]:
    hits = int(hit.sum())
    return float((hit & same).sum() / max(1, same.sum())), float((hit & ~same).sum() / max(1, hits))


def run(
    files: list[tuple[Path, str]],
    *,
    sample: int = 4000,
    seed: int = 0,
    say=print,
    with_evidence: bool = True,
    off_kb: int = 150,
) -> dict:
    """Evaluate each file; returns {file: (rows, details)}. Callable from `kb eval`.

    With ``with_evidence`` the files with a KB (``KB_SOURCES``: the COVID FAQ table, the policy PDFs) are scored
    with the cache's evidence check: each question is asked once in that KB with the cache off (kept in
    ``<data>/eval/cache-*/evidence.json``), the threshold is chosen on one half of every such file at once and
    checked on the other halves, and ``off_kb`` questions of each of the other KBs are asked of a cache holding
    every answered question of this one (a question the KB has no entry for must never hit)."""
    from kb_assistant.cache.semantic import faq_threshold, similarity_threshold
    from kb_assistant.embeddings import make_embeddings
    from kb_assistant.glossary import load_glossary
    from kb_assistant.settings import Settings

    settings = Settings()
    embeddings = make_embeddings(settings)
    glossary = load_glossary(settings.glossary_builtin, settings.glossary_files)
    results, kbs = {}, {}
    for path, lang in files:
        if not path.exists():
            say(f"skipped {path}: not found (the public datasets live in ../shared/datasets)")
            continue
        pairs = load_pairs(path, symmetric=path.name == POLICY_PAIRS.name or None)
        if sample and len(pairs) > sample:
            pairs = random.Random(seed).sample(pairs, sample)
            say(f"{path.name}: a fixed random sample of {sample} pairs (seed {seed})")
        evidence, kb = None, None
        if with_evidence and path.name in KB_SOURCES and KB_SOURCES[path.name]().exists():
            kb = kbs[path.name] = EvidenceKB(settings, embeddings, KB_SOURCES[path.name](), say=say)
        elif with_evidence and lang == "zh":  # no KB comes with the pairs: an FAQ of their first questions
            kb = EvidenceKB(settings, embeddings, _faq_of_first_questions(settings, path, pairs, seed), say=say)
        if kb is not None:
            evidence = kb.evidence({q for p in pairs for q in (p.q1, p.q2)})
        faq = path.parent / "faq_covidbert.csv"
        answers: dict[str, str] = {}
        if kb is not None:
            idf = kb.idf
        elif lang == "en" and faq.exists():
            with faq.open(encoding="utf-8", newline="") as f:
                faq_rows = list(csv.DictReader(f))
            idf = idf_from_texts([r["question"] + "\n" + r["answer"] for r in faq_rows])
            answers = {r["question"].strip(): r["answer"] for r in faq_rows}  # what seeding with question 1 caches
        else:
            idf = idf_from_texts([p.q1 for p in pairs] + [p.q2 for p in pairs])
        rows, details = evaluate_pairs(
            pairs, embeddings, idf, max_wrong=MAX_WRONG.get(lang, 0.01), answers=answers,
            glossary=kb.glossary if kb else glossary, evidence=evidence,
            confidence_threshold=settings.confidence_threshold, max_unmatched=settings.cache_max_unmatched_en,
            faq_threshold=faq_threshold(settings, lang),
        )  # fmt: skip
        details["evidence"] = evidence is not None
        say(report(path.name, lang, rows, details, similarity_threshold(settings, lang)))
        results[str(path)] = (rows, details)
    with_kb = {k: v for k, v in results.items() if v[1].get("evidence")}
    if len(with_kb) > 1:
        say(joint_choice(with_kb, similarity_threshold(settings, "en")))
    for name, kb in kbs.items():
        others = [q for other, okb in kbs.items() if other != name for q in okb.sample_questions(off_kb, seed)]
        if others:
            say(kb.off_kb_report(others, embeddings, settings.confidence_threshold, settings.cache_max_unmatched_en,
                                 faq_threshold(settings, "en")))  # fmt: skip
    return results


def joint_choice(results: dict, default: float, max_wrong: float = 0.01) -> str:
    """The threshold chosen on one half of every file at once (the highest mean hit rate whose wrong hits stay
    within ``max_wrong`` on each file's half), and its figures on each file's other half."""
    lines = ["\nthreshold chosen on the tuning halves of all English sets with a KB at once, checked on the others:"]
    names = {k: Path(k).name for k in results}
    for tune, check in (("first", "second"), ("second", "first")):
        curves = {k: {r[0]: r for r in v[1]["curves"][tune]} for k, v in results.items()}
        thresholds = sorted(next(iter(curves.values())))
        ok = [t for t in thresholds if all(c[t][2] <= max_wrong for c in curves.values())] or [1.0]
        t = max(ok, key=lambda t: (sum(c[t][1] for c in curves.values()), -t))
        parts = []
        for k, v in results.items():
            held = {r[0]: r for r in v[1]["curves"][check]}[t]
            parts.append(f"{names[k]}: hit {held[1]:.1%}, wrong {held[2]:.1%} ({held[4]} of {held[3]} hits)")
        lines.append(f"  tuned on the {tune} halves -> {t:.2f}; on the {check} halves: " + "; ".join(parts))
    lines.append(f"  (the default in use: {default:.2f})")
    return "\n".join(lines)


SHARED_POLICY = SHARED / "policy_pdfs"
POLICY_PAIRS = Path(__file__).resolve().parent / "datasets" / "policy_pdfs_cache_pairs.csv"
KB_SOURCES = {  # pair file -> where its KB comes from
    "eval_question_similarity_en.csv": lambda: SHARED / "covid_faq" / "faq_covidbert.csv",
    POLICY_PAIRS.name: lambda: SHARED_POLICY,
}


class EvidenceKB:
    """The KB a pair file's questions are asked in (built once under the data dir) and each question's outcome."""

    def __init__(self, settings, embeddings, source: Path, say=print):
        import json

        from kb_assistant.assistant import Assistant
        from kb_assistant.store import KnowledgeBase

        self.source = source
        self.name = source.parent.name.removeprefix("cache-") if source.name == "faq.csv" else source.stem
        data_dir = settings.data_dir / "eval" / f"cache-{self.name}"
        self.settings = settings.model_copy(update={"data_dir": data_dir, "cache_enabled": False})
        marker = data_dir / "built"
        if not marker.exists():
            say(f"building the '{self.name}' KB for the cache check in {data_dir} (once) …")
            index = KnowledgeBase(self.settings, "eval", embeddings)
            _build(index, self.source)
            marker.write_text("built\n", encoding="utf-8")
        self.assistant = Assistant(self.settings, embeddings=embeddings)
        self.index = self.assistant.index("eval")
        self.glossary = self.index.glossary
        self.idf = self.index.stats.idf
        self._memo_path = data_dir / "evidence.json"
        self._memo = json.loads(self._memo_path.read_text(encoding="utf-8")) if self._memo_path.exists() else {}
        self.questions = self._own_questions()

    def evidence(self, questions) -> dict[str, Evidence]:
        import json

        from kb_assistant.cache.semantic import faq_entry

        todo = [q for q in sorted(questions) if "faq" not in self._memo.get(q, {})]  # (older memos lack "faq")
        memo = getattr(self.assistant.embeddings, "_memo", None)  # the model's query memo (QueryMemo)
        for i, q in enumerate(todo):
            if memo is not None and i % 256 == 0:  # one question at a time the model is ~10x slower than batched
                batch = todo[i : i + 256]
                memo.update(zip(batch, self.assistant.embeddings.embed_documents(batch), strict=True))
            a = self.assistant.ask(q, kb="eval")
            self._memo[q] = {
                "cited": sorted({c.chunk_id for c in a.citations}) if a.answered and a.citations else None,
                "faq": faq_entry(self.index, a) if a.answered else None,
                "top": a.passages[0].chunk_id if a.passages else None,
                "confidence": a.confidence,
                "answer": a.text if a.answered else "",
            }
            if i % 100 == 99 or i == len(todo) - 1:
                self._memo_path.write_text(json.dumps(self._memo, ensure_ascii=False), encoding="utf-8")
        return {
            q: Evidence(frozenset(m["cited"]) if m["cited"] else None, m["top"], m["confidence"], m["answer"], m["faq"])
            for q, m in self._memo.items()
            if q in questions
        }

    def _own_questions(self) -> list[str]:
        if self.source.is_dir():
            found = []
            for f in sorted(self.source.glob("*.csv")):
                with f.open(encoding="utf-8", newline="") as fh:
                    found += [r["question"].strip() for r in csv.DictReader(fh)]
        else:
            with self.source.open(encoding="utf-8", newline="") as fh:
                found = [r["question"].strip() for r in csv.DictReader(fh)]
        return list(dict.fromkeys(q for q in found if q))

    def sample_questions(self, n: int, seed: int) -> list[str]:
        qs = self.questions
        return random.Random(seed).sample(qs, min(n, len(qs)))

    def off_kb_report(
        self, foreign: list[str], embeddings, confidence_threshold: float, max_unmatched=None, faq_threshold=1.0
    ) -> str:
        """Questions of other KBs asked of a cache holding every answered question of this one: hits per threshold
        (every one is a question this KB has no entry for)."""
        import numpy as np

        from kb_assistant.cache.intent import WordVectors
        from kb_assistant.cache.keys import normalize_question, wording_key
        from kb_assistant.language import tokenize

        words = WordVectors(embeddings)

        own = self.evidence(set(self.questions))
        stored = [q for q in self.questions if own[q].cited]
        words.vectors(sorted({t for q in [*stored, *foreign] for t in tokenize(q)}))  # in one batch
        theirs = self.evidence(set(foreign))
        sv = np.asarray(embeddings.embed_documents(stored), dtype=np.float32)
        fv = np.asarray(embeddings.embed_documents(foreign), dtype=np.float32)
        sims = fv @ sv.T
        keys = {normalize_question(q) for q in stored}
        wording = {}
        for i, q in enumerate(stored):
            wording.setdefault(wording_key(q), []).append(i)
        lines = [f"\nquestions from other KBs ({len(foreign)}) asked of a cache holding all {len(stored)} answered "
                 f"questions of '{self.name}' (any hit is a question the KB has no entry for):"]  # fmt: skip
        for t in THRESHOLDS:
            hits = raw = 0
            for i, q in enumerate(foreign):
                if normalize_question(q) in keys:
                    hits += 1
                    continue
                near = set(wording.get(wording_key(q), [])) | (set(np.nonzero(sims[i] >= t)[0]) if t < 1 else set())
                raw += bool(near)
                ev = theirs[q]
                for j in sorted(near, key=lambda j: -sims[i, j])[:5]:
                    agrees = ev.top in own[stored[j]].cited and ev.confidence >= confidence_threshold
                    guard = guard_reason(q, stored[j], self.idf, own[stored[j]].answer, self.glossary, words,
                                         max_unmatched)  # fmt: skip
                    if agrees and guard is None:
                        hits += 1
                        break
            lines.append(f"  threshold {t:.2f}: {hits} hits (a similar entry without guard and evidence: {raw})")
        if faq_threshold < 1.0:  # the FAQ path on its own (general threshold 1.0)
            hits = 0
            for i, q in enumerate(foreign):
                ev = theirs[q]
                for j in np.nonzero(sims[i] >= faq_threshold)[0]:
                    cached, t = stored[j], confidence_threshold
                    if faq_path_serves(q, ev, cached, own[cached], self.idf, self.glossary, words, t):
                        hits += 1
                        break
            lines.append(f"  FAQ answers at cache_threshold_faq_en {faq_threshold:.2f}: {hits} hits")
        return "\n".join(lines)


def cache_on_off(ds, settings, kb: str, embeddings, off_rows: list[dict], user_settings, say=print) -> dict:
    """`kb eval --cache-compare`: the questions asked in order with the cache on (cold at the start; the set's own
    repeats and paraphrases hit), then all of them once more (every one may now hit), each scored beside the cache-off
    run ``off_rows``. With token-presence scoring the shares correct / partial / wrong / refused, else answer rate."""
    from eval import runner
    from kb_assistant.assistant import Assistant

    threshold = user_settings.confidence_threshold
    on = {"cache_enabled": True, "confidence_threshold": threshold}  # what a user runs: the real answer threshold
    Assistant(settings.model_copy(update=on), embeddings=embeddings).cache.clear(kb)
    passes = {"cache off": off_rows}
    for name in ("cache on, first pass", "cache on, asked again"):
        passes[name] = runner.run(ds, settings, kb=kb, embeddings=embeddings, overrides=on)
    scored = "verdict" in off_rows[0] if off_rows else False

    def shares(rows: list[dict]) -> dict:
        if scored:
            return runner.presence_summary(rows, threshold)
        right = sum(_verdict(r, threshold) == "correct" for r in rows) / max(1, len(rows))
        return {"answer_rate": runner.summarise(rows, threshold)["answer_rate"], "right_first": right}

    out = {}
    lines = ["\nsemantic cache on vs off (questions in order; the second pass asks them all again):"]
    for name, rows in passes.items():
        hits = [i for i, r in enumerate(rows) if r.get("cached")]
        changed = [i for i in hits if _verdict(rows[i], threshold) != _verdict(off_rows[i], threshold)]
        worse = [i for i in changed if _rank(rows[i], threshold) < _rank(off_rows[i], threshold)]
        ms = sorted(r["timings_ms"].get("total", 0.0) for r in rows)
        out[name] = {**shares(rows), "hits": len(hits), "changed": len(changed), "worse": len(worse),
                     "p50_ms": ms[len(ms) // 2] if ms else 0.0}  # fmt: skip
        figures = ", ".join(f"{k} {v:.1%}" for k, v in shares(rows).items() if k != "scored")
        lines.append(f"  {name}: {figures}; {len(hits)} cached answers, {len(changed)} scored differently from the "
                     f"cache-off answer ({len(worse)} worse); median {out[name]['p50_ms']:.0f} ms")  # fmt: skip
        out[name]["worse_examples"] = [(rows[i]["question"], off_rows[i]["answer"][:200], rows[i]["answer"][:200])
                                       for i in worse[:5]]  # fmt: skip
    key = "correct" if scored else "right_first"  # answered with the right passage first
    delta = (out["cache on, first pass"][key] - out["cache off"][key]) * 100
    lines.append(f"  {key}: cache on minus off, first pass {delta:+.1f} points")
    for name in ("cache on, first pass", "cache on, asked again"):
        for q, before, after in out[name]["worse_examples"]:
            lines.append(f"  worse ({name}): {q!r}: off {before!r} -> on {after!r}")
    say("\n".join(lines))
    return out


def remember_query_vectors(embeddings, questions: list[str]) -> None:
    """Embed ``questions`` in batches into the model's query memo (QueryMemo, up to its size), so a run that asks
    them one by one does not pay the ~10x slower one-at-a-time embedding. A no-op for other Embeddings."""
    memo = getattr(embeddings, "_memo", None)
    if memo is None:
        return
    todo = list(dict.fromkeys(questions))[:1000]
    memo.update(zip(todo, embeddings.embed_documents(todo), strict=True))


_RANK = {"correct": 3, "partial": 2, "refused": 1, "wrong": 0}


def _verdict(row: dict, threshold: float):
    """Token presence: its verdict. Otherwise (an FAQ or golden set): "correct" when answered with the right
    passage first — a cached answer of another question cites another entry — "wrong" when answered from another
    passage first, "refused" when not answered."""
    from eval.metrics import answered_at

    if "verdict" in row:
        return row["verdict"] if answered_at(row, threshold) else "refused"
    if not answered_at(row, threshold):
        return "refused"
    return "correct" if row.get("rank") == 1 else "wrong"


def _rank(row: dict, threshold: float) -> int:
    return _RANK[_verdict(row, threshold)]


def _faq_of_first_questions(settings, path: Path, pairs: list[Pair], seed: int) -> Path:
    """A stand-in KB for pairs that come without one (AFQMC): one FAQ entry per first question, answered by
    itself, so a second question's evidence agrees exactly when its own retrieval tops its pair's entry."""
    folder = settings.data_dir / "eval" / f"cache-{path.parent.name}-{len(pairs)}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    faq = folder / "faq.csv"
    if not faq.exists():
        with faq.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["question", "answer"])
            w.writerows((q, q) for q in dict.fromkeys(p.q1 for p in pairs))
    return faq


def _build(index, source: Path) -> None:
    """The FAQ table as one chunk per entry, or the PDFs of a folder (its CSV answer keys left out)."""
    import shutil
    import tempfile

    from ingest.pipeline import ingest_paths

    if source.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            for pdf in sorted(source.glob("*.pdf")):
                shutil.copy(pdf, tmp)
            report = ingest_paths(index.settings, [Path(tmp)], index.name)
            if not report.ok:
                raise RuntimeError(f"{source}: {report.failed}")
        return
    from ingest.chunking import chunk_document
    from ingest.loaders import load_document

    index.add(chunk_document(load_document(source, max_bytes=10**9), source.name, chunk_size=10**6))


def report(name: str, lang: str, rows: list[Row], details: dict, default: float) -> str:
    lines = [
        f"\n{name} ({lang}): {details['pairs']} pairs, {details['same']} same-question; "
        f"{details['personal']:.0%} involve a personal question (never cached)"
        + (
            f"; with the evidence check in its KB ({details['dropped']} pairs left out: the KB does not answer "
            "question 1, so the cache holds nothing for it)"
            if details.get("evidence")
            else "; no KB: the guard alone, without the evidence check"
        ),
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
    curve = details.get("faq_curve") or {}
    if curve:
        lines.append("answers drawn from one FAQ entry, general threshold 1.00, FAQ threshold (cache_threshold_faq_en) "
                     "on the pairs without a personal question: hit rate, wrong-hit rate (hits, wrong)")  # fmt: skip
        for i, row in enumerate(curve["all"]):
            halves = "; ".join(f"{h} half {curve[h][i][1]:.1%}, {curve[h][i][2]:.1%} ({curve[h][i][3]}, "
                               f"{curve[h][i][4]})" for h in ("first", "second"))  # fmt: skip
            lines.append(f"   {row[0]:.2f}: {row[1]:.1%}, {row[2]:.1%} ({row[3]}, {row[4]}); {halves}")
        for tune, check in (("first", "second"), ("second", "first")):
            ok = [r for r in curve[tune] if r[2] <= details["max_wrong"]] or curve[tune][-1:]
            t = max(ok, key=lambda r: (r[1], -r[0]))[0]
            held = {r[0]: r for r in curve[check]}[t]
            lines.append(f"held out (FAQ answers): chosen on the {tune} half {t:.2f}; on the {check} half hit rate "
                         f"{held[1]:.1%}, wrong-hit rate {held[2]:.1%} ({held[4]} of {held[3]} hits)")  # fmt: skip
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
