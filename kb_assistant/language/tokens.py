"""Tokens: jieba for Chinese runs (search mode, in Simplified characters), words for Latin; stopwords (the lists in
``wordlists/``), sentences, and the terms a question is searched by."""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

from kb_assistant.language.scripts import CJK, CJK_RANGE, to_simplified

# Bump when tokenize() changes what it returns for a text: indexes keep tokens, and must re-tokenize (2: Chinese in
# Simplified characters).
TOKENIZER_VERSION = "2"
_WORDLISTS = Path(__file__).resolve().parent / "wordlists"
_LATIN_WORD = re.compile(r"[a-z0-9]+(?:[.:'’-][a-z0-9]+)*")
_CJK_RUN = re.compile(f"([{CJK_RANGE}]+)")
# Sentence ends: Chinese full-width marks always; Latin marks only before whitespace/end (keeps 1.5, 10:00).
_SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=[.;])(?=\s)|\n+")


def _word_list(name: str) -> frozenset[str]:
    lines = (line.strip() for line in (_WORDLISTS / name).read_text(encoding="utf-8").splitlines())
    return frozenset(w for w in lines if w and not w.startswith("#"))


EN_STOPWORDS = _word_list("stopwords_en.txt")
ZH_STOPWORDS = _word_list("stopwords_zh.txt")
# What a question word asks for, as words an answer would contain ("几点上班" → a 时间).
QUESTION_HINTS = {
    "几点": ("时间",),
    "什么时候": ("时间",),
    "几号": ("日",),
    "多久": ("天",),
    "多长": ("天",),
    "多少天": ("天",),
    "when": ("time",),
    "deadline": ("within", "days"),
}


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Lower-cased word tokens: jieba for Chinese runs (search mode, in Simplified characters), words for Latin."""
    return list(_tokenize_cached(text, keep_stopwords))


@lru_cache(maxsize=8192)
def _tokenize_cached(text: str, keep_stopwords: bool) -> tuple[str, ...]:
    # Rerank and extractive answers score the same question and passages many times per query.
    tokens: list[str] = []
    for run in _CJK_RUN.split(text.lower()):
        if not run:
            continue
        if CJK.match(run):  # one script for every Chinese token: jieba's dictionary and the glossary are Simplified
            tokens.extend(t for t in _jieba().lcut_for_search(to_simplified(run)) if t.strip())
        else:
            tokens.extend(_LATIN_WORD.findall(run))
    if keep_stopwords:
        return tuple(tokens)
    return tuple(t for t in tokens if t.replace("’", "'") not in EN_STOPWORDS and t not in ZH_STOPWORDS)


def split_sentences(text: str) -> list[str]:
    """Sentences, keeping their closing punctuation; never splits inside 10:00 or 1.5."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def query_terms(question: str) -> list[str]:
    """Content tokens of a question plus what its question words ask for; what keyword search matches on."""
    raw = tokenize(question, keep_stopwords=True)
    hints = [h for t in raw for h in QUESTION_HINTS.get(t, ())]
    return list(dict.fromkeys(tokenize(question) + hints))
