"""What the semantic cache checks besides similarity: the exact-match key, personal questions, near misses.

Embeddings score "can I carry over leave" and "can I cash out leave" (or 上班时间 and 下班时间) as near duplicates, so a
similar-enough cached question must also pass ``near_miss_reason``: the two questions may not differ in negation,
numbers, dates, named entities or their key content words. In English a content-word conflict is a word or two
swapped, or a modifier added, in an otherwise identical question ("carry over" / "cash out", "leave" / "sick
leave"); a question reworded throughout is left to the embedding, which reads rewordings well and is fooled by
lexical overlap. Such a swap passes when the cached answer itself says the new word ("new" / "novel coronavirus")
or the glossary makes both words one concept ("PTO" / "annual leave"): MiniLM's own word vectors are no synonym
signal (buy/sell and husband/wife score above novel/new and risk/vulnerable). In Chinese every heavy word must be
in both questions, weighted by the KB's IDF, so a word every document uses ("公司") weighs little; a word the KB has
never seen weighs most.
All checks are conservative on purpose: a rejected paraphrase costs one full answer, a wrong hit serves someone
the wrong policy.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

from kb_assistant.language import is_cjk, normalise, stem, to_simplified, tokenize

if TYPE_CHECKING:
    from kb_assistant.glossary import Glossary

Idf = Callable[[str], float]

# --- the exact-match key ----------------------------------------------------------------------------------------


def normalize_question(text: str) -> str:
    """Exact-match key: NFKC (full → half width), case-folded, without punctuation and whitespace, Chinese in
    Simplified characters (公司幾點上班 and 公司几点上班 are one question)."""
    return normalise(to_simplified(text))


def _words(text: str) -> list[str]:
    return text.split()


# --- the wording key: the same words, asked in other function words ---------------------------------------------
# Two questions with the same content words, differing only in articles, particles, auxiliaries and how the
# question is put ("can I get" / "do I get"; 怎么/如何/怎样; 能/可以/能否; 吗/呢/了), share this key. The cache
# serves such a paraphrase without the embedding model (after the near-miss guard). Modals that change the
# question (must, should) and question words that change what is asked (why, when, where) are kept.
_KEY_DROP_EN = frozenset(
    _words(
        "a an the of for in on at with about do does did is are was were be been being am i me we you it its they them"
        " this that these those there please tell get got can could may might will would"
    )
)
_KEY_DROP_ZH = frozenset(_words("吗 呢 啊 了 吧 呀 嘛 么 哦 啦 呐 的 请问 请 一下 是 我 我们 你 您 想 想要 要"))
_KEY_SAME_ZH = {
    **dict.fromkeys(_words("怎么 如何 怎样 怎么样 咋 咋样 怎么办 咋办 如何是好"), "怎样"),
    **dict.fromkeys(_words("能 可以 能否 可否 能不能 可不可以 是否可以 是否能 能够 可"), "能"),
    **dict.fromkeys(_words("为什么 为啥 为何 干嘛"), "为什么"),
    **dict.fromkeys(_words("什么时候 何时 啥时候 多会"), "何时"),
    **dict.fromkeys(_words("哪里 哪儿 在哪 在哪里 在哪儿"), "哪里"),
    **dict.fromkeys(_words("什么 啥 什么样"), "什么"),
}


def wording_key(text: str) -> str:
    """The question's content words as a sorted multiset (English stemmed), function words and particles out."""
    from collections import Counter

    words: Counter = Counter()
    for token in tokenize(unicodedata.normalize("NFKC", text), keep_stopwords=True):
        if token.isascii():
            if token not in _KEY_DROP_EN:
                words[stem(token, degree=True)] += 1
        elif token not in _KEY_DROP_ZH:
            words[_KEY_SAME_ZH.get(token, token)] += 1
    return " ".join(f"{w}*{n}" if n > 1 else w for w, n in sorted(words.items()))


