"""English word folding, two strengths, both here:

- ``stem``: Snowball's stemmer (Porter2, through PyStemmer), with the irregular plurals of people folded first
  (``wordlists/irregular_en.tsv``) and, on request, degrees of comparison. For comparing two texts symmetrically (the
  cache guard: is this question a rewording of that one; the LLM answer's grounding in its passages).
- ``fold_plural``: plurals and possessives only. For the glossary, whose concept found in a question is then looked
  for in the KB: Porter2's conflations there (a → AED, pay → PAYE, business → busy) make the assistant refuse
  questions the KB answers (measured: eval/README.md, "One stemmer").

Chinese and other non-ASCII tokens are left alone."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_WORDLISTS = Path(__file__).resolve().parent / "wordlists"


@lru_cache(maxsize=1)
def _irregular() -> dict[str, str]:
    pairs = (line.split("\t") for line in (_WORDLISTS / "irregular_en.tsv").read_text(encoding="utf-8").splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2 and not p[0].startswith("#")}


@lru_cache(maxsize=1)
def _snowball():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str, *, degree: bool = False) -> str:
    """rooms → room, policies → polici = policy's stem, working → work, employee's → employe, women → woman.

    ``degree``: a comparative or superlative Snowball leaves alone is folded too (warmer, warmest → warm): for
    comparing two questions, which differ in degree only when they ask about the same quality."""
    word = word.replace("’", "'")
    if word in _irregular():
        return _irregular()[word]
    if not word.isascii() or len(word) <= 3:  # Chinese; and acronyms and short words Snowball would cut (AED → a)
        return word
    stemmed = _snowball().stemWord(word)
    if degree and stemmed == word:
        for suffix in ("est", "er"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                return _snowball().stemWord(word[: -len(suffix)])
    return stemmed


def fold_plural(word: str) -> str:
    """Plural and possessive folded: rooms → room, policies → policy, employee's → employee."""
    word = word.replace("’", "'").removesuffix("'s")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word
