"""Extractive answers: the best supporting sentence(s) from the top passages, quoted with [n] markers.

A FAQ passage answers with its answer. Otherwise each sentence of the top passages is scored by how much of the
question's weighted vocabulary it (and its section heading) covers, and the best one — with its best neighbour
when that adds to it — becomes the answer. Besides coverage a sentence gains from:
- opening its passage, in proportion to its coverage: a section's first sentence usually states the rule, the
  later ones its exceptions ("158 天产假" before "难产的，增加产假 15 天");
- holding a number when the question asks how many, how long, how much or when;
- for a Chinese question, sharing its character pairs: jieba cuts 中午休息 and 午休 differently, characters do not;
- being in the question's language, a little: a Chinese section that answers an English question beats an
  English sentence that only mentions its words.
A table row (ingest writes one "column: value | column: value" line per row) answers with its whole table when the
table is short: "after six years" needs the "5 years or more" row as much as the one the words matched.
Weights were chosen on the golden set and the first 1,000 CMRC2018 questions and checked on the next 1,200
(eval/README.md, "Extractive answers").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kb_assistant.answer import Draft
from kb_assistant.index import KeywordIndex
from kb_assistant.rerank import weighted_coverage
from kb_assistant.retrieval import Candidate
from kb_assistant.text import detect_language, normalise, query_terms, split_sentences, tokenize

_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.)、]|[（(]\d+[)）])\s*")
MAX_CHARS = 320
FIRST_SENTENCE_BONUS = 0.15  # times the sentence's coverage
NUMBER_BONUS = 0.1
CHAR_PAIR_WEIGHT = 0.6
SAME_LANGUAGE_BONUS = 0.05
# Questions whose answer is a number, an amount, a duration, a date or a time.
_ASKS_NUMBER = re.compile(
    r"多少|几|多久|多长|多大|多远|上限|额度|费用|价格|什么时候|何时|哪天|哪一天|日期|"
    r"\bhow (?:many|much|long|often|soon|late|early)\b|\bwhen\b|\bwhat time\b|\blimit\b|\bbudget\b|\bcost\b|"
    r"\bprice\b|\bdeadline\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d|[一二两三四五六七八九十百千万半]+\s*(?:个|天|日|次|月|年|小时|元|周|分钟|倍|%)")
_TABLE_ROW = re.compile(r"^([^|:：\n]{1,80}): [^\n]* \| ")  # a row line's first column name
_ZH_QUESTION_WORDS = re.compile(r"什么|哪些|哪个|哪里|多少|怎么|如何|为什么|是否|几|吗|呢|谁|请问")


class ExtractiveAnswerer:
    def __init__(self, keyword: KeywordIndex, passages_considered: int = 3):
        self.keyword = keyword
        self.passages_considered = passages_considered

    def generate(self, question: str, passages: list[Candidate], lang: str) -> Iterator[str | Draft]:
        if not passages:
            yield Draft(text="", found=False)
            return
        top = passages[0]
        if top.chunk.kind == "faq" and len(top.chunk.text) <= MAX_CHARS * 2:
            yield Draft(text=_with_marker(_clean(top.chunk.text), 1), found=True)
            return
        scored = []
        terms = set(query_terms(question))
        asks_number = bool(_ASKS_NUMBER.search(question))
        pairs = _char_pairs(_ZH_QUESTION_WORDS.sub(" ", question)) if lang == "zh" else set()
        for n, cand in enumerate(passages[: self.passages_considered], start=1):
            heading = cand.chunk.section.rsplit(" > ", 1)[-1]
            sentences = [_clean(s) for s in split_sentences(cand.chunk.text)]
            for i, sentence in enumerate(sentences):
                if len(sentence) < 4:
                    continue
                # the sentence itself must carry the answer; its heading only helps
                cov = 0.7 * weighted_coverage(question, sentence, self.keyword) + 0.3 * weighted_coverage(
                    question, f"{heading}\n{sentence}", self.keyword
                )
                # density: of two sentences covering the question equally, the one about little else wins
                words = set(tokenize(sentence))
                density = len(words & terms) / len(words) if words else 0.0
                score = 0.6 * cov + 0.15 * min(1.0, 4 * density) + 0.25 * cand.score - 0.03 * (n - 1)
                score += FIRST_SENTENCE_BONUS * cov * (i == 0) + NUMBER_BONUS * (
                    asks_number and bool(_NUMBER.search(sentence))
                )
                score += SAME_LANGUAGE_BONUS * (detect_language(sentence) == lang)
                if pairs:
                    score += CHAR_PAIR_WEIGHT * len(pairs & _char_pairs(sentence)) / len(pairs)
                scored.append((score, n, i, sentence, sentences))
        if not scored:
            yield Draft(text=_with_marker(_clean(top.chunk.text)[:MAX_CHARS], 1), found=True)
            return
        best = max(scored, key=lambda s: s[0])
        _, n, i, sentence, sentences = best
        rows = _table_rows(sentence, passages[n - 1].chunk.text)
        if rows:
            yield Draft(text=_with_marker("\n".join(rows), n), found=True)
            return
        parts = [sentence]
        # add the following sentence when the best one is short and its neighbour carries the detail
        if i + 1 < len(sentences) and len(sentence) < 60 and len(sentence) + len(sentences[i + 1]) <= MAX_CHARS:
            follow = sentences[i + 1]
            if weighted_coverage(question, follow, self.keyword) > 0 or sentence.endswith((":", "：")):
                parts.append(follow)
        joiner = "" if detect_language(sentence) == "zh" else " "  # the passage's language, not the question's
        yield Draft(text=_with_marker(joiner.join(parts), n), found=True)


def _table_rows(sentence: str, text: str) -> list[str]:
    """The rows of the table ``sentence`` is (part of) a row of: all of them when they fit, else its own row."""
    lines = [_clean(line) for line in text.splitlines()]
    own = next((line for line in lines if sentence in line and _TABLE_ROW.match(line)), None)
    if own is None:
        return []
    prefix = _TABLE_ROW.match(own).group(1) + ": "
    rows = [line for line in lines if line.startswith(prefix) and _TABLE_ROW.match(line)]
    return rows if sum(len(r) + 1 for r in rows) <= MAX_CHARS else [own]


def _char_pairs(text: str) -> set[str]:
    letters = normalise(text)
    return {letters[i : i + 2] for i in range(len(letters) - 1)}


def _clean(text: str) -> str:
    text = _BULLET.sub("", text.strip())
    text = re.sub(r"[*_`#>]+", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _with_marker(text: str, n: int) -> str:
    return (
        f"{text}[{n}]" if text.endswith(("。", "！", "？", "）", ")")) or not text[-1:].isascii() else f"{text} [{n}]"
    )
