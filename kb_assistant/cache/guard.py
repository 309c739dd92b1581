"""The near-miss guard: whether a similar-looking cached question may answer a new one.

Embeddings score "can I carry over leave" and "can I cash out leave" (or 上班时间 and 下班时间) as near duplicates, so a
similar-enough cached question must also pass ``near_miss_reason``: the two questions may not differ in negation,
numbers, dates, named entities or their key content words (``detectors`` finds each). In English a content-word
conflict is a word or two swapped, or a modifier added, in an otherwise identical question ("carry over" / "cash
out", "leave" / "sick leave"); a question reworded throughout is left to the embedding, which reads rewordings well
and is fooled by lexical overlap. Such a swap passes when the cached answer itself says the new word ("new" /
"novel coronavirus") or the glossary makes both words one concept ("PTO" / "annual leave"): MiniLM's own word
vectors are no synonym signal (buy/sell and husband/wife score above novel/new and risk/vulnerable). In Chinese
every heavy word must be in both questions, weighted by the KB's IDF, so a word every document uses ("公司") weighs
little; a word the KB has never seen weighs most.
All checks are conservative on purpose: a rejected paraphrase costs one full answer, a wrong hit serves someone
the wrong policy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from kb_assistant.cache.detectors import (
    abbreviates,
    content_words,
    dates,
    entities,
    kinds_differ,
    negated,
    numbers,
    question_kind,
)
from kb_assistant.language import is_cjk, stem, tokenize

if TYPE_CHECKING:
    from kb_assistant.glossary import Glossary

Idf = Callable[[str], float]


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _covered(token: str, stem: str, other_stems: set[str], other_text: str) -> bool:
    if stem in other_stems:
        return True
    if token.isascii() and len(stem) >= 5 and any(_common_prefix(stem, s) >= 5 for s in other_stems):
        return True  # differ / different, infect / infectious
    if not token.isascii():  # jieba may split 借呗 / 蚂蚁借呗 differently: a contained word is the same word
        return token in other_text or any(not s.isascii() and s in token and len(s) >= 2 for s in other_stems)
    return False


def near_miss_reason(
    a: str,
    b: str,
    idf: Idf,
    *,
    answer: str = "",
    glossary: Glossary | None = None,
    max_uncovered: float = 0.15,
    min_shared: float = 0.5,
) -> str | None:
    """Why question ``a`` must not get the answer cached for the similar-looking question ``b``, or None when no
    difference was found.

    ``idf(token)`` weighs content words (0 or less: unknown to the KB, weighted as the rarest). A question's key
    content word (its heaviest) must appear in the other question, and the words of either question missing from
    the other may carry at most ``max_uncovered`` of its weight. In English, words swapped or added in an
    otherwise identical question pass when they are one concept of ``glossary`` ("PTO" / "annual leave") or when
    ``answer`` (the text cached for ``b``) says them: an answer that speaks of what ``a`` asks about answers it.
    Negation, numbers, dates and names are never excused.
    """
    if negated(a) != negated(b):
        return "negation"
    if numbers(a) != numbers(b):
        return "number"
    said_alike = _shared_concept_words(a, b, glossary)  # "annual leave" / "PTO": one concept, no date in it
    if dates(a) - said_alike != dates(b) - said_alike:
        return "date"
    if kinds_differ(question_kind(a), question_kind(b)):
        return "question kind"
    la, lb = a.casefold(), b.casefold()
    only_a = {e for e in entities(a) if e not in lb and not abbreviates(e, b)}
    only_b = {e for e in entities(b) if e not in la and not abbreviates(e, a)}
    if only_a and only_b:  # one name put in place of another; a name left out is a content word (below)
        return "named entity"
    words_a, words_b = content_words(a), content_words(b)
    missing_a = {s for s, t in words_a.items() if not _covered(t, s, set(words_b), lb)}
    missing_b = {s for s, t in words_b.items() if not _covered(t, s, set(words_a), la)}
    if not (missing_a or missing_b):
        return None
    sides = []
    for words, missing in ((words_a, missing_a), (words_b, missing_b)):
        weights = {s: _weight(t, idf) for s, t in words.items()} or {"": 1.0}
        key = max(weights, key=weights.get)
        sides.append((key in missing, sum(weights[s] for s in missing) / sum(weights.values()), words.get(key, "")))
    (key_a, lost_a, name_a), (key_b, lost_b, name_b) = sides
    if is_cjk(a + b):
        # Chinese: jieba segments differently and MiniLM barely reads it, so every heavy word must be in both.
        if key_a or key_b:
            return f"key word '{name_a if key_a else name_b}'"
        if max(lost_a, lost_b) > max_uncovered:
            return "content words " + _listed(words_a, missing_a, words_b, missing_b)
        return None
    return _swapped_or_narrowed(a, b, answer, glossary)


def _content_sequence(text: str) -> list[tuple[str, str]]:
    """(stem, token) of the content words in order, question-frame words ("do", "help", "mean", the "long" of
    "how long") left out."""
    words = content_words(text)
    keep = set(words.values())
    tokens = tokenize(_HOW_PHRASE.sub("how", text))
    return [(stem(t, degree=True), t) for t in tokens if t in keep and t not in _FRAME_WORDS]


_HOW_PHRASE = re.compile(r"\bhow\s+(?:long|often|much|many|far|soon|come)\b", re.IGNORECASE)  # compared as kinds


def _same_word(x: str, y: str) -> bool:
    return x == y or (len(x) >= 5 and len(y) >= 5 and _common_prefix(x, y) >= 5)


def _swapped_or_narrowed(a: str, b: str, answer: str = "", glossary: Glossary | None = None) -> str | None:
    """English: the same question but for one or two words swapped ("carry over" / "cash out") or a modifier added
    right before a shared word ("leave" / "sick leave"). A question reworded throughout is left to the embedding,
    and so is a word added at the end ("what is community spread" / "… spread mean") or away from the word it
    would narrow ("what about importing animals" / "are there regulations about importing animals"): lexical
    overlap is what fools the embedding, not rewording. A word both questions use, only elsewhere, is moved, not
    swapped. Words of one glossary concept, or ``a``'s words that ``answer`` (``b``'s) says, are no conflict."""
    sa, sb = _content_sequence(a), _content_sequence(b)
    head = 0
    while head < min(len(sa), len(sb)) and _same_word(sa[head][0], sb[head][0]):
        head += 1
    tail = 0
    while tail < min(len(sa), len(sb)) - head and _same_word(sa[-1 - tail][0], sb[-1 - tail][0]):
        tail += 1
    only_a, only_b = sa[head : len(sa) - tail], sb[head : len(sb) - tail]
    if not (only_a or only_b) or head + tail == 0 or max(len(only_a), len(only_b)) > 2:
        return None
    stems_a, stems_b = {s for s, _ in sa}, {s for s, _ in sb}
    own_a = [(s, t) for s, t in only_a if s not in stems_b]  # "the disease being called" / "the name of the disease"
    own_b = [(s, t) for s, t in only_b if s not in stems_a]
    if only_a and only_b and not (own_a or own_b):  # the same words in other places: "from A to B" / "from B to A"
        return "content words " + " / ".join(", ".join(f"'{t}'" for _, t in side) for side in (only_a, only_b))
    only_a, only_b = own_a, own_b
    if not (only_a or only_b) or _one_concept(a, b, only_a, only_b, glossary) or _answer_says(only_a, answer):
        return None
    if only_a and only_b:
        if _spells_out(only_a, only_b):
            return None
        return "content words " + " / ".join(", ".join(f"'{t}'" for _, t in side) for side in (only_a, only_b))
    added, text = (only_a, a) if only_a else (only_b, b)
    if tail and _right_before(added[-1][1], sa[len(sa) - tail][0] if only_a else sb[len(sb) - tail][0], text):
        return "content words " + ", ".join(f"'{t}'" for _, t in added) + " added"  # "sick leave", "paid leave"
    return None


def _right_before(word: str, next_stem: str, text: str) -> bool:
    """Does ``word`` come right before a word of stem ``next_stem`` in ``text`` (a modifier of it)?"""
    tokens = tokenize(text, keep_stopwords=True)
    return any(t == word and stem(n, degree=True) == next_stem for t, n in zip(tokens, tokens[1:], strict=False))


def _answer_says(words: list[tuple[str, str]], answer: str) -> bool:
    """Does the cached answer use every one of the asking question's swapped-in words (stemmed)?"""
    if not words or not answer:
        return False
    said = {stem(t, degree=True) for t in tokenize(answer)}
    return all(s in said for s, _ in words)


