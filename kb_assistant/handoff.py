"""Requests for a person ("转人工", "talk to a human", … ``KB_HANDOFF_PHRASES``): spotting one, and what is left of
the question once the request is taken out.
"""

from __future__ import annotations

import re


def is_handoff_request(question: str, phrases: list[str]) -> bool:
    text = question.lower()
    return any(p.lower() in text for p in phrases if p.strip())


def strip_handoff(question: str, phrases: list[str]) -> str:
    """The question without the request for a person (and the punctuation around it)."""
    text = question
    for p in phrases:
        if p.strip():
            text = re.sub(re.escape(p), " ", text, flags=re.IGNORECASE)
    return re.sub(r"^[\W_]+|[\W_]+$", "", text.strip()).strip()


_FILLER = frozenset(["please", "want", "need", "help", "now", "帮忙", "麻烦", "一下", "谢谢", "需要", "我要", "想要"])


def has_substance(text: str) -> bool:
    """Whether what is left of a handoff request says what it is about ("工资条有问题"), not just "请帮我"."""
    from kb_assistant.language import tokenize

    return any(len(t) >= 2 and t not in _FILLER for t in tokenize(text))
