"""Synonym sets: one concept in several wordings and both languages, for keyword search and question coverage.

A glossary file is UTF-8 text, one concept per line, its terms separated by tabs; ``#`` starts a comment::

    年假	带薪年休假	annual leave	vacation days	PTO
    配偶	老婆	妻子	spouse	wife

A line ``narrower > broader`` (a wording of each of two concepts) says that the first concept is a kind of the second,
whose rules govern it: ``国庆节 > 法定节假日``, ``辞职 > 离职``. Such a concept is not out of the KB's scope when the
KB speaks of its broader concept (``KnowledgeBase.missing_concepts``); keyword search and coverage do not use the
link.

Any term of a line stands for any other. Keyword search adds the other terms' words to a question that uses one
of them, and a passage covers a question's word when it holds that word or another term of the same concept.
That is what lets an English question find a Chinese-only handbook section ("office hours" → 上班时间) and a
colloquial question find the handbook's wording (老婆生孩子 → 配偶分娩), which MiniLM and BM25 cannot do alone.

The bundled ``lexicon/workplace-glossary.tsv`` covers the HR / admin / IT / expenses vocabulary of an employee
handbook; ``KB_GLOSSARY_FILES`` adds a company's own files, ``KB_GLOSSARY_BUILTIN=false`` drops the bundled one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kb_assistant.errors import KBError
from kb_assistant.language import fold_plural, is_cjk, to_simplified, tokenize

BUILTIN = Path(__file__).parent / "lexicon" / "workplace-glossary.tsv"


class GlossaryError(KBError):
    pass


@dataclass(frozen=True)
class Term:
    text: str  # lower-cased
    tokens: tuple[str, ...]  # its content words, as the keyword index tokenizes them
    words: tuple[str, ...]  # every word, stemmed: what a question must contain in a row ("may day" ≠ "day")
    cjk: bool

    def said_in(self, text_lower: str, text_words: str) -> bool:
        """Does a text say this term? ``text_words``: ``word_sequence(text)``. An English term must appear as a
        phrase: "business hours" is not said by "business class … 6 hours"."""
        return self.text in to_simplified(text_lower) if self.cjk else f" {' '.join(self.words)} " in text_words


@dataclass(frozen=True)
class Match:
    """A term found in a question, with the other wordings of its concept."""

    term: Term
    alternatives: tuple[Term, ...]
    broader: tuple[Term, ...] = ()  # every wording of the concepts this one is a kind of, transitively

    def question_tokens(self, tokens) -> set[str]:
        """The question's tokens this term accounts for (jieba may cut the term differently in context)."""
        if self.term.cjk:
            return {t for t in tokens if is_cjk(t) and t in self.term.text}
        stems = {fold_plural(x) for x in self.term.tokens}
        return {t for t in tokens if fold_plural(t) in stems}

    def covered_by(self, text_lower: str, text_words: str) -> bool:
        """Does a passage say this concept in any of its wordings? ``text_words``: ``word_sequence(text)``."""
        return any(t.said_in(text_lower, text_words) for t in (self.term, *self.alternatives))


