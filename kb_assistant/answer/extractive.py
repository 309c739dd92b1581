"""Extractive answers: the best supporting sentence(s) from the top passages, quoted with [n] markers.

A FAQ passage answers with its answer. Otherwise each sentence of the top passages is scored by how much of the
question's weighted vocabulary it (and its section heading) covers, preferring the question's language, and
the best one — with its best neighbour when that adds to it — becomes the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kb_assistant.answer import Draft
from kb_assistant.index import KeywordIndex
from kb_assistant.rerank import weighted_coverage
from kb_assistant.retrieval import Candidate
from kb_assistant.text import detect_language, query_terms, split_sentences, tokenize

_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.)、]|[（(]\d+[)）])\s*")
MAX_CHARS = 320


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
                same_lang = 1.0 if detect_language(sentence) == lang else 0.6
                # density: of two sentences covering the question equally, the one about little else wins
                words = set(tokenize(sentence))
                density = len(words & terms) / len(words) if words else 0.0
                score = (0.6 * cov + 0.15 * min(1.0, 4 * density) + 0.25 * cand.score) * same_lang - 0.03 * (n - 1)
                scored.append((score, n, i, sentence, sentences))
        if not scored:
            yield Draft(text=_with_marker(_clean(top.chunk.text)[:MAX_CHARS], 1), found=True)
            return
        best = max(scored, key=lambda s: s[0])
        _, n, i, sentence, sentences = best
        parts = [sentence]
        # add the following sentence when the best one is short and its neighbour carries the detail
        if i + 1 < len(sentences) and len(sentence) < 60 and len(sentence) + len(sentences[i + 1]) <= MAX_CHARS:
            follow = sentences[i + 1]
            if weighted_coverage(question, follow, self.keyword) > 0 or sentence.endswith((":", "：")):
                parts.append(follow)
        joiner = "" if lang == "zh" else " "
        yield Draft(text=_with_marker(joiner.join(parts), n), found=True)


def _clean(text: str) -> str:
    text = _BULLET.sub("", text.strip())
    text = re.sub(r"[*_`#>]+", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _with_marker(text: str, n: int) -> str:
    return (
        f"{text}[{n}]" if text.endswith(("。", "！", "？", "）", ")")) or not text[-1:].isascii() else f"{text} [{n}]"
    )
