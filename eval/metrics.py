"""Answer-quality metrics: token F1, keyword presence, faithfulness of cited sentences, refusal P/R, percentiles."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections import Counter

from kb_assistant.language import detect_language, normalise, split_sentences, tokenize
from kb_assistant.schema import Answer

_MARKER = re.compile(r"\[(\d{1,2})\]")


def answer_tokens(text: str) -> list[str]:
    """Words for English, characters for Chinese (the usual SQuAD / CMRC convention)."""
    text = _MARKER.sub(" ", text)
    if detect_language(text) == "zh":
        return [ch for ch in normalise(text)]
    return tokenize(text, keep_stopwords=True)


def token_f1(prediction: str, expected: str) -> float:
    pred, gold = answer_tokens(prediction), answer_tokens(expected)
    if not pred or not gold:
        return 0.0
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def keyword_present(prediction: str, expected: str) -> bool:
    """The expected answer text appears in the answer (ignoring case, spacing and punctuation)."""
    return bool(normalise(expected)) and normalise(expected) in normalise(prediction)


def faithfulness(answer: Answer, support: float = 0.6) -> tuple[int, int]:
    """(supported, total) cited sentences: a sentence is supported when at least ``support`` of its content
    tokens occur in the passage(s) it cites. Sentences without a marker are not counted here."""
    passages = {c.n: c.snippet for c in answer.passages} | {c.n: c.snippet for c in answer.citations}
    sentences: list[str] = []
    for sentence in split_sentences(answer.text):
        if sentences and not _MARKER.sub("", sentence).strip():
            sentences[-1] += sentence  # "… end. [1]": the marker belongs to the sentence before it
        else:
            sentences.append(sentence)
    supported = total = 0
    for sentence in sentences:
        marks = [int(n) for n in _MARKER.findall(sentence)]
        if not marks:
            continue
        total += 1
        words = set(tokenize(_MARKER.sub(" ", sentence)))
        if not words:
            supported += 1
            continue
        cited = set().union(*(set(tokenize(passages.get(n, ""))) for n in marks))
        if len(words & cited) / len(words) >= support:
            supported += 1
    return supported, total


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), 2)


def refusal_pr(rows: list[dict], threshold: float) -> tuple[float, float]:
    """Precision and recall of 'not answered' as a detector of unanswerable questions, at ``threshold``."""
    refused = [r for r in rows if not answered_at(r, threshold)]
    unanswerable = [r for r in rows if not r["answerable"]]
    true = [r for r in refused if not r["answerable"]]
    precision = len(true) / len(refused) if refused else 1.0
    recall = len(true) / len(unanswerable) if unanswerable else 1.0
    return round(precision, 4), round(recall, 4)


def answered_at(row: dict, threshold: float) -> bool:
    return row["answered_any"] and row["confidence"] >= threshold


# --- token presence (policy_pdfs): does an answer hold the words a right answer must contain -------------------
WINDOW = 600  # characters of a reply that count: what a reader takes in at a glance
CORRECT_SHARE, WRONG_SHARE = 0.8, 0.5
_SPACE = re.compile(r"\s+")


def presence_text(text: str) -> str:
    """The one normalisation both sides get: NFKC (folds ﬁ ﬂ ﬀ and full width), case-folded, whitespace as one
    space, citation markers out."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", _MARKER.sub(" ", text or "")).casefold()).strip()


def token_share(text: str, tokens: list[str], window: int = WINDOW) -> float:
    """Share of ``tokens`` found in the first ``window`` characters of ``text`` (normalised)."""
    head = presence_text(text)[:window]
    wanted = [t for t in dict.fromkeys(presence_text(t) for t in tokens) if t]
    return sum(1 for t in wanted if t in head) / len(wanted) if wanted else 0.0


def presence_verdict(share: float) -> str:
    """correct (≥ 80% of the tokens), wrong (under half), partial in between."""
    return "correct" if share >= CORRECT_SHARE else "wrong" if share < WRONG_SHARE else "partial"


def best_window(document: str, tokens: list[str], window: int = WINDOW) -> tuple[float, int]:
    """The best share any ``window``-character stretch of the (normalised) document holds, and where it starts.

    The ideal-extract ceiling: no extractive answer of that length can hold more of the tokens."""
    doc = presence_text(document)
    wanted = [t for t in dict.fromkeys(presence_text(t) for t in tokens) if t]
    if not wanted:
        return 0.0, 0
    hits = {t: [m.start() for m in re.finditer(re.escape(t), doc)] for t in wanted}
    best, where = 0, 0
    for start in sorted({p for positions in hits.values() for p in positions}):
        held = 0
        for t, positions in hits.items():
            i = bisect_left(positions, start)
            if i < len(positions) and positions[i] + len(t) <= start + window:
                held += 1
        if held > best:
            best, where = held, start
            if best == len(wanted):
                break
    return best / len(wanted), where
