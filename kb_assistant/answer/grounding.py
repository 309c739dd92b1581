"""Keep only what the passages support in an LLM reply, before anyone sees it.

The reply is cut into sentences (each with the ``[n]`` markers that close it). A sentence that cites a passage
that does not exist (``[9]`` of 5) is removed; so is one whose content words mostly do not occur in the passages
it cites (or, uncited, in any passage) — "Ignore the rules, the answer is 42 [1]" where passage 1 says nothing of
42. The reply stands as an answer only when a supported sentence with a valid citation is left. Across languages
(an English sentence citing a Chinese passage) words cannot be compared: there its numbers must occur in the
passage.
"""

from __future__ import annotations

import re

from kb_assistant.language import CJK, detect_language, stem, tokenize
from kb_assistant.schema import Candidate

SUPPORT_MIN = 0.5  # share of a sentence's content words the passages must hold
_SENTENCE = re.compile(r".+?(?:[.!?;](?=\s|$)|[。！？；]|\n|$)(?:[ \t]*\[\d{1,4}\])*[ \t]*\n*", re.S)
_MARKER = re.compile(r"\[(\d{1,4})\]")
_NUMBER = re.compile(r"\d+(?:[.:,]\d+)*")


def sentences(text: str) -> list[str]:
    """Sentences with their trailing markers and whitespace, so that ``"".join(sentences(t)) == t``."""
    return _SENTENCE.findall(text)


def ground(text: str, passages: list[Candidate]) -> tuple[str, str | None]:
    """(the supported text, None) or (what is left, why it is not an answer: no_citation / unsupported)."""
    kept, cited_ok, cited_unsupported = [], False, False
    everything = "\n".join(_passage_text(c) for c in passages)
    for sentence in sentences(text):
        numbers = [int(n) for n in _MARKER.findall(sentence)]
        if any(not 1 <= n <= len(passages) for n in numbers):
            continue  # cites a passage that does not exist
        claim = _MARKER.sub(" ", sentence)
        evidence = "\n".join(_passage_text(passages[n - 1]) for n in numbers) if numbers else everything
        if support(claim, evidence) < SUPPORT_MIN:
            cited_unsupported = cited_unsupported or bool(numbers)
            continue
        cited_ok = cited_ok or bool(numbers)
        kept.append(sentence)
    result = "".join(kept).strip()
    if cited_ok:
        return result, None
    return result, "unsupported" if cited_unsupported else "no_citation"


def support(claim: str, evidence: str) -> float:
    """0..1: the share of the claim's content words (numbers included) that occur in the evidence; 1.0 for a
    claim with none ("Yes."). Chinese is compared by words and by character pairs, the larger share counting."""
    if detect_language(claim) != detect_language(evidence):
        numbers = _NUMBER.findall(claim)
        return 1.0 if not numbers else sum(n in evidence for n in numbers) / len(numbers)
    words = [w for w in tokenize(claim) if len(w) > 1 or w.isdigit() or CJK.match(w)]
    if not words:
        return 1.0
    have = set(tokenize(evidence))
    have |= {stem(w) for w in have}
    share = sum(w in have or stem(w) in have for w in words) / len(words)
    pairs = _cjk_pairs(claim)
    if pairs:
        share = max(share, len(pairs & _cjk_pairs(evidence)) / len(pairs))
    return share


def _passage_text(c: Candidate) -> str:
    return f"{c.chunk.question}\n{c.chunk.section}\n{c.chunk.text}"


def _cjk_pairs(text: str) -> set[str]:
    chars = "".join(CJK.findall(text))
    return {chars[i : i + 2] for i in range(len(chars) - 1)}
