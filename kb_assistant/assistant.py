"""Assistant.ask(): the whole question pipeline, in order. Every surface (CLI, chat, API, eval) calls it.

question ─► condense (history) ─► cache ─► retrieve (dense + keyword) ─► fuse ─► rerank ─► confidence ─► answer
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kb_assistant.errors import QuestionError, UnknownKnowledgeBase
from kb_assistant.index import KnowledgeBaseIndex, list_kbs
from kb_assistant.retrieval import Candidate, hybrid_search
from kb_assistant.schema import Answer, Citation, Feedback, StreamEvent, TicketView
from kb_assistant.settings import Settings, check_kb_name, load_settings
from kb_assistant.text import detect_language

_MARKER = re.compile(r"\[(\d{1,2})\]")


class Assistant:
    def __init__(self, settings: Settings | None = None, *, embeddings=None, chat_model=None):
        self.settings = settings or load_settings()
        self._embeddings = embeddings
        self._chat_model = chat_model
        self._indexes: dict[str, KnowledgeBaseIndex] = {}
        self._cache = None

    # --- wiring (lazy: nothing heavy is loaded until the first question) --------------------------
    @property
    def embeddings(self):
        if self._embeddings is None:
            from kb_assistant.embeddings import make_embeddings

            self._embeddings = make_embeddings(self.settings)
        return self._embeddings

    @property
    def chat_model(self):
        if self._chat_model is None and self.settings.llm_enabled:
            from kb_assistant.answer.llm import make_chat_model

            self._chat_model = make_chat_model(self.settings)
        return self._chat_model

    @property
    def cache(self):
        if self._cache is None:
            from kb_assistant.cache import SemanticCache

            self._cache = SemanticCache(self.settings, self.embeddings)
        return self._cache

    def knowledge_bases(self) -> list[str]:
        return list_kbs(self.settings)

    def index(self, kb: str) -> KnowledgeBaseIndex:
        if kb not in self._indexes:
            check_kb_name(kb)
            known = self.knowledge_bases()
            if kb not in known:
                raise UnknownKnowledgeBase(
                    f"no knowledge base named {kb!r} in {self.settings.data_dir} "
                    f"(known: {', '.join(known) or 'none'}); create it with: kb ingest PATH --kb {kb}"
                )
            self._indexes[kb] = KnowledgeBaseIndex(self.settings, kb, self.embeddings)
        return self._indexes[kb]

    def _condenser(self):
        from kb_assistant.condense import LLMCondenser, TopicCarryover

        return LLMCondenser(self.chat_model) if self.chat_model is not None else TopicCarryover()

    def _reranker(self, index: KnowledgeBaseIndex):
        from kb_assistant import rerank

        if not self.settings.rerank:
            return rerank.NoReranker()
        if self.settings.reranker_model:
            return rerank.CrossEncoderReranker(self.settings.reranker_model, index.keyword)
        return rerank.EvidenceReranker(index, dense=self.settings.dense_search, keyword=self.settings.keyword_search)

    def _answerer(self, index: KnowledgeBaseIndex):
        if self.chat_model is not None:
            from kb_assistant.answer.llm import LLMAnswerer

            return LLMAnswerer(self.chat_model)
        from kb_assistant.answer.extractive import ExtractiveAnswerer

        return ExtractiveAnswerer(index.keyword)

    # --- the pipeline ------------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        history: list[dict] | None = None,
        kb: str = "default",
        session_id: str | None = None,
        user: str | None = None,
    ) -> Answer:
        for event in self.stream(question, history=history, kb=kb, session_id=session_id, user=user):
            if event.type == "final":
                return event.answer
        raise AssertionError("stream() ended without a final answer")  # our bug, not the user's

    def stream(
        self,
        question: str,
        *,
        history: list[dict] | None = None,
        kb: str = "default",
        session_id: str | None = None,
        user: str | None = None,
    ) -> Iterator[StreamEvent]:
        question = self._check_question(question)
        timings: dict[str, float] = {}
        lang = detect_language(question)
        index = self.index(kb)
        s = self.settings

        with _timed(timings, "condense"):
            standalone = self._condenser().condense(question, history)
        with _timed(timings, "cache"):  # keyed on the standalone question: a follow-up never hits another's entry
            cached = self.cache.lookup(index, standalone, lang) if s.cache_enabled else None
        if cached is not None and cached.answer is not None:
            answer = cached.answer.model_copy(update={"question": question, "standalone_question": standalone,
                                                      "session_id": session_id, "timings_ms": {}})  # fmt: skip
            timings["total"] = round(sum(timings.values()), 2)
            answer.timings_ms = timings
            yield StreamEvent(type="delta", text=answer.text)
            yield StreamEvent(type="final", answer=answer)
            return
        try:
            yield from self._answer(question, standalone, lang, index, timings, session_id, cached)
        finally:
            if cached is not None:
                cached.release()  # askers of the same question waiting on this answer look again

    def _answer(self, question, standalone, lang, index, timings, session_id, cached) -> Iterator[StreamEvent]:
        s = self.settings
        with _timed(timings, "retrieve"):
            candidates = hybrid_search(
                index, standalone, k=s.candidate_k, dense=s.dense_search, keyword=s.keyword_search, lang=lang,
                query_vector=cached.query_vector if cached else None,
            )  # fmt: skip
        with _timed(timings, "rerank"):
            candidates = self._reranker(index).rerank(standalone, candidates)
        passages = candidates[: s.top_k]
        confidence = answer_confidence(passages, lang)

        answer = Answer(
            question=question, standalone_question=standalone, text="", answered=False,
            confidence=confidence, language=lang, kb=index.name, timings_ms=timings, session_id=session_id,
            passages=[_citation(n, c) for n, c in enumerate(passages, 1)],
        )  # fmt: skip
        if confidence < s.confidence_threshold:
            answer.escalation_reason = "low_confidence"
        else:
            draft = None
            with _timed(timings, "answer"):
                for item in self._answerer(index).generate(standalone, passages, lang):
                    if isinstance(item, str):
                        yield StreamEvent(type="delta", text=item)
                    else:
                        draft = item
            answer.usage = draft.usage
            if draft.found:
                answer.text, answer.answered = draft.text, True
                answer.citations = cite(draft.text, passages)
                if not answer.citations:  # an answer that cites nothing is not supported by the KB
                    answer.answered, answer.escalation_reason = False, "no_citation"
            else:
                answer.escalation_reason = "not_in_context"
        if not answer.answered:
            answer.text = s.holding_reply(lang)
            answer.citations = []
            yield StreamEvent(type="delta", text=answer.text)
        elif self.chat_model is None:
            yield StreamEvent(type="delta", text=answer.text)  # extractive answers arrive whole
        timings["total"] = round(sum(timings.values()), 2)
        answer.timings_ms = timings  # pydantic copied the dict at construction
        if cached is not None and cached.cacheable:
            self.cache.store(index, standalone, lang, answer, full_ms=timings["total"], vector=cached.query_vector)
        yield StreamEvent(type="final", answer=answer)

    # --- the human queue (issue 5 fills these in) ----------------------------------------------------
    def feedback(self, answer_id: str, rating: str, comment: str = "", session_id: str | None = None) -> Feedback:
        """Record 👍/👎 on an answer; 👎 with a comment escalates it and evicts it from the cache."""
        raise NotImplementedError("the human queue is not wired yet (issue 5)")

    def ticket(self, ticket_id: str) -> TicketView:
        """A ticket's status and answer, for the user who asked (raises UnknownTicket)."""
        raise NotImplementedError("the human queue is not wired yet (issue 5)")

    def replies(self, session_id: str) -> list[TicketView]:
        """The tickets of one chat session, answered ones with the agent's answer."""
        raise NotImplementedError("the human queue is not wired yet (issue 5)")

    def _check_question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("the question is empty: type a question")
        question = question.strip()
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(
                f"the question is {len(question)} characters long, over the limit of "
                f"{self.settings.max_question_chars} (KB_MAX_QUESTION_CHARS): shorten it"
            )
        return question


