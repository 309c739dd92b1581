"""Answerers: turn the reranked passages into an answer with [n] citations.

``ExtractiveAnswerer`` (default: no key, no network) quotes the best supporting sentences;
``LLMAnswerer`` asks any OpenAI-compatible endpoint through a prompt kept in ``prompts/``.
Both yield text deltas and finally one ``Draft``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from kb_assistant.schema import Candidate, Usage


@dataclass
class Draft:
    text: str  # with [n] markers, n = 1-based position in the passages given
    found: bool  # False: the passages do not hold the answer
    usage: Usage | None = None
    reason: str | None = None  # why not found: not_in_context, no_citation, unsupported
    # extractive answers: the IDF-weighted share of the question's words its key sentence holds (a confidence signal)
    key_coverage: float | None = None


class Answerer(Protocol):
    def generate(self, question: str, passages: list[Candidate], lang: str) -> Iterator[str | Draft]:
        """Yield text deltas (possibly none), then exactly one Draft."""
        ...


def load_prompt(name: str, lang: str) -> str:
    return resources.files("kb_assistant.answer").joinpath("prompts", f"{name}_{lang}.txt").read_text("utf-8")
