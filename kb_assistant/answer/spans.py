"""Answer spans: the passage around the sentence that answers, with that sentence marked.

A passage is cut into units — its sentences, line by line — so a span can be put back together the way the
document wrote it: sentences of one line joined by a space (none in Chinese), lines by a line break. The span grows
from the key sentence forward (the detail, the list under "the following:", the rest of the clause) and then back
(the sentence that introduces it) up to about ``SPAN_CHARS``. The key sentence is marked **like this**; the marks
are the only asterisks in an answer (source text is cleaned of markdown), so ``key_text`` finds it again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kb_assistant.language import detect_language, split_sentences

SPAN_CHARS = 500
_BULLET = re.compile(r"^\s*(?:[-*•·▪●◦]|\d+[.)、]|[（(](?:\d+|[a-zA-Z]|[ivx]+)[)）])\s*")
_LEADER = re.compile(r"(?:\.\s?){5,}|…{3,}|_{5,}")  # a table of contents' dot leaders, a form's blanks
_KEY = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)


@dataclass
class Unit:
    text: str
    line: int  # index of the passage line it comes from


def clean(text: str) -> str:
    text = _BULLET.sub("", text.strip())
    text = re.sub(r"[*_`#>]+", "", text)
    return re.sub(r"\s+", " ", text).strip()


def passage_units(text: str) -> list[Unit]:
    """The passage's sentences in order, without contents-page lines (dot leaders say nothing)."""
    units = []
    for n, line in enumerate(text.splitlines()):
        for sentence in split_sentences(line):
            cleaned = clean(sentence)
            if cleaned and not _LEADER.search(cleaned):
                units.append(Unit(cleaned, n))
    return units


def is_question(sentence: str) -> bool:
    """A sentence that asks rather than says: it cannot be an answer's key sentence."""
    s = sentence.rstrip(" )）]\"'”’")
    return s.endswith(("?", "？")) or (s.endswith(("吗", "呢")) and detect_language(s) == "zh")


def expand(units: list[Unit], key: int, budget: int = SPAN_CHARS, key_end: int | None = None) -> tuple[int, int]:
    """[start, end) of the units around ``units[key:key_end]`` that fit in ``budget`` characters: forward first
    (what follows a rule is its detail or its list), then back to the sentences that lead into it."""
    start, end = key, key_end if key_end is not None else key + 1
    used = sum(len(u.text) + 1 for u in units[start:end])
    while end < len(units) and used + len(units[end].text) + 1 <= budget:
        used += len(units[end].text) + 1
        end += 1
    while start > 0 and used + len(units[start - 1].text) + 1 <= budget:
        start -= 1
        used += len(units[start].text) + 1
    return start, end


def render(units: list[Unit], start: int, end: int, key: int, key_end: int) -> str:
    """Units ``start:end`` as the document wrote them, ``key:key_end`` marked as the key sentence(s)."""
    zh = detect_language(" ".join(u.text for u in units[key:key_end])) == "zh"
    out: list[str] = []
    for i in range(start, end):
        u = units[i]
        if i > start:
            out.append("\n" if u.line != units[i - 1].line else ("" if zh else " "))
        if i == key and key_end > key:
            out.append("**")
        out.append(u.text)
        if i == key_end - 1 and key_end > key:
            out.append("**")
    return "".join(out)


def key_text(answer: str) -> str:
    """The marked key sentence(s) of an answer (the whole answer when nothing is marked)."""
    found = _KEY.findall(answer)
    return " ".join(found) if found else answer
