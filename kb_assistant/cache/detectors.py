"""The near-miss guard's detectors: what a question says that similarity cannot weigh.

Negation (English words, Chinese 不/没/无… outside 有没有-style yes/no questions), numbers (digits, number words,
Chinese numerals before a unit), dates and times of day, named entities and acronyms (and an acronym's spelt-out
form), the kind of question (why / when / how much / where / who / how), and a question's content words. Each is
a plain function of one question; ``guard.near_miss_reason`` compares two.
"""

from __future__ import annotations

import re
import unicodedata

from kb_assistant.language import is_cjk, stem, tokenize

# --- negation, numbers, dates, names ------------------------------------------------------------------------
_NEG_EN = frozenset(
    [
        "not", "no", "never", "cannot", "can't", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't",
        "weren't", "won't", "wouldn't", "shouldn't", "couldn't", "haven't", "hasn't", "hadn't", "mustn't",
        "without", "none", "nothing", "nobody", "neither", "nor",
    ]
)  # fmt: skip
_A_NOT_A = re.compile(r"(.)[不没]\1")  # 有没有, 能不能, 是不是: a yes/no question, not a negation
_NOT_NEGATION_ZH = re.compile(r"非常|是否|能否|可否|无论|不管|别人|别的|差不多|不错|不久|否则|未来")
_NEG_ZH = re.compile(r"[不没无未别非勿莫]")

_EN_NUMBER_WORDS = frozenset(
    [
        "zero", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty",
        "forty", "fifty", "sixty", "hundred", "thousand", "million", "first", "second", "third", "fourth", "fifth",
        "half", "double", "twice", "once",
    ]
)  # fmt: skip
_DIGITS = re.compile(r"(?<![A-Za-z\d][-.])(?<![A-Za-z\d])(?<![A-Z]{2} )\d+(?:[.:]\d+)?(?![A-Za-z])")  # not COVID-19, A4
_ZH_NUMBER = re.compile(
    r"[零一二两三四五六七八九十百千万]+(?=[天日号月年周个次点分元块岁小时倍成%％])|[半几]个?(?=[天月年小])"
)
_EN_DATE_WORDS = frozenset(
    [
        "today", "tomorrow", "yesterday", "tonight", "weekend", "weekends", "weekday", "weekdays", "morning",
        "afternoon", "evening", "night", "daily", "weekly", "monthly", "yearly", "annual", "annually", "january",
        "february", "march", "april", "june", "july", "august", "september", "october", "november", "december",
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "spring", "summer", "autumn",
        "fall", "winter", "holiday", "holidays", "christmas",
    ]
)  # fmt: skip
_ZH_DATE = re.compile(
    r"今天|明天|昨天|后天|前天|今年|去年|明年|前年|本月|上个?月|下个?月|月初|月底|月末|年初|年底|年末|周末|工作日|"
    r"[周礼拜星期][一二三四五六日天末]|上午|下午|中午|晚上|早上|凌晨|夜里|春节|国庆|元旦|中秋|端午|清明|节假日|假日"
)
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*)")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{1,}(?:[-.][A-Z0-9]+)*\b")


def negated(text: str) -> bool:
    words = set(re.findall(r"[a-z]+(?:['’][a-z]+)?", text.lower().replace("’", "'")))
    if words & _NEG_EN or any(w.endswith("n't") for w in words):
        return True
    zh = _NOT_NEGATION_ZH.sub("", _A_NOT_A.sub("", text))
    return bool(_NEG_ZH.search(zh))


def numbers(text: str) -> frozenset[str]:
    text = unicodedata.normalize("NFKC", text)
    found = {m.group(0).replace(":00", "") for m in _DIGITS.finditer(text)}
    found |= set(_ZH_NUMBER.findall(text))
    found |= {w for w in re.findall(r"[a-z]+", text.lower()) if w in _EN_NUMBER_WORDS}
    return frozenset(found)


def dates(text: str) -> frozenset[str]:
    found = set(_ZH_DATE.findall(text))
    found |= {w.rstrip("s") for w in re.findall(r"[a-z]+", text.lower()) if w in _EN_DATE_WORDS}
    return frozenset(found)