def _one_concept(a: str, b: str, only_a, only_b, glossary: Glossary | None) -> bool:
    """Are the words swapped between the questions wordings of one glossary concept (PTO / annual leave)?"""
    if glossary is None or not (only_a and only_b):
        return False
    ma, mb = glossary.matches(a), glossary.matches(b)
    for x in ma:
        for y in mb:
            if y.term in x.alternatives and _accounts(x, only_a) and _accounts(y, only_b):
                return True
    return False


def _shared_concept_words(a: str, b: str, glossary: Glossary | None) -> frozenset[str]:
    """The words of the glossary terms by which both questions name one concept, each in its own wording."""
    if glossary is None:
        return frozenset()
    ma, mb = glossary.matches(a), glossary.matches(b)
    pairs = [(x, y) for x in ma for y in mb if y.term in x.alternatives or y.term == x.term]
    return frozenset(w for x, y in pairs for m in (x, y) for w in m.term.text.split())


def _accounts(match, words: list[tuple[str, str]]) -> bool:
    """Does a glossary term found in a question account for all of the question's swapped words?"""
    return all(t in set(match.term.tokens) or t in match.term.text.split() for _, t in words)


def _spells_out(x: list[tuple[str, str]], y: list[tuple[str, str]]) -> bool:
    """'us' / 'united states', 'who' / 'world health organization': an acronym and its words are one name."""
    for short, long in ((x, y), (y, x)):
        if len(short) == 1 and len(long) >= 2 and short[0][1] == "".join(t[0] for _, t in long):
            return True
    return False


# Verbs and nouns that frame a question rather than say what it is about: "what can I do to", "how should I act",
# "what does X mean", "is it allowed to".
_FRAME_WORDS = frozenset(
    [
        "do", "does", "did", "done", "doing", "act", "help", "helps", "mean", "means", "meaning", "happen",
        "happens", "understand", "allowed", "possible", "ways", "way", "best",
    ]
)  # fmt: skip


def _listed(words_a: dict, missing_a: set, words_b: dict, missing_b: set) -> str:
    return " / ".join(
        ", ".join(f"'{w[s]}'" for s in sorted(m)) or "-" for w, m in ((words_a, missing_a), (words_b, missing_b))
    )


def _weight(token: str, idf: Idf) -> float:
    w = idf(token)
    return w if w > 0 else UNKNOWN_WORD_WEIGHT


UNKNOWN_WORD_WEIGHT = 12.0  # above any IDF a KB of under 100k chunks gives: a word the KB never uses is specific
