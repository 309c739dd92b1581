"""Language-aware text primitives shared by chunking, keyword search and extractive answers."""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

# Bump when tokenize() changes what it returns for a text: indexes keep tokens, and must re-tokenize (2: Chinese in
# Simplified characters).
TOKENIZER_VERSION = "2"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-z0-9]+(?:[.:'’-][a-z0-9]+)*")
_NOT_WORD = re.compile(r"[\W_]+")
# Sentence ends: Chinese full-width marks always; Latin marks only before whitespace/end (keeps 1.5, 10:00).
_SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=[.;])(?=\s)|\n+")

EN_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "from",
        "by",
        "with",
        "about",
        "into",
        "over",
        "under",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "there",
        "here",
        "any",
        "some",
        "much",
        "many",
        "more",
        "most",
        "very",
        "so",
        "than",
        "too",
        "also",
        "just",
        "not",
        "no",
        "nor",
        "only",
        "own",
        "same",
        "such",
        "then",
        "once",
        "s",
        "t",
        "don",
        "get",
        "got",
        "let",
        "please",
        "tell",
        "know",
        "want",
        "need",
        # contractions and fillers: "Can I use my leave while I'm still on probation?" is about use, leave, probation
        "i'm",
        "i've",
        "i'd",
        "i'll",
        "you're",
        "you've",
        "it's",
        "what's",
        "that's",
        "there's",
        "don't",
        "doesn't",
        "didn't",
        "can't",
        "isn't",
        "aren't",
        "won't",
        "while",
        "still",
        "yet",
        "really",
        "his",
        "her",
        "him",
    ]
)
ZH_STOPWORDS = frozenset(
    [
        "的",
        "了",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "么",
        "嘛",
        "是",
        "在",
        "有",
        "和",
        "与",
        "及",
        "或",
        "就",
        "都",
        "也",
        "还",
        "又",
        "把",
        "被",
        "让",
        "给",
        "对",
        "从",
        "向",
        "到",
        "为",
        "以",
        "于",
        "之",
        "其",
        "这",
        "那",
        "这个",
        "那个",
        "哪",
        "哪些",
        "什么",
        "怎么",
        "怎样",
        "如何",
        "多少",
        "几",
        "个",
        "我",
        "我们",
        "你",
        "你们",
        "他",
        "她",
        "它",
        "他们",
        "请问",
        "请",
        "一下",
        "可以",
        "能",
        "能否",
        "会",
        "要",
        "需要",
        "吗？",
        "？",
        "，",
        "。",
        "！",
        "、",
        "：",
        "；",
        "“",
        "”",
        "（",
        "）",
        "《",
        "》",
        "公司",
        "员工",
        "几点",
        "几号",
        "多久",
        "多长",
        "什么样",
        "什么时候",
        "哪里",
        "哪儿",
        "哪个",
        "怎么办",
        "是否",
        "有没有",
        "能不能",
        "可不可以",
        "是不是",
        "有没有",
        "谁",
        "为什么",
        "吗",
        "呢",
    ]
)
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


def is_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")  # OpenCC's phrase-aware Traditional → Simplified (its dictionaries ship in the wheel)


@lru_cache(maxsize=8192)
def to_simplified(text: str) -> str:
    """Chinese in Simplified characters (資訊 → 资讯, 幾點 → 几点); text without Chinese comes back as it is.

    The glossary, keyword tokens, the cache's keys and the missing-concept check compare words in one script,
    so a Traditional question finds a Simplified handbook and back."""
    return _t2s().convert(text) if _CJK.search(text) else text


def normalise(text: str) -> str:
    """Letters and digits only: NFKC (full → half width), case-folded, without punctuation and whitespace."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text or "").casefold())


def detect_language(text: str) -> str:
    """'zh' when Chinese characters make up a real share of the letters, else 'en'."""
    cjk = len(_CJK.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh" if cjk and cjk * 3 >= latin * 0.5 else "en"


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
    for run in re.split(r"([\u3400-\u9fff\uf900-\ufaff]+)", text.lower()):
        if not run:
            continue
        if _CJK.match(run):  # one script for every Chinese token: jieba's dictionary and the glossary are Simplified
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
