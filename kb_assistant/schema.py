"""Contracts between the pipeline's stages: pydantic models for what crosses a process or the wire, and the two
dataclasses every stage passes on — the ``Query`` (one question, built once per ask) and its ``Candidate``
passages."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal
from uuid import uuid4

from pydantic import BaseModel, Field, PrivateAttr


class Chunk(BaseModel):
    """One retrievable piece of a document, as stored in the index."""

    id: str
    text: str
    source: str = Field(description="File name relative to the ingested folder (or the file name).")
    title: str = ""
    section: str = Field("", description="Section path, e.g. 'Leave > Sick leave'.")
    page: int | None = None
    kind: Literal["text", "faq"] = "text"
    question: str = Field("", description="For FAQ chunks: the question, matched as well as the answer.")
    next_id: str = Field("", description="The chunk that follows this one in the same section ('' at its end).")

    def search_text(self) -> str:
        """What is embedded and keyword-indexed: the text with the heading or question it sits under."""
        if self.kind == "faq":
            return f"{self.question}\n{self.text}"
        leaf = self.section.rsplit(" > ", 1)[-1]
        return f"{leaf}\n{self.text}" if leaf else self.text

    def metadata(self) -> dict:
        """Flat metadata for the vector store (Chroma accepts no None values)."""
        meta = self.model_dump(exclude={"text", "page"})
        if self.page is not None:
            meta["page"] = self.page
        return meta


GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def parse_groups(value: str | Iterable[str] | None, *, what: str = "groups") -> frozenset[str]:
    """Access group names from "a,b" (or an iterable of names): letters, digits, . _ @ -, at most 64 characters,
    case kept. Raises ValueError naming ``what`` and the bad name."""
    if value is None:
        return frozenset()
    parts = re.split(r"[,\s]+", value) if isinstance(value, str) else [str(v) for v in value]
    names = [p.strip() for p in parts if p and p.strip()]
    for name in names:
        if not GROUP_NAME.match(name):
            raise ValueError(
                f"{what}: {name!r} is not a group name (letters, digits and . _ @ -, starting with a letter or "
                "digit, at most 64 characters)"
            )
    return frozenset(names)


@dataclass(frozen=True)
class Principal:
    """Who asks: a user id and the access groups they are in. Surfaces build it (``ui.principal`` for the server,
    ``--user/--groups`` for the CLI); the core enforces it. A principal in no group sees only documents of
    sources without groups; one in a group also sees the documents of the sources limited to that group."""

    user: str | None = None
    groups: frozenset[str] = frozenset()

    @classmethod
    def of(cls, user: str | None = None, groups: str | Iterable[str] | None = None) -> Principal:
        return cls(user=user or None, groups=parse_groups(groups))

    def may_see(self, groups: Iterable[str]) -> bool:
        """Whether something limited to ``groups`` is visible (empty ``groups``: unrestricted)."""
        groups = frozenset(groups)
        return not groups or bool(groups & self.groups)

    @property
    def scope(self) -> str:
        """The access scope as one string ("" for no group): tickets group only questions of the same scope."""
        return ",".join(sorted(self.groups))


@dataclass
class Query:
    """One question as it travels through the stages; ``Assistant.stream`` builds it once.

    ``principal`` is who asks: every stage reads the KB through ``KnowledgeBase.view(principal)``, which searches,
    counts and fetches only the chunks the principal may see. ``filters`` is what every search must match besides
    (Chroma ``where`` syntax on chunk metadata). ``vector`` is the standalone question's embedding, set by the
    first stage that computes it (the cache check or retrieval) and reused by the rest."""

    text: str  # as asked, cleaned
    kb: str = "default"
    standalone: str = ""  # condensed with the history; the text itself when there is none
    language: str = "en"
    history: list[dict] = field(default_factory=list)
    session_id: str | None = None
    principal: Principal = field(default_factory=Principal)
    filters: dict = field(default_factory=dict)
    vector: list[float] | None = None

    def __post_init__(self) -> None:
        self.standalone = self.standalone or self.text

    @property
    def user(self) -> str | None:
        return self.principal.user

    @classmethod
    def of(cls, text: str, kb: str = "default", **fields) -> Query:
        """A query for ``text`` on its own (no history), its language detected."""
        from kb_assistant.language import detect_language

        return cls(text=text, kb=kb, language=fields.pop("language", None) or detect_language(text), **fields)


@dataclass
class Candidate:
    """A passage retrieved for a query, with what each stage found out about it."""

    chunk: Chunk
    dense: float = 0.0  # cosine similarity, 0..1
    keyword: float = 0.0  # BM25 score relative to the best keyword hit, 0..1
    fused: float = 0.0
    score: float = 0.0  # final 0..1 score after rerank, shown to users
    lang: str | None = None  # "zh" when the question or the passage is Chinese (then MiniLM's similarity means little)
    coverage: float | None = None  # IDF-weighted share of the question's words the passage holds (rerank)
    cross_encoder: float | None = None  # the cross-encoder's logit, when one reranked


class Citation(BaseModel):
    n: int = Field(description="The [n] marker used in the answer text.")
    source: str
    section: str = ""
    page: int | None = None
    chunk_id: str
    snippet: str
    score: float = Field(ge=0.0, le=1.0)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Answer(BaseModel):
    id: str = Field(default_factory=lambda: uuid4().hex, description="Names this answer for feedback.")
    question: str
    standalone_question: str = ""
    text: str
    answered: bool
    confidence: float = Field(ge=0.0, le=1.0)
    language: Literal["zh", "en"] = "en"
    kb: str = "default"
    citations: list[Citation] = []
    passages: list[Citation] = Field([], description="The passages retrieved, best first (what the answer drew on).")
    timings_ms: dict[str, float] = {}
    usage: Usage | None = None
    escalation_reason: str | None = None
    ticket_id: str | None = Field(None, description="The human-queue ticket opened for an unanswered question.")
    ticket_token: str | None = Field(
        None, description="Reads that ticket (GET /api/tickets/{ticket_id}?token=…); given only to the asker."
    )
    cached: bool = Field(False, description="Served from the semantic cache.")
    session_id: str | None = None
    _evidence: Callable[[], dict | None] | None = PrivateAttr(None)  # its confidence's features, on demand (not sent)


class StreamEvent(BaseModel):
    """What Assistant.stream() yields: text deltas, then one final event carrying the Answer."""

    type: Literal["delta", "final"]
    text: str = ""
    answer: Answer | None = None


class Feedback(BaseModel):
    """👍/👎 on one answer; a 👎 with a comment escalates to the human queue."""

    answer_id: str
    rating: Literal["up", "down"]
    comment: str = ""
    ticket_id: str | None = Field(None, description="Set when the feedback opened (or joined) a ticket.")
    ticket_token: str | None = Field(None, description="Reads that ticket; given only to whoever gave the 👎.")


class TicketView(BaseModel):
    """What a user (chat, widget, API) may read of a ticket: its status and, once given, the agent's answer."""

    id: str
    kb: str
    question: str
    status: Literal["open", "claimed", "answered", "closed"]
    reason: str
    answer: str | None = None
    created_at: str
    answered_at: str | None = None