def answer_confidence(passages: list[Candidate], lang: str) -> float:
    """0..1 from the evidence of the best passage: question coverage, dense similarity, rerank score.

    MiniLM similarities mean little for Chinese, so there coverage of the question's words carries the weight.
    """
    if not passages:
        return 0.0
    top = passages[0]
    coverage = top.extra.get("coverage", top.keyword)
    dense = min(1.0, max(0.0, (top.dense - 0.25) / 0.45))
    if "cross_encoder" in top.extra:
        value = 0.5 * top.score + 0.3 * coverage + 0.2 * dense
    elif lang == "zh":
        value = 0.85 * coverage + 0.15 * dense
    else:
        value = 0.5 * coverage + 0.5 * dense
    return round(min(1.0, max(0.0, value)), 4)


def cite(text: str, passages: list[Candidate]) -> list[Citation]:
    """Citations for the [n] markers in ``text``, in order of first use; unknown numbers are ignored."""
    citations, seen = [], set()
    for m in _MARKER.finditer(text):
        n = int(m.group(1))
        if 1 <= n <= len(passages) and n not in seen:
            seen.add(n)
            citations.append(_citation(n, passages[n - 1]))
    return citations


def _citation(n: int, c: Candidate) -> Citation:
    return Citation(
        n=n, source=c.chunk.source, section=c.chunk.section, page=c.chunk.page, chunk_id=c.chunk.id,
        snippet=c.chunk.text[:2000], score=round(min(1.0, max(0.0, c.score)), 4),
    )  # fmt: skip


@contextmanager
def _timed(timings: dict[str, float], stage: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round((time.perf_counter() - start) * 1000, 2)
