"""Condense a follow-up and its chat history into a standalone question, before cache and retrieval.

With an LLM configured it rewrites the question (prompt in answer/prompts/condense_*.txt). Without one,
``TopicCarryover`` handles the common elliptical follow-ups: "那周末呢？" after "公司几点上班？" becomes
"周末 公司几点上班", "and sick leave?" after "How many days of annual leave do I get?" becomes
"How many days of sick leave do I get?" (the same head word), "and part-time?" after "… do full-time employees
get?" "… do part-time employees get?" (a word for the same slot), and anything else in English the follow-up's own
words plus the topic it lacks: "and contractors?" → "contractors days annual leave" — never two questions glued.
"""

from __future__ import annotations

import re
import time
from typing import Protocol

from kb_assistant.language import tokenize

History = list[dict]  # OpenAI-style messages: {"role": "user"|"assistant", "content": str}

_LEADING = re.compile(
    r"^\s*(?:那么|那|还有|另外|如果是|如果|那如果|and what about|what about|how about|and for|and if|and|also|"
    r"what if|same for)\s*[,，]?\s*",
    re.IGNORECASE,
)
_TRAILING = re.compile(r"\s*(?:呢|吗|呀|啊)?\s*[?？。.!！]*\s*$")


class Condenser(Protocol):
    def condense(self, question: str, history: History | None) -> str: ...


def previous_user_question(history: History | None) -> str | None:
    for msg in reversed(history or []):
        if msg.get("role") == "user" and str(msg.get("content", "")).strip():
            return str(msg["content"]).strip()
    return None


class TopicCarryover:
    max_follow_up_tokens = 4

    def condense(self, question: str, history: History | None) -> str:
        previous = previous_user_question(history)
        if not previous:
            return question
        has_marker = bool(_LEADING.match(question))
        core = _TRAILING.sub("", _LEADING.sub("", question)).strip()
        core_tokens = tokenize(core)
        if not core or len(core_tokens) > self.max_follow_up_tokens or (not has_marker and len(core_tokens) > 2):
            return question  # a question of its own
        if not core.isascii():
            return f"{core} {_TRAILING.sub('', previous)}"
        return _replace_same_head(previous, core) or _replace_sibling(previous, core) or _with_topic(previous, core)


def _same_word(a: str, b: str) -> bool:
    """employee / employees, Leave / leave."""
    a, b = re.sub(r"[^\w-]", "", a.lower()), re.sub(r"[^\w-]", "", b.lower())
    return bool(a) and (a == b or (len(a) > 3 and a.rstrip("s") == b.rstrip("s")))


def _siblings(a: str, b: str) -> bool:
    """Two different words for one slot: full-time / part-time, on-site / off-site (the same last part)."""
    a, b = a.lower().strip(".,;:?!"), b.lower().strip(".,;:?!")
    return a != b and "-" in a and "-" in b and a.rsplit("-", 1)[1] == b.rsplit("-", 1)[1]


def _replace_same_head(previous: str, core: str) -> str | None:
    """'sick leave' into 'How many days of annual leave…' → '…of sick leave…' (same head word, English)."""
    words = core.split()
    if not words:
        return None
    prev_words = previous.split()
    for i, w in enumerate(prev_words):
        if _same_word(w, words[-1]):
            start = max(0, i - len(words) + 1)
            tail = w[len(re.sub(r"\W+$", "", w)) :]  # keep trailing punctuation
            return " ".join(prev_words[:start] + words[:-1] + [words[-1] + tail] + prev_words[i + 1 :])
    return None


def _replace_sibling(previous: str, core: str) -> str | None:
    """'part-time' into '… do full-time employees get?' → '… do part-time employees get?'."""
    prev_words = previous.split()
    for i, w in enumerate(prev_words):
        if any(_siblings(w, c) for c in core.split()):
            tail = w[len(re.sub(r"\W+$", "", w)) :]
            return " ".join(prev_words[:i] + [core + tail] + prev_words[i + 1 :])
    return None


def _with_topic(previous: str, core: str) -> str:
    """The follow-up's own words plus the topic it lacks, the previous question's content words: 'contractors'
    after 'How many days of annual leave do I get?' → 'contractors days annual leave' (one question, not two)."""
    own = core.split()
    content = set(tokenize(previous))
    topic = []
    for w in previous.split():
        bare = re.sub(r"^\W+|\W+$", "", w)
        if bare.lower() in content and not any(_same_word(bare, o) or _siblings(bare, o) for o in own):
            topic.append(bare)
    return " ".join([core, *dict.fromkeys(topic)])


class LLMCondenser:
    """The LLM rewrites the follow-up; when it fails or runs out of time (``client``, ``budget``: see
    answer/llm.py), ``fallback`` condenses instead: a follow-up never fails because the LLM did. It takes a third
    of the question's LLM time at most: the answer needs the rest."""

    def __init__(self, chat_model, fallback: Condenser | None = None, *, client=None, budget=None):
        self.chat_model = chat_model
        self.fallback = fallback or TopicCarryover()
        self.client, self.budget = client, budget

    def condense(self, question: str, history: History | None) -> str:
        if not previous_user_question(history):
            return question
        from kb_assistant.answer import load_prompt
        from kb_assistant.language import detect_language

        lines = [f"{m['role']}: {m['content']}" for m in (history or [])[-6:] if m.get("content")]
        prompt = (
            load_prompt("condense", detect_language(question))
            .replace("{history}", "\n".join(lines))
            .replace("{question}", question)
        )
        try:
            if self.client is None:
                rewritten = str(self.chat_model.invoke(prompt).content).strip()
            else:
                deadline = self.budget.deadline(cap_s=self.budget.seconds / 3) if self.budget else time.monotonic() + 60
                rewritten = self.client.invoke_text(prompt, deadline).strip()
        except Exception:  # LLMUnavailable, or any error of a chat model used directly
            if self.client is not None:
                self.client.health.count_fallback("topic_carryover")
            return self.fallback.condense(question, history)
        return rewritten.splitlines()[0].strip() if rewritten else question