# --- personal questions -----------------------------------------------------------------------------------------
# About the asker's own data or situation: their balance, their manager, what they have left. "How many days of
# leave do I get?" is policy and stays cacheable; "my …", "I have …", "我的…", "我还剩…" are not.
_PERSONAL_EN = re.compile(
    r"\b(?:my|mine|am\s+i|have\s+i|did\s+i|was\s+i|me\s+personally)\b"
    # "I have / I was …" states the asker's situation, but not as a condition ("what if I am sick", "when I'm
    # abroad") nor as an obligation ("do I have to"); "protect myself" is everyone's question.
    r"|(?<!\bif\s)(?<!\bwhen\s)\b(?:i['’]ve|i['’]m|i\s+am|i\s+(?:still\s+|already\s+)?(?:have(?!\s+to\b)|had|did|was|"
    r"got|used|took|owe|earn|make))\b",
    re.IGNORECASE,
)
_PERSONAL_ZH = re.compile(
    r"我的|我们的|本人|咱的|我(?:还|已|已经|目前|现在|今年|去年|本月|这个月|上个月|下个月|剩|有没有|有多少|有几|是不是|是否|"
    r"能不能|可不可以|领导|经理|主管|上司|老板|同事|部门|工资|薪水|余额|账户|账号|订单|社保|公积金|合同|考勤|打卡)"
)


def is_personal(question: str) -> bool:
    """True for a question about the asker's own data or situation: never cached, never served from cache."""
    text = unicodedata.normalize("NFKC", question)
    return bool(_PERSONAL_EN.search(text) or _PERSONAL_ZH.search(text))


# --- near misses ------------------------------------------------------------------------------------------------
_NEG_EN = frozenset(
    [
        "not",
        "no",
        "never",
        "cannot",
        "can't",
        "don't",
        "doesn't",
        "didn't",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "won't",
        "wouldn't",
        "shouldn't",
        "couldn't",
        "haven't",
        "hasn't",
        "hadn't",
        "mustn't",
        "without",
        "none",
        "nothing",
        "nobody",
        "neither",
        "nor",
    ]
)
_A_NOT_A = re.compile(r"(.)[不没]\1")  # 有没有, 能不能, 是不是: a yes/no question, not a negation
_NOT_NEGATION_ZH = re.compile(r"非常|是否|能否|可否|无论|不管|别人|别的|差不多|不错|不久|否则|未来")
_NEG_ZH = re.compile(r"[不没无未别非勿莫]")

_EN_NUMBER_WORDS = frozenset(
    [
        "zero",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "hundred",
        "thousand",
        "million",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "half",
        "double",
        "twice",
        "once",
    ]
)
_DIGITS = re.compile(r"(?<![A-Za-z\d][-.])(?<![A-Za-z\d])(?<![A-Z]{2} )\d+(?:[.:]\d+)?(?![A-Za-z])")  # not COVID-19, A4
_ZH_NUMBER = re.compile(
    r"[零一二两三四五六七八九十百千万]+(?=[天日号月年周个次点分元块岁小时倍成%％])|[半几]个?(?=[天月年小])"
)
_EN_DATE_WORDS = frozenset(
    [
        "today",
        "tomorrow",
        "yesterday",
        "tonight",
        "weekend",
        "weekends",
        "weekday",
        "weekdays",
        "morning",
        "afternoon",
        "evening",
        "night",
        "daily",
        "weekly",
        "monthly",
        "yearly",
        "annual",
        "annually",
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "spring",
        "summer",
        "autumn",
        "fall",
        "winter",
        "holiday",
        "holidays",
        "christmas",
    ]
)
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


def _kinds_differ(a: str | None, b: str | None) -> bool:
    if a is None or b is None or a == b:
        return False
    return {a, b} not in ({"how-or-why", "how"}, {"how-or-why", "why"})


