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
Each passage considered runs on into the chunk that follows it in its section (``following``), so a sentence that
ends a chunk answers with the list or detail that starts the next one.
Weights were chosen on the golden set and the first 1,000 CMRC2018 questions and checked on the next 1,200
(eval/README.md, "Extractive answers").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace

from kb_assistant.answer import Draft
from kb_assistant.answer.spans import SPAN_CHARS, Unit, expand, is_question, passage_units, render
from kb_assistant.language import detect_language, normalise, query_terms, tokenize
from kb_assistant.rerank import weighted_coverage
from kb_assistant.schema import Candidate, Chunk
from kb_assistant.store import CorpusStats

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
SECOND_SPAN_CHARS = 220  # of the span budget, for the passage answering the second part of a question
# where a question splits into two parts: "When does employment commence and end?" is one part, "What is X and who
# approves it?" two; a part must have content words of its own
_PARTS = re.compile(
    r"\s*(?:,?\s+and\s+(?=(?:what|who|when|where|which|how|why|is|are|does|do|can)\b)|;|；|？(?=.)|\?(?=.))\s*",
    re.IGNORECASE,
)
_TABLE_ROW = re.compile(r"^([^|:：\n]{1,80}): [^\n]* \| ")  # a row line's first column name
_ZH_QUESTION_WORDS = re.compile(r"什么|哪些|哪个|哪里|多少|怎么|如何|为什么|是否|几|吗|呢|谁|请问")


class ExtractiveAnswerer:
    def __init__(
        self,
        stats: CorpusStats,
        passages_considered: int = 3,
        following: Callable[[list[Chunk]], dict[str, Chunk]] | None = None,
    ):
        self.stats = stats
        self.passages_considered = passages_considered
        # the chunk after each passage in its section (KnowledgeBase.following): a span runs on into it
        self.following = following

    def generate(self, question: str, passages: list[Candidate], lang: str) -> Iterator[str | Draft]:
        if not passages:
            yield Draft(text="", found=False)
            return
        top = passages[0]
        if top.chunk.kind == "faq" and len(top.chunk.text) <= MAX_CHARS * 2:
            yield Draft(text=_with_marker(_clean(top.chunk.text), 1), found=True)
            return
        passages = self._run_on(passages)
        scored = self._scored_sentences(question, passages, lang)
        if not scored:
            units = passage_units(top.chunk.text)
            text = render(units, *expand(units, 0, key_end=0), 0, 0) if units else _clean(top.chunk.text)
            yield Draft(text=_with_marker(text[:SPAN_CHARS], 1), found=True)
            return
        _, n, i, units = max(scored, key=lambda s: s[0])
        key_coverage = weighted_coverage(question, units[i].text, self.stats)
        second = self._second_part(question, self._span(question, passages[n - 1], units, i), scored, n)
        if second is None:
            text = _with_marker(self._span(question, passages[n - 1], units, i), n)
            yield Draft(text=text, found=True, key_coverage=key_coverage)
            return
        # two parts, two passages: each span shorter, so both are read (and fit the first screen)
        m, m_units, j = second
        first = self._span(question, passages[n - 1], units, i, SPAN_CHARS - SECOND_SPAN_CHARS)
        other = self._span(question, passages[m - 1], m_units, j, SECOND_SPAN_CHARS)
        text = f"{_with_marker(first, n)}\n\n{_with_marker(other, m)}"
        yield Draft(text=text, found=True, key_coverage=key_coverage)

    def _run_on(self, passages: list[Candidate]) -> list[Candidate]:
        """The passages considered, each with the chunk that follows it in its section appended: a sentence that
        ends a chunk ("… subject to the following conditions:") is answered by the list or detail in the next one.
        The span is cited as the passage it grew from."""
        if self.following is None:
            return passages
        considered = [c.chunk for c in passages[: self.passages_considered] if c.chunk.kind == "text"]
        after = self.following(considered) if considered else {}
        return [
            replace(c, chunk=c.chunk.model_copy(update={"text": f"{c.chunk.text}\n{after[c.chunk.id].text}"}))
            if c.chunk.id in after
            else c
            for c in passages
        ]

    def _scored_sentences(self, question: str, passages: list[Candidate], lang: str) -> list[tuple]:
        """(score, passage number, unit index, units) for each sentence of the top passages that could answer."""
        scored = []
        terms = set(query_terms(question))
        asks_number = bool(_ASKS_NUMBER.search(question))
        pairs = _char_pairs(_ZH_QUESTION_WORDS.sub(" ", question)) if lang == "zh" else set()
        for n, cand in enumerate(passages[: self.passages_considered], start=1):
            heading = cand.chunk.section.rsplit(" > ", 1)[-1]
            units = passage_units(cand.chunk.text)
            for i, unit in enumerate(units):
                sentence = unit.text
                if len(sentence) < 4 or is_question(sentence):  # a question the document asks is not an answer
                    continue
                # the sentence itself must carry the answer; its heading only helps
                cov = 0.7 * weighted_coverage(question, sentence, self.stats) + 0.3 * weighted_coverage(
                    question, f"{heading}\n{sentence}", self.stats
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
                scored.append((score, n, i, units))
        return scored

    def _span(self, question: str, passage: Candidate, units: list[Unit], i: int, budget: int = SPAN_CHARS) -> str:
        """The key sentence (with its neighbour when it is short and the detail is there, or its whole short table
        when it is a table row), marked, inside the passage around it."""
        sentence = units[i].text
        rows = _table_rows(sentence, passage.chunk.text)
        if rows:
            return "\n".join(f"**{r}**" if sentence in r else r for r in rows)
        key_end = i + 1
        # the following sentence is part of the key when the best one is short and its neighbour carries the detail
        if i + 1 < len(units) and len(sentence) < 60 and len(sentence) + len(units[i + 1].text) <= MAX_CHARS:
            follow = units[i + 1].text
            if weighted_coverage(question, follow, self.stats) > 0 or sentence.endswith((":", "：")):
                key_end = i + 2
        start, end = expand(units, i, budget, key_end)
        return render(units, start, end, i, key_end)

    def _second_part(self, question: str, first: str, scored: list[tuple], n: int):
        """For a question in two parts ("… and …") of which the first span answers one only: the best sentence of
        another passage for the other part, as (passage number, units, unit index)."""
        parts = [p for p in _PARTS.split(question) if query_terms(p)]
        if len(parts) < 2:
            return None
        first_cov = {p: weighted_coverage(p, first, self.stats) for p in parts}
        missing = [p for p in parts if first_cov[p] < 0.5]
        if len(missing) != 1:
            return None
        best = None
        for _, m, j, units in scored:
            cov = weighted_coverage(missing[0], units[j].text, self.stats)
            # another passage that says clearly more about the part the first span leaves out
            if m != n and cov >= max(0.25, 2 * first_cov[missing[0]]) and (best is None or cov > best[0]):
                best = (cov, m, units, j)
        return best[1:] if best else None


def _table_rows(sentence: str, text: str) -> list[str]:
    """The rows of the table ``sentence`` is (part of) a row of: all of them when they fit, else its own row."""
    lines = [_clean(line) for line in text.splitlines()]
    own = next((line for line in lines if sentence in line and _TABLE_ROW.match(line)), None)
    if own is None:
        return []
    prefix = _TABLE_ROW.match(own).group(1) + ": "
    rows = [line for line in lines if line.startswith(prefix) and _TABLE_ROW.match(line)]
    return rows if sum(len(r) + 1 for r in rows) <= SPAN_CHARS else [own]


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
