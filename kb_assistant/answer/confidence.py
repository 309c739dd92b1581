"""How sure the assistant is that its best passages answer the question: 0..1, higher = more confident.

``evidence_features`` measures what any KB gives (no rule about one document, no word list): how much of the
question's IDF-weighted vocabulary the best passage covers, and its best window of consecutive sentences (an
answer sits in a sentence or two, not spread over a whole chunk); dense similarity (per language: MiniLM's
similarities mean little for Chinese); whether dense and keyword retrieval agree on the best passage; its lead
over the next passage, counted in proportion to the KB's size (a small KB's best passage leads by a lot whatever
it says); the share of the question's weight on words the KB never uses; glossary concepts the KB never says
(``KnowledgeBase.missing_concepts``); the question's language and whether the passage is in another one.

With ``KB_CONFIDENCE_MODEL=fitted``, ``answer_confidence`` turns them into the probability of a model fitted on real
documents — the
shared policy PDFs (correct vs wrong answers), the golden set and the refusal hold-outs (answerable vs not), CMRC /
DRCD (answerable) — by ``python -m eval.calibrate``, which writes ``confidence_model.json`` beside this module:
standardisation, coefficients and the default threshold, chosen on the fitting data and reported on held-out
folds (eval/README.md, "Confidence: a fitted model"). The default stays the hand-weighted mix of coverage and
dense similarity (``EVIDENCE_WEIGHTS``): the fitted model does not yet keep the golden set's refusal gate at any
threshold (the figures are in eval/README.md). A cross-encoder's score is not among the fitted features: with
KB_RERANKER_MODEL set the confidence is the cross-encoder mix it always was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from kb_assistant.language import detect_language, query_terms, split_sentences
from kb_assistant.rerank import weighted_coverage
from kb_assistant.schema import Candidate

MODEL_FILE = Path(__file__).with_name("confidence_model.json")
WINDOW_SENTENCES = 3  # the best run of up to this many consecutive sentences of a passage
PASSAGES_READ = 3  # the passages the extractive answer draws on
UNKNOWN_WEIGHT = 4.0  # what a word the KB never uses weighs in coverage (``rerank.weighted_coverage``)
TYPICAL_LEAD = 0.1  # a lead nothing can be read from (a KB of one chunk) counts as this: the sets' mean is ~0.1
LARGE_KB = 1000  # chunks from which a passage's lead counts in full (log scale: 10 chunks count a third)
FEATURES = (
    "coverage",  # IDF-weighted share of the question the best passage holds
    "window",  # the same, of its best window of consecutive sentences (with its heading)
    "window_top3",  # the best window among the passages the answer reads
    "coverage_lead",  # best passage's coverage minus the best among the others (KB-size weighted, ``_sized``)
    "dense_en",  # dense similarity of the best passage, English (0 for Chinese)
    "dense_zh",  # the same, Chinese (0 for English)
    "zh",  # the question or the passage is Chinese
    "cross_language",  # the question is in one language, the passage in the other
    "dense_agrees",  # dense retrieval also rates the best passage highest of those shown
    "keyword_agrees",  # so does keyword retrieval
    "margin",  # lead of the best passage's score over the next (KB-size weighted, ``_sized``)
    "unknown",  # share of the question's weight on words the KB never uses
    "missing",  # the question names a workplace concept the KB never says
    "terms",  # log(1 + content words of the question)
    "same_document",  # share of the passages shown that come from the best passage's document
    "rivals",  # share of the passages shown covering the question within RIVAL_GAP of the best one (itself too)
    "coverage_known",  # coverage of the part of the question the KB can cover at all (its words the KB uses)
    "window_known",  # the same for the best window of the passages the answer reads
)
RIVAL_GAP = 0.1
# The hand-weighted confidence (KB_CONFIDENCE_MODEL=weighted, the default): (coverage, dense similarity) of the
# best passage per language — MiniLM's similarities mean little for Chinese, so there coverage carries the weight —
# kept at 0.3 of itself when the question names a workplace concept the KB never says ("公司有上下班班车吗" is well
# covered by a passage about 上下班 taxis). A lead over the next passage has no weight here: on a small KB the best
# passage leads by a lot whatever it says.
EVIDENCE_WEIGHTS = {"en": (0.5, 0.5), "zh": (0.85, 0.15)}
MISSING_CONCEPT_FACTOR = 0.3


def evidence_features(
    passages: Sequence[Candidate],
    lang: str,
    missing_concepts: Sequence[str] = (),
    *,
    question: str | None = None,
    stats=None,
    kb_size: int | None = None,
) -> dict[str, float]:
    """The features of ``FEATURES`` for the reranked ``passages`` (best first). Without ``question`` and ``stats``
    the window features fall back to the passage's coverage and ``unknown`` to 0; without ``kb_size`` the leads
    (score and coverage) say nothing, as in a KB of one chunk: they count as ``TYPICAL_LEAD``."""
    top = passages[0]
    coverage = _coverage(top)
    zh = (top.lang or lang) == "zh"
    q_lang = detect_language(question) if question else lang
    windows = [coverage]
    if question and stats is not None:
        windows = [best_window(question, c, stats) for c in passages[:PASSAGES_READ]]
    others = [_coverage(c) for c in passages[1:]]
    size = min(1.0, math.log10(kb_size) / math.log10(LARGE_KB)) if kb_size and kb_size > 1 else 0.0
    unknown = unknown_share(question, stats) if question and stats is not None else 0.0
    known = max(0.05, 1.0 - unknown)
    return {
        "coverage": coverage,
        "window": windows[0],
        "window_top3": max(windows),
        "coverage_lead": _sized(coverage - max(others, default=coverage), size),
        "dense_en": 0.0 if zh else top.dense,
        "dense_zh": top.dense if zh else 0.0,
        "zh": float(zh),
        "cross_language": float(q_lang != detect_language(top.chunk.search_text()[:400])),
        "dense_agrees": float(top.dense >= max(c.dense for c in passages)),
        "keyword_agrees": float(top.keyword >= max(c.keyword for c in passages)),
        "margin": _sized(top.score - passages[1].score if len(passages) > 1 else 0.0, size),
        "unknown": unknown,
        "missing": float(bool(missing_concepts)),
        "terms": math.log1p(len(set(query_terms(question)))) if question else 0.0,
        "same_document": sum(c.chunk.source == top.chunk.source for c in passages) / len(passages),
        "rivals": sum(_coverage(c) >= coverage - RIVAL_GAP for c in passages) / len(passages),
        "coverage_known": min(1.0, coverage / known),
        "window_known": min(1.0, max(windows) / known),
    }


def answer_confidence(passages: Sequence[Candidate], lang: str, missing_concepts: Sequence[str] = (), **how) -> float:
    """0..1 (see the module): ``assess`` without the features; ``how``: question, stats, kb_size, model."""
    return assess(passages, lang, missing_concepts, **how)[0]


def assess(
    passages: Sequence[Candidate],
    lang: str,
    missing_concepts: Sequence[str] = (),
    *,
    question: str | None = None,
    stats=None,
    kb_size: int | None = None,
    model: str = "weighted",
) -> tuple[float, dict[str, float] | None]:
    """(confidence, the features of the question's evidence); features are None without passages or with a
    cross-encoder, and with the "weighted" model (it does not read them; ``features_of`` computes them on demand).
    ``model`` (KB_CONFIDENCE_MODEL): "fitted" is the calibrated model of ``confidence_model.json``; "weighted" the
    hand-weighted mix of coverage and dense similarity the fitted one is measured against."""
    if not passages:
        return 0.0, None
    top = passages[0]
    factor = MISSING_CONCEPT_FACTOR if missing_concepts else 1.0
    dense = min(1.0, max(0.0, (top.dense - 0.25) / 0.45))
    if top.cross_encoder is not None:
        value = 0.5 * top.score + 0.3 * _coverage(top) + 0.2 * dense
        return round(min(1.0, max(0.0, value * factor)), 4), None
    if model == "fitted":
        features = evidence_features(
            passages, lang, missing_concepts, question=question, stats=stats, kb_size=kb_size
        )  # fmt: skip
        return round(predict(features), 4), features
    w_cov, w_dense = EVIDENCE_WEIGHTS["zh" if (top.lang or lang) == "zh" else "en"]
    return round(min(1.0, max(0.0, (w_cov * _coverage(top) + w_dense * dense) * factor)), 4), None


def features_of(passages: Sequence[Candidate], lang: str, missing_concepts: Sequence[str] = (), **how):
    """The features ``assess`` reads with the fitted model, or None where it reads none (no passages, a
    cross-encoder); ``how``: question, stats, kb_size."""
    if not passages or passages[0].cross_encoder is not None:
        return None
    return evidence_features(passages, lang, missing_concepts, **how)


def predict(features: dict[str, float], model: dict | None = None) -> float:
    """The model's probability for one question's features: the product of its parts' logistic probabilities
    (``scope``: the KB answers such a question at all; ``right``: this passage is the one that answers it)."""
    model = model or load_model()
    value = 1.0
    for part in model["parts"].values():
        z = part["intercept"]
        for name, mean, scale, coef in zip(part["features"], part["mean"], part["scale"], part["coef"], strict=True):
            z += coef * (features.get(name, 0.0) - mean) / scale
        value *= 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
    return value


@cache
def load_model() -> dict:
    """The fitted model (``python -m eval.calibrate`` writes it); a clear error if the file is damaged."""
    try:
        model = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
        for name, part in model["parts"].items():
            if not (len(part["features"]) == len(part["mean"]) == len(part["scale"]) == len(part["coef"])):
                raise ValueError(f"{name}: features, mean, scale and coef differ in length")
            float(part["intercept"])
        float(model["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RuntimeError(f"{MODEL_FILE}: not a confidence model ({e}); refit with: python -m eval.calibrate") from e
    return model


def calibrated_threshold() -> float:
    """The default answer threshold the calibration chose (KB_CONFIDENCE_THRESHOLD overrides it)."""
    return float(load_model()["threshold"])


def best_window(question: str, passage: Candidate, stats) -> float:
    """Coverage of the question by the passage's best run of up to ``WINDOW_SENTENCES`` consecutive sentences,
    read with the passage's heading (or FAQ question)."""
    chunk = passage.chunk
    head = chunk.question if chunk.kind == "faq" and chunk.question else chunk.section.rsplit(" > ", 1)[-1]
    parts = [s for line in (chunk.text or "").splitlines() for s in split_sentences(line)]
    best = 0.0
    for i in range(len(parts)):
        for size in range(1, WINDOW_SENTENCES + 1):
            if i + size > len(parts):
                break
            best = max(best, weighted_coverage(question, head + "\n" + " ".join(parts[i : i + size]), stats))
    return best


def unknown_share(question: str, stats) -> float:
    """Share of the question's IDF weight on words the KB never uses (each weighs ``UNKNOWN_WEIGHT``)."""
    terms = set(query_terms(question))
    weights = {t: stats.idf(t) or UNKNOWN_WEIGHT for t in terms}
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if not stats.idf(t)) / total if total else 0.0


def _sized(lead: float, size: float) -> float:
    """A lead, trusted in proportion to the KB-size factor; the rest of the way it is taken as ``TYPICAL_LEAD``."""
    return size * lead + (1 - size) * TYPICAL_LEAD


def _coverage(c: Candidate) -> float:
    return c.coverage if c.coverage is not None else c.keyword
