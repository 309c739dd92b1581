"""Assistant.ask(): the whole question pipeline, in order. Every surface (CLI, chat, API, eval) calls it.

question ─► condense (history) ─► cache ─► retrieve (dense + keyword) ─► fuse ─► rerank ─► confidence ─► answer
                                                                                                         └► escalate?

Every answer is logged in the queue database; an unanswered one (or a request for a person) opens a ticket.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kb_assistant.answer.grounding import sentences
from kb_assistant.citations import citation, cite, passage_record
from kb_assistant.errors import QuestionError, UnknownKnowledgeBase, UnknownTicket
from kb_assistant.evidence import Evidence, timed
from kb_assistant.handoff import has_substance, is_handoff_request, strip_handoff
from kb_assistant.language import detect_language
from kb_assistant.schema import Answer, Candidate, Feedback, Principal, Query, StreamEvent, TicketView
from kb_assistant.settings import Settings, check_kb_name, load_settings
from kb_assistant.store import KnowledgeBase, list_kbs


class Assistant:
    def __init__(self, settings: Settings | None = None, *, embeddings=None, chat_model=None):
        self.settings = settings or load_settings()
        self._embeddings = embeddings
        self._chat_model = chat_model
        self._indexes: dict[str, KnowledgeBase] = {}
        self._cache = None
        self._queue = None
        from kb_assistant.answer.llm import LLMHealth

        self.llm_health = LLMHealth.for_settings(self.settings)  # failures and the circuit breaker, for /metrics

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
            from kb_assistant.cache.semantic import SemanticCache

            self._cache = SemanticCache(self.settings, self.embeddings)
        return self._cache

    @property
    def queue(self):
        """The human queue (tickets, answer log); its database is opened and migrated on first use."""
        if self._queue is None:
            from kb_assistant.queue.store import TicketQueue

            self._queue = TicketQueue(self.settings)
        return self._queue

    def knowledge_bases(self, principal: Principal | None = None) -> list[str]:
        """Every KB; with ``principal``, those it may use (a KB limited to groups: ``kb_assistant.kb_access``)."""
        from kb_assistant.kb_access import may_use

        names = list_kbs(self.settings)
        return names if principal is None else [kb for kb in names if may_use(self.settings, kb, principal)]

    def index(self, kb: str, principal: Principal | None = None) -> KnowledgeBase:
        """The KB named ``kb``; with ``principal``, only if it may use it (else UnknownKnowledgeBase, as for a KB
        that does not exist: a KB's name is not revealed to those it is closed to)."""
        check_kb_name(kb)
        if principal is not None:
            from kb_assistant.kb_access import may_use

            if kb not in self._indexes or not may_use(self.settings, kb, principal):
                known = self.knowledge_bases(principal)  # only the KBs it may use are named
                if kb not in known:
                    raise UnknownKnowledgeBase(f"no knowledge base named {kb!r} (known: {', '.join(known) or 'none'})")
        if kb not in self._indexes:
            check_kb_name(kb)
            known = self.knowledge_bases()
            if kb not in known:
                raise UnknownKnowledgeBase(
                    f"no knowledge base named {kb!r} in {self.settings.data_dir} "
                    f"(known: {', '.join(known) or 'none'}); create it with: kb ingest PATH --kb {kb}"
                )
            self._indexes[kb] = KnowledgeBase(self.settings, kb, self.embeddings)
        return self._indexes[kb]

    def _llm_client(self):
        from kb_assistant.answer.llm import LLMClient

        return LLMClient.for_settings(self.chat_model, self.llm_health, self.settings)

    def _condenser(self, budget):
        from kb_assistant.condense import LLMCondenser, TopicCarryover

        if self.chat_model is None:
            return TopicCarryover()
        return LLMCondenser(self.chat_model, client=self._llm_client(), budget=budget)

    def _reranker(self, index: KnowledgeBase):
        from kb_assistant import rerank

        if not self.settings.rerank:
            return rerank.NoReranker()
        if self.settings.reranker_model:
            return rerank.CrossEncoderReranker(self.settings.reranker_model, index.stats)
        return rerank.EvidenceReranker(index, dense=self.settings.dense_search, keyword=self.settings.keyword_search)

    def _answerer(self, index: KnowledgeBase, budget=None):
        if self.chat_model is not None:
            from kb_assistant.answer.llm import LLMAnswerer

            return LLMAnswerer(self.chat_model, client=self._llm_client(), budget=budget)
        from kb_assistant.answer.extractive import ExtractiveAnswerer

        return ExtractiveAnswerer(index.stats, following=index.following)

    # --- the pipeline ------------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        history: list[dict] | None = None,
        kb: str = "default",
        session_id: str | None = None,
        user: str | None = None,
        principal: Principal | None = None,
    ) -> Answer:
        for event in self.stream(
            question, history=history, kb=kb, session_id=session_id, user=user, principal=principal
        ):
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
        principal: Principal | None = None,
    ) -> Iterator[StreamEvent]:
        """``principal``: who asks (their groups decide which documents the answer may draw on); without one, a
        principal ``user`` in no group, who sees only documents of sources without groups."""
        question = self._check_question(question)
        principal = principal if principal is not None else Principal(user=user)
        history = self._bound_history(history)
        from kb_assistant.answer.llm import LLMBudget

        budget = LLMBudget(self.settings.llm_timeout_s)  # the most this question waits for the LLM
        timings: dict[str, float] = {}
        query = Query(
            text=question, kb=kb, language=detect_language(question), history=history, session_id=session_id,
            principal=principal,
        )  # fmt: skip
        index = self.index(kb, principal)
        index.refresh(force=True)  # one version check per question: a version another replica published is seen
        view = index.view(principal)  # every stage reads the KB as the principal sees it
        s = self.settings
        if is_handoff_request(question, s.handoff_phrases):  # a person was asked for: no retrieval
            yield from self._hand_off(query)
            return

        with timed(timings, "condense"):
            standalone = self._condenser(budget).condense(question, history)
            if len(standalone) <= s.max_question_chars:  # history is context, not a way past the limit
                query.standalone = standalone
        evidence = Evidence(s, self._reranker(view), view, query, timings)  # run once: checks a hit, or answers
        with timed(timings, "cache"):  # keyed on the standalone question: a follow-up never hits another's entry
            cached = (
                self.cache.lookup(index, query.standalone, query.language, agrees=evidence.agrees)
                if s.cache_enabled
                else None
            )
        timings["cache"] = round(timings["cache"] - evidence.spent_ms, 2)  # the check's retrieval is its own stage
        if cached is not None and cached.answer is not None and not view.visible(_drawn_on(cached.answer)):
            cached.answer, cached.cacheable = None, False  # not for this principal: a miss that must not replace it
        if cached is not None and cached.answer is not None:
            answer = cached.answer.model_copy(update={"question": question, "standalone_question": query.standalone,
                                                      "session_id": session_id, "timings_ms": {}})  # fmt: skip
            yield StreamEvent(type="delta", text=answer.text)
            with timed(timings, "log"):
                self._record(answer, [], query, ms=sum(timings.values()))
            timings["total"] = round(sum(timings.values()), 2)
            answer.timings_ms = timings
            yield StreamEvent(type="final", answer=answer)
            return
        if cached is not None and query.vector is None:
            query.vector = cached.query_vector  # the cache check embedded the question: retrieval reuses it
        try:
            yield from self._answer(query, view, evidence, timings, cached, budget=budget)
        finally:
            if cached is not None:
                cached.release()  # askers of the same question waiting on this answer look again

    def _answer(self, query: Query, index, evidence, timings, cached, budget=None) -> Iterator[StreamEvent]:
        s = self.settings
        standalone, lang = query.standalone, query.language
        passages = evidence.candidates()[: s.top_k]
        confidence = evidence.confidence()

        answer = Answer(
            question=query.text, standalone_question=standalone, text="", answered=False,
            confidence=confidence, language=lang, kb=index.name, timings_ms=timings, session_id=query.session_id,
            passages=[citation(n, c) for n, c in enumerate(passages, 1)],
        )  # fmt: skip
        answer._evidence = evidence.features  # what the confidence reads, on demand (eval.calibrate refits on it)
        fell_back = False  # the LLM was unavailable: the answer is not cached (the LLM may be back next time)
        if confidence < s.confidence_threshold:
            answer.escalation_reason = "low_confidence"
        else:
            with timed(timings, "answer"):
                draft, fell_back = self._draft(standalone, passages, lang, index, budget, confidence)
            answer.usage = draft.usage if draft else None
            if draft is None:  # the LLM is unavailable and the passages support no extractive answer
                answer.escalation_reason = "llm_unavailable"
            elif draft.found:
                answer.text, answer.answered = draft.text, True
                answer.citations = cite(draft.text, passages)
                if not answer.citations:  # an answer that cites nothing is not supported by the KB
                    answer.answered, answer.escalation_reason = False, "no_citation"
            else:
                answer.escalation_reason = draft.reason or "not_in_context"
        if not answer.answered:
            answer.citations = []
            with timed(timings, "escalate"):
                answer.ticket_id = self._record(answer, passages, query, ms=sum(timings.values()))
            answer.text = self._holding_reply(lang, answer.ticket_id)
            yield StreamEvent(type="delta", text=answer.text)
        else:
            for piece in sentences(answer.text) if self.chat_model is not None else [answer.text]:
                yield StreamEvent(type="delta", text=piece)  # only text accepted as the answer is ever sent
            with timed(timings, "log"):
                self._record(answer, passages, query, ms=sum(timings.values()))
        timings["total"] = round(sum(timings.values()), 2)
        answer.timings_ms = timings  # pydantic copied the dict at construction
        if cached is not None and cached.cacheable and not fell_back:
            self.cache.store(self.index(index.name), standalone, lang, answer, full_ms=timings["total"],
                             vector=query.vector)  # fmt: skip
        yield StreamEvent(type="final", answer=answer)

    def _draft(self, standalone, passages, lang, index, budget, confidence):
        """(the answerer's Draft, False); its streamed deltas are held back: only an accepted answer is shown.
        When the LLM is unavailable: (the extractive answer if the confidence reaches the fallback's bar, else
        None, True)."""
        from kb_assistant.answer.extractive import ExtractiveAnswerer
        from kb_assistant.answer.llm import LLMUnavailable

        try:
            return _last_draft(self._answerer(index, budget).generate(standalone, passages, lang)), False
        except LLMUnavailable:
            if self.chat_model is None:
                raise
        s = self.settings
        floor = s.confidence_threshold if s.llm_fallback_min_confidence is None else s.llm_fallback_min_confidence
        if confidence >= floor:
            answerer = ExtractiveAnswerer(index.stats, following=index.following)
            draft = _last_draft(answerer.generate(standalone, passages, lang))
            if draft.found:
                self.llm_health.count_fallback("extractive")
                return draft, True
        self.llm_health.count_fallback("holding_reply")
        return None, True

    # --- escalation ----------------------------------------------------------------------------------
    def _hand_off(self, query: Query) -> Iterator[StreamEvent]:
        """The user asked for a person: the ticket carries their question (or the one before, if the message
        was only "转人工") and the conversation."""
        asked = query.text
        if not has_substance(strip_handoff(query.text, self.settings.handoff_phrases)):
            earlier = [str(m.get("content", "")).strip() for m in query.history if m.get("role") == "user"]
            asked = earlier[-1] if earlier and earlier[-1] else query.text
        answer = Answer(
            question=query.text, standalone_question=asked, text="", answered=False, confidence=0.0,
            language=query.language, kb=query.kb, session_id=query.session_id, escalation_reason="handoff",
        )  # fmt: skip
        timings: dict[str, float] = {}
        with timed(timings, "escalate"):
            answer.ticket_id = self._record(answer, [], query, ms=0.0)
        answer.text = self._holding_reply(query.language, answer.ticket_id)
        answer.timings_ms = {**timings, "total": timings["escalate"]}
        yield StreamEvent(type="delta", text=answer.text)
        yield StreamEvent(type="final", answer=answer)

    def _holding_reply(self, lang: str, ticket_id: str | None) -> str:
        text = self.settings.holding_reply(lang)
        if ticket_id:
            note = self.settings.ticket_note_zh if lang == "zh" else self.settings.ticket_note_en
            text += note.format(ticket=ticket_id)
        return text

    def _record(self, answer: Answer, passages: list[Candidate], query: Query, ms: float = 0.0) -> str | None:
        """Log the answer (one insert); an unanswered one opens or joins a ticket, whose id is returned.
        The queue spools what it cannot write, so this never fails the user's question."""
        from kb_assistant.queue.access import new_ticket_token, token_hash
        from kb_assistant.queue.store import AnswerRecord

        embedding = access_hash = None
        if not answer.answered:  # for grouping near-identical open questions and clustering gaps
            embedding = [round(float(x), 5) for x in self.embeddings.embed_query(answer.standalone_question)]
            answer.ticket_token = new_ticket_token()  # the asker's key to the ticket; the queue keeps its hash
            access_hash = token_hash(answer.ticket_token)
        entry = AnswerRecord(
            id=answer.id, kb=answer.kb, question=answer.question, standalone_question=answer.standalone_question,
            language=answer.language, text=answer.text, answered=answer.answered, confidence=answer.confidence,
            reason=answer.escalation_reason, session_id=answer.session_id, user=query.user,
            passages=[passage_record(n, c) for n, c in enumerate(passages, start=1)]
            or [{**p.model_dump(exclude={"snippet"}), "text": p.snippet[:1000]} for p in answer.passages],
            conversation=[{"role": m.get("role", ""), "content": str(m.get("content", ""))[:4000]}
                          for m in query.history[-20:]],
            embedding=embedding, access_hash=access_hash, cached=answer.cached, answer_ms=round(ms, 2),
            prompt_tokens=answer.usage.prompt_tokens if answer.usage else 0,
            completion_tokens=answer.usage.completion_tokens if answer.usage else 0,
            cited=list(dict.fromkeys(c.source for c in answer.citations)), scope=query.principal.scope,
        )  # fmt: skip
        return self.queue.record(entry)

    # --- the human queue -----------------------------------------------------------------------------
    def feedback(self, answer_id: str, rating: str, comment: str = "", session_id: str | None = None) -> Feedback:
        """Record 👍/👎 on an answer; 👎 with a comment escalates it and evicts it from the cache. The Feedback
        carries the ticket and the token that reads it (``ticket()``)."""
        from kb_assistant.queue.access import new_ticket_token, token_hash

        token = new_ticket_token()
        ticket_id = self.queue.feedback(answer_id, rating, comment, session_id, access_hash=token_hash(token))
        if rating == "down":
            self._on_downvote(answer_id)
        return Feedback(answer_id=answer_id, rating=rating, comment=comment or "", ticket_id=ticket_id,
                        ticket_token=token if ticket_id else None)  # fmt: skip

    def _on_downvote(self, answer_id: str) -> None:
        """A 👎'd answer leaves the semantic cache and is not stored again until its sources change."""
        if self.settings.cache_enabled:
            self.cache.evict(answer_id)

    def ticket(self, ticket_id: str, token: str | None) -> TicketView:
        """A ticket's status and answer, for the user who asked: ``token`` is the ``ticket_token`` of the Answer
        (or Feedback) that opened their request. Anyone else gets UnknownTicket, as for a ticket that does not
        exist. Agents read tickets through ``queue`` (console, `kb queue`)."""
        if not isinstance(ticket_id, str) or not ticket_id.strip():
            raise UnknownTicket("no ticket id given: ticket ids look like T-000123")
        return self.queue.view(ticket_id, token)

    def replies(self, session_id: str) -> list[TicketView]:
        """The tickets of one chat session, answered ones with the agent's answer. The session id is the key:
        a surface showing replies must use ids nobody else can know or pick (the chat derives its from a secret
        kept in the browser: ``queue.access.chat_session_id``), never one a client merely supplies."""
        return self.queue.session_replies(session_id) if session_id else []

    def _check_question(self, question: str) -> str:
        if not isinstance(question, str):
            raise QuestionError("the question is empty: type a question")
        if _SURROGATE.search(question):
            raise QuestionError(
                "the question holds an unpaired UTF-16 surrogate (e.g. \\ud800), which is not text: "
                "send it as valid UTF-8"
            )
        question = _INVISIBLE.sub("", question).strip()  # NULs, zero-width spaces, BOMs, control characters
        if not question:
            raise QuestionError("the question is empty: type a question")
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(
                f"the question is {len(question)} characters long, over the limit of "
                f"{self.settings.max_question_chars} (KB_MAX_QUESTION_CHARS): shorten it"
            )
        return question

    def _bound_history(self, history: list[dict] | None) -> list[dict]:
        """The last ``KB_MAX_HISTORY_MESSAGES`` turns, each cut to ``KB_MAX_QUESTION_CHARS`` and cleaned like a
        question: a follow-up is condensed from bounded context, and the ticket stores no invalid text."""
        limit, kept = self.settings.max_question_chars, []
        for m in (history or [])[-self.settings.max_history_messages :]:
            if not isinstance(m, dict):
                continue
            content = _INVISIBLE.sub("", _SURROGATE.sub("\ufffd", str(m.get("content") or ""))).strip()
            kept.append({"role": str(m.get("role") or ""), "content": content[:limit]})
        return kept


# Unpaired surrogates cannot be encoded (UTF-8, SQLite, Postgres); the rest is invisible and never a question.
_SURROGATE = re.compile("[\ud800-\udfff]")
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


def _drawn_on(answer: Answer) -> list[str]:
    """Every chunk an answer shows: its citations and its passages."""
    return [c.chunk_id for c in (*answer.citations, *answer.passages)]


def _last_draft(items):
    draft = None
    for item in items:
        if not isinstance(item, str):
            draft = item
    return draft