def entities(text: str) -> frozenset[str]:
    """Proper names and acronyms in Latin script (case-folded): 'Shanghai', 'NHS', 'LumenDesk'."""
    text = unicodedata.normalize("NFKC", text).strip()
    found = {m.group(1) for m in _CAPITALISED.finditer(text)} | set(_ACRONYM.findall(text))
    return frozenset(e.casefold() for e in found if e.casefold() not in _NOT_ENTITIES)


_NOT_ENTITIES = frozenset(["i", "i'm", "i've", "i'd", "i'll", "ok"])


# Asking why is not asking how (or when, where, how much): "为什么花呗验证失败" ≠ "花呗验证失败怎么办".
_QUESTION_KINDS = [
    ("why", re.compile(r"\bwhy\b|\bhow\s+come\b|为什么|为何|为啥|怎么回事|什么原因|啥原因", re.I)),
    ("time", re.compile(r"\bwhen\b|\bwhat\s+time\b|\bhow\s+long\b|什么时候|何时|几点|几号|多久|多长时间|啥时候", re.I)),
    ("amount", re.compile(r"\bhow\s+(?:many|much|often)\b|多少|几[天个次年月笔期]", re.I)),
    ("where", re.compile(r"\bwhere\b|哪里|哪儿|在哪", re.I)),
    ("who", re.compile(r"\bwho(?:m|se)?\b|谁", re.I)),
    (
        "how",
        re.compile(
            r"\bhow\b|怎么办|如何|怎样|怎么样|咋办|怎么(?=操作|设置|开通|关闭|取消|申请|使用|用|还|修改|更改|绑定|查|办)",
            re.I,
        ),
    ),
]
_AMBIGUOUS_HOW = re.compile(r"怎么|咋")  # 怎么 asks how or why ("怎么不能用了")


def question_kind(text: str) -> str | None:
    """What a question asks for: 'why', 'time', 'amount', 'where', 'who', 'how' (first that applies) or None."""
    if not is_cjk(text):
        text = " ".join(text.split()[:2])  # inside an English sentence "when" and "who" join clauses
    for kind, pattern in _QUESTION_KINDS:
        if pattern.search(text):
            return kind
    return "how-or-why" if _AMBIGUOUS_HOW.search(text) else None


def kinds_differ(a: str | None, b: str | None) -> bool:
    if a is None or b is None or a == b:
        return False
    return {a, b} not in ({"how-or-why", "how"}, {"how-or-why", "why"})


def abbreviates(entity: str, text: str) -> bool:
    """'us' in 'the United States', 'who' in 'World Health Organization' (and the other way round)."""
    words = re.findall(r"[A-Z][a-z]+", text)
    initials = "".join(w[0] for w in words).casefold()
    if len(entity) >= 2 and entity.isalpha() and entity in initials:
        return True
    return any(e in text.casefold().replace(".", "") for e in _initialisms(entity))


def _initialisms(entity: str) -> list[str]:
    parts = re.split(r"[\s-]+", entity)
    return ["".join(p[0] for p in parts)] if len(parts) >= 2 else []


# Words that say nothing about what is asked ("someone", "a way to"); "myself" etc.: "should I check myself" /
# "should I be tested" differ in who is asked, not what.
_LIGHT_WORDS = frozenset(
    [
        "someone", "anyone", "somebody", "anybody", "something", "anything", "everyone", "everybody", "everything",
        "people", "person", "thing", "things", "way", "ways", "go", "going", "one", "kind", "sort", "currently",
        "really", "actually", "able", "possible", "best", "need", "needs", "against", "myself", "yourself",
        "ourselves", "themselves", "oneself",
        "一下", "知道", "想", "我想", "问", "问一下", "啥", "那个", "这个", "一个", "嘞", "哦",
        "呀", "么", "嘛", "咋", "为啥", "怎么样", "怎样", "怎么回事", "时候", "原因",
    ]
)  # fmt: skip


def content_words(text: str) -> dict[str, str]:
    """Stem → token of the question's content words (stop words, numbers and dates are checked separately)."""
    nums, when = numbers(text), dates(text)
    out: dict[str, str] = {}
    for token in tokenize(text):
        if token in nums or token in when or _DIGITS.fullmatch(token) or token in _NEG_EN or token in _LIGHT_WORDS:
            continue
        out.setdefault(stem(token, degree=True), token)
    return out