_LIGHT_WORDS = frozenset(
    [
        "someone",
        "anyone",
        "somebody",
        "anybody",
        "something",
        "anything",
        "everyone",
        "everybody",
        "everything",
        "people",
        "person",
        "thing",
        "things",
        "way",
        "ways",
        "go",
        "going",
        "one",
        "kind",
        "sort",
        "currently",
        "really",
        "actually",
        "able",
        "possible",
        "best",
        "need",
        "needs",
        "against",
        "myself",  # "should I check myself" / "should I be tested": who is asked, not what
        "yourself",
        "ourselves",
        "themselves",
        "oneself",
        "一下",
        "知道",
        "想",
        "我想",
        "问",
        "问一下",
        "啥",
        "那个",
        "这个",
        "一个",
        "嘞",
        "哦",
        "呀",
        "么",
        "嘛",
        "咋",
        "为啥",
        "怎么样",
        "怎样",
        "怎么回事",
        "时候",
        "原因",
    ]
)


def _abbreviates(entity: str, text: str) -> bool:
    """'us' in 'the United States', 'who' in 'World Health Organization' (and the other way round)."""
    words = re.findall(r"[A-Z][a-z]+", text)
    initials = "".join(w[0] for w in words).casefold()
    if len(entity) >= 2 and entity.isalpha() and entity in initials:
        return True
    return any(e in text.casefold().replace(".", "") for e in _initialisms(entity))


def _initialisms(entity: str) -> list[str]:
    parts = re.split(r"[\s-]+", entity)
    return ["".join(p[0] for p in parts)] if len(parts) >= 2 else []


def content_words(text: str) -> dict[str, str]:
    """Stem → token of the question's content words (stop words, numbers and dates are checked separately)."""
    nums, when = numbers(text), dates(text)
    out: dict[str, str] = {}
    for token in tokenize(text):
        if token in nums or token in when or _DIGITS.fullmatch(token) or token in _NEG_EN or token in _LIGHT_WORDS:
            continue
        out.setdefault(stem(token, degree=True), token)
    return out


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _covered(token: str, stem: str, other_stems: set[str], other_text: str) -> bool:
    if stem in other_stems:
        return True
    if token.isascii() and len(stem) >= 5 and any(_common_prefix(stem, s) >= 5 for s in other_stems):
        return True  # differ / different, infect / infectious
    if not token.isascii():  # jieba may split 借呗 / 蚂蚁借呗 differently: a contained word is the same word
        return token in other_text or any(not s.isascii() and s in token and len(s) >= 2 for s in other_stems)
    return False


def near_miss_reason(
    a: str,
    b: str,
    idf: Idf,
    *,
    answer: str = "",
    glossary: Glossary | None = None,
    max_uncovered: float = 0.15,
    min_shared: float = 0.5,
) -> str | None:
    """Why question ``a`` must not get the answer cached for the similar-looking question ``b``, or None when no
    difference was found.

    ``idf(token)`` weighs content words (0 or less: unknown to the KB, weighted as the rarest). A question's key
    content word (its heaviest) must appear in the other question, and the words of either question missing from
    the other may carry at most ``max_uncovered`` of its weight. In English, words swapped or added in an
    otherwise identical question pass when they are one concept of ``glossary`` ("PTO" / "annual leave") or when
    ``answer`` (the text cached for ``b``) says them: an answer that speaks of what ``a`` asks about answers it.
    Negation, numbers, dates and names are never excused.
    """
    if negated(a) != negated(b):
        return "negation"
    if numbers(a) != numbers(b):
        return "number"
    said_alike = _shared_concept_words(a, b, glossary)  # "annual leave" / "PTO": one concept, no date in it
    if dates(a) - said_alike != dates(b) - said_alike:
        return "date"
    if _kinds_differ(question_kind(a), question_kind(b)):
        return "question kind"
    la, lb = a.casefold(), b.casefold()
    only_a = {e for e in entities(a) if e not in lb and not _abbreviates(e, b)}
    only_b = {e for e in entities(b) if e not in la and not _abbreviates(e, a)}
    if only_a and only_b:  # one name put in place of another; a name left out is a content word (below)
        return "named entity"
    words_a, words_b = content_words(a), content_words(b)
    missing_a = {s for s, t in words_a.items() if not _covered(t, s, set(words_b), lb)}
    missing_b = {s for s, t in words_b.items() if not _covered(t, s, set(words_a), la)}
    if not (missing_a or missing_b):
        return None
    sides = []
    for words, missing in ((words_a, missing_a), (words_b, missing_b)):
        weights = {s: _weight(t, idf) for s, t in words.items()} or {"": 1.0}
        key = max(weights, key=weights.get)
        sides.append((key in missing, sum(weights[s] for s in missing) / sum(weights.values()), words.get(key, "")))
    (key_a, lost_a, name_a), (key_b, lost_b, name_b) = sides
    if is_cjk(a + b):
        # Chinese: jieba segments differently and MiniLM barely reads it, so every heavy word must be in both.
        if key_a or key_b:
            return f"key word '{name_a if key_a else name_b}'"
        if max(lost_a, lost_b) > max_uncovered:
            return "content words " + _listed(words_a, missing_a, words_b, missing_b)
        return None
    return _swapped_or_narrowed(a, b, answer, glossary)


