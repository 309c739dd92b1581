"""Scripts: the one CJK range, Traditional → Simplified (OpenCC), language detection, the one normaliser."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# CJK Unified Ideographs with Extension A and the compatibility ideographs: what "a Chinese character" means here.
CJK_RANGE = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK = re.compile(f"[{CJK_RANGE}]")
_NOT_WORD = re.compile(r"[\W_]+")


def is_cjk(text: str) -> bool:
    """Whether the text holds a Chinese character."""
    return bool(CJK.search(text))


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")  # OpenCC's phrase-aware Traditional → Simplified (its dictionaries ship in the wheel)


@lru_cache(maxsize=8192)
def to_simplified(text: str) -> str:
    """Chinese in Simplified characters (資訊 → 资讯, 幾點 → 几点); text without Chinese comes back as it is.

    The glossary, keyword tokens, the cache's keys and the missing-concept check compare words in one script,
    so a Traditional question finds a Simplified handbook and back."""
    return _t2s().convert(text) if CJK.search(text) else text


def normalise(text: str) -> str:
    """Letters and digits only: NFKC (full → half width), case-folded, without punctuation and whitespace."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text or "").casefold())


def detect_language(text: str) -> str:
    """'zh' when Chinese characters make up a real share of the letters, else 'en'."""
    cjk = len(CJK.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh" if cjk and cjk * 3 >= latin * 0.5 else "en"