class Glossary:
    def __init__(self, concepts: list[list[str]], links: list[tuple[str, str, str]] = ()):
        """``links``: (narrower, broader, where) — two wordings, and the file and line that says so, for errors."""
        self.concepts: list[tuple[Term, ...]] = []
        self._latin: dict[tuple[str, ...], list[tuple[Term, int]]] = {}
        self._cjk: list[tuple[Term, int]] = []
        for terms in concepts:
            built = tuple(t for t in (_term(x) for x in terms) if t is not None)
            if len(built) < 2:
                continue
            n = len(self.concepts)
            self.concepts.append(built)
            for term in built:
                if term.cjk:
                    self._cjk.append((term, n))
                else:
                    self._latin.setdefault(term.words, []).append((term, n))
        self._cjk.sort(key=lambda item: -len(item[0].text))  # longest first: 带薪年休假 before 年假
        self._max_words = max((len(k) for k in self._latin), default=0)
        self._broader = self._resolve(links)
        self._memo: dict[str, list[Match]] = {}
        self._jieba = None  # a private jieba that knows the terms (the keyword index's own cut stays as it is)

    def __len__(self) -> int:
        return len(self.concepts)

    def _resolve(self, links) -> dict[int, tuple[Term, ...]]:
        """Each concept's broader concepts' wordings, transitively (a cycle ends where it comes back)."""
        concept_of: dict[str, int] = {}
        for n, terms in enumerate(self.concepts):
            for term in terms:
                concept_of.setdefault(term.text, n)
        parents: dict[int, list[int]] = {}
        for narrower, broader, where in links:
            found = [concept_of.get(x.strip().lower()) for x in (narrower, broader)]
            for x, n in zip((narrower, broader), found, strict=True):
                if n is None:
                    raise GlossaryError(f"{where}: {x.strip()!r} is no term of any concept (in {narrower} > {broader})")
            if found[0] != found[1]:
                parents.setdefault(found[0], []).append(found[1])
        closure: dict[int, tuple[Term, ...]] = {}
        for n in parents:
            seen, todo = {n}, list(parents[n])
            while todo:
                p = todo.pop()
                if p not in seen:
                    seen.add(p)
                    todo += parents.get(p, [])
            closure[n] = tuple(t for p in sorted(seen - {n}) for t in self.concepts[p])
        return closure

    @classmethod
    def load(cls, paths: list[Path]) -> Glossary:
        concepts: list[list[str]] = []
        links: list[tuple[str, str, str]] = []
        for path in paths:
            try:
                lines = Path(path).read_text(encoding="utf-8").splitlines()
            except FileNotFoundError as exc:
                raise GlossaryError(f"glossary file {path} does not exist (KB_GLOSSARY_FILES)") from exc
            except UnicodeDecodeError as exc:
                raise GlossaryError(f"glossary file {path} is not UTF-8 text: {exc}") from exc
            for n, line in enumerate(lines, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                if ">" in line:
                    pair = [x.strip() for x in line.split(">")]
                    if len(pair) != 2 or not all(pair):
                        raise GlossaryError(f"{path}, line {n}: a link is 'narrower > broader', got {line!r}")
                    links.append((pair[0], pair[1], f"{path}, line {n}"))
                    continue
                terms = [t.strip() for t in line.split("\t") if t.strip()]
                if len(terms) < 2:
                    raise GlossaryError(
                        f"{path}, line {n}: a concept needs at least two terms separated by tabs, got {line!r}"
                    )
                concepts.append(terms)
        return cls(concepts, links)

    def matches(self, question: str) -> list[Match]:
        """The glossary terms a question uses (a concept at most once; a longer term wins over one inside it)."""
        if not self.concepts:
            return []
        memo = self._memo.get(question)
        if memo is None:  # rerank and the extractive answer ask about the same question many times
            if len(self._memo) > 4096:
                self._memo.clear()
            memo = self._memo[question] = self._matches(question)
        return memo

    def _matches(self, question: str) -> list[Match]:
        text = to_simplified(question.lower())  # terms are kept in Simplified: 幾點上班 uses 几点上班's terms
        found: dict[int, Term] = {}
        if self._cjk and is_cjk(text):
            # A Chinese term counts where a word of the question starts (cut by jieba knowing the glossary's
            # terms): 健身卡 says 健身, but 上下班 does not say 下班 nor 陪产假 产假.
            starts = self._word_starts(text)
            for term, n in self._cjk:  # longest first; a matched stretch is not matched again (生孩子, then not 孩子)
                if n in found:
                    continue
                at = text.find(term.text)
                while at >= 0 and at not in starts:
                    at = text.find(term.text, at + 1)
                if at >= 0:
                    found[n] = term
                    text = text[:at] + "\0" * len(term.text) + text[at + len(term.text) :]
        words = [fold_plural(w) for w in tokenize(text, keep_stopwords=True)]
        used = [False] * len(words)
        for size in range(self._max_words, 0, -1):
            for i in range(len(words) - size + 1):
                if any(used[i : i + size]):
                    continue
                for term, n in self._latin.get(tuple(words[i : i + size]), ()):
                    if n not in found:
                        found[n] = term
                        used[i : i + size] = [True] * size
        return [
            Match(term, tuple(t for t in self.concepts[n] if t is not term), self._broader.get(n, ()))
            for n, term in found.items()
        ]

    def _word_starts(self, text: str) -> set[int]:
        if self._jieba is None:
            from collections import ChainMap

            from kb_assistant.language.tokens import _jieba

            shared = _jieba().dt  # the keyword index's jieba, initialised; its dictionary is shared, not copied
            tokenizer = type(shared)()
            tokenizer.FREQ, tokenizer.total, tokenizer.initialized = ChainMap({}, shared.FREQ), shared.total, True
            for term, _ in self._cjk:
                tokenizer.add_word(term.text)
            self._jieba = tokenizer
        starts, at = set(), 0
        for word in self._jieba.lcut(text):
            starts.add(at)
            at += len(word)
        return starts

    def expansions(self, question: str, known) -> tuple[list[str], list[str]]:
        """Words of the other wordings of the concepts a question uses, for keyword search, as (stand-ins, extras):
        stand-ins for a term with a word not in ``known`` (the KB's vocabulary never says it), extras otherwise."""
        stand_ins: list[str] = []
        extras: list[str] = []
        for m in self.matches(question):
            bucket = extras if all(t in known for t in m.term.tokens) else stand_ins
            bucket += [t for alt in m.alternatives for t in alt.tokens]
        return list(dict.fromkeys(stand_ins)), list(dict.fromkeys(extras))

    def expansion_tokens(self, question: str) -> list[str]:
        """Every word of the other wordings of the concepts a question uses."""
        stand_ins, extras = self.expansions(question, ())
        return list(dict.fromkeys(stand_ins + extras))


def _term(raw: str) -> Term | None:
    text = to_simplified(raw.strip().lower())  # a glossary may be written in either script
    if not text:
        return None
    words = tuple(tokenize(text, keep_stopwords=True))
    tokens = tuple(tokenize(text)) or words
    return Term(text, tokens, tuple(fold_plural(w) for w in words), is_cjk(text)) if words else None


def word_sequence(text: str) -> str:
    """A text's words, stemmed, space-separated and space-padded: what ``Match.covered_by`` looks phrases up in."""
    return f" {' '.join(fold_plural(w) for w in tokenize(text, keep_stopwords=True))} "


@lru_cache(maxsize=8)
def _load_cached(paths: tuple[Path, ...], stamps: tuple) -> Glossary:
    return Glossary.load(list(paths))


def load_glossary(builtin: bool, files: list[Path]) -> Glossary:
    """The glossary the settings name; reloaded when a file changes."""
    paths = tuple(([BUILTIN] if builtin else []) + [Path(f) for f in files])
    stamps = tuple(p.stat().st_mtime_ns if p.exists() else None for p in paths)
    return _load_cached(paths, stamps)