def _content_sequence(text: str) -> list[tuple[str, str]]:
    """(stem, token) of the content words in order, question-frame words ("do", "help", "mean", the "long" of
    "how long") left out."""
    words = content_words(text)
    keep = set(words.values())
    tokens = tokenize(_HOW_PHRASE.sub("how", text))
    return [(stem(t, degree=True), t) for t in tokens if t in keep and t not in _FRAME_WORDS]


_HOW_PHRASE = re.compile(r"\bhow\s+(?:long|often|much|many|far|soon|come)\b", re.IGNORECASE)  # compared as kinds


def _same_word(x: str, y: str) -> bool:
    return x == y or (len(x) >= 5 and len(y) >= 5 and _common_prefix(x, y) >= 5)


def _swapped_or_narrowed(a: str, b: str, answer: str = "", glossary: Glossary | None = None) -> str | None:
    """English: the same question but for one or two words swapped ("carry over" / "cash out") or a modifier added
    right before a shared word ("leave" / "sick leave"). A question reworded throughout is left to the embedding,
    and so is a word added at the end ("what is community spread" / "… spread mean") or away from the word it
    would narrow ("what about importing animals" / "are there regulations about importing animals"): lexical
    overlap is what fools the embedding, not rewording. A word both questions use, only elsewhere, is moved, not
    swapped. Words of one glossary concept, or ``a``'s words that ``answer`` (``b``'s) says, are no conflict."""
    sa, sb = _content_sequence(a), _content_sequence(b)
    head = 0
    while head < min(len(sa), len(sb)) and _same_word(sa[head][0], sb[head][0]):
        head += 1
    tail = 0
    while tail < min(len(sa), len(sb)) - head and _same_word(sa[-1 - tail][0], sb[-1 - tail][0]):
        tail += 1
    only_a, only_b = sa[head : len(sa) - tail], sb[head : len(sb) - tail]
    if not (only_a or only_b) or head + tail == 0 or max(len(only_a), len(only_b)) > 2:
        return None
    stems_a, stems_b = {s for s, _ in sa}, {s for s, _ in sb}
    own_a = [(s, t) for s, t in only_a if s not in stems_b]  # "the disease being called" / "the name of the disease"
    own_b = [(s, t) for s, t in only_b if s not in stems_a]
    if only_a and only_b and not (own_a or own_b):  # the same words in other places: "from A to B" / "from B to A"
        return "content words " + " / ".join(", ".join(f"'{t}'" for _, t in side) for side in (only_a, only_b))
    only_a, only_b = own_a, own_b
    if not (only_a or only_b) or _one_concept(a, b, only_a, only_b, glossary) or _answer_says(only_a, answer):
        return None
    if only_a and only_b:
        if _spells_out(only_a, only_b):
            return None
        return "content words " + " / ".join(", ".join(f"'{t}'" for _, t in side) for side in (only_a, only_b))
    added, text = (only_a, a) if only_a else (only_b, b)
    if tail and _right_before(added[-1][1], sa[len(sa) - tail][0] if only_a else sb[len(sb) - tail][0], text):
        return "content words " + ", ".join(f"'{t}'" for _, t in added) + " added"  # "sick leave", "paid leave"
    return None


