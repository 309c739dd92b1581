"""What the semantic cache keys and filters questions by: the exact-match key, the wording key, personal questions.

``normalize_question`` is the exact-repeat key; ``wording_key`` the paraphrase key that needs no model (the same
content words in other function words); ``is_personal`` keeps questions about the asker's own data out of the
cache both ways.
"""

from __future__ import annotations

import re
import unicodedata

from kb_assistant.language import normalise, stem, to_simplified, tokenize

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