def _right_before(word: str, next_stem: str, text: str) -> bool:
    """Does ``word`` come right before a word of stem ``next_stem`` in ``text`` (a modifier of it)?"""
    tokens = tokenize(text, keep_stopwords=True)
    return any(t == word and stem(n, degree=True) == next_stem for t, n in zip(tokens, tokens[1:], strict=False))


def _answer_says(words: list[tuple[str, str]], answer: str) -> bool:
    """Does the cached answer use every one of the asking question's swapped-in words (stemmed)?"""
    if not words or not answer:
        return False
    said = {stem(t, degree=True) for t in tokenize(answer)}
    return all(s in said for s, _ in words)


def _one_concept(a: str, b: str, only_a, only_b, glossary: Glossary | None) -> bool:
    """Are the words swapped between the questions wordings of one glossary concept (PTO / annual leave)?"""
    if glossary is None or not (only_a and only_b):
        return False
    ma, mb = glossary.matches(a), glossary.matches(b)
    for x in ma:
        for y in mb:
            if y.term in x.alternatives and _accounts(x, only_a) and _accounts(y, only_b):
                return True
    return False


def _shared_concept_words(a: str, b: str, glossary: Glossary | None) -> frozenset[str]:
    """The words of the glossary terms by which both questions name one concept, each in its own wording."""
    if glossary is None:
        return frozenset()
    ma, mb = glossary.matches(a), glossary.matches(b)
    pairs = [(x, y) for x in ma for y in mb if y.term in x.alternatives or y.term == x.term]
    return frozenset(w for x, y in pairs for m in (x, y) for w in m.term.text.split())


def _accounts(match, words: list[tuple[str, str]]) -> bool:
    """Does a glossary term found in a question account for all of the question's swapped words?"""
    return all(t in set(match.term.tokens) or t in match.term.text.split() for _, t in words)


def _spells_out(x: list[tuple[str, str]], y: list[tuple[str, str]]) -> bool:
    """'us' / 'united states', 'who' / 'world health organization': an acronym and its words are one name."""
    for short, long in ((x, y), (y, x)):
        if len(short) == 1 and len(long) >= 2 and short[0][1] == "".join(t[0] for _, t in long):
            return True
    return False


# Verbs and nouns that frame a question rather than say what it is about: "what can I do to", "how should I act",
# "what does X mean", "is it allowed to".
_FRAME_WORDS = frozenset(
    [
        "do",
        "does",
        "did",
        "done",
        "doing",
        "act",
        "help",
        "helps",
        "mean",
        "means",
        "meaning",
        "happen",
        "happens",
        "understand",
        "allowed",
        "possible",
        "ways",
        "way",
        "best",
    ]
)


def _listed(words_a: dict, missing_a: set, words_b: dict, missing_b: set) -> str:
    return " / ".join(
        ", ".join(f"'{w[s]}'" for s in sorted(m)) or "-" for w, m in ((words_a, missing_a), (words_b, missing_b))
    )


def _weight(token: str, idf: Idf) -> float:
    w = idf(token)
    return w if w > 0 else UNKNOWN_WORD_WEIGHT


UNKNOWN_WORD_WEIGHT = 12.0  # above any IDF a KB of under 100k chunks gives: a word the KB never uses is specific
