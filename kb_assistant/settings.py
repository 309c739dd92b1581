"""The one Settings object: read once (env prefix ``KB_``, ``.env``), then passed down.

Every default works on one machine with no network; each real server is one setting away.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

KB_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")  # Chroma's collection-name rules


CONFIDENCE_MODEL = Path(__file__).with_name("answer") / "confidence_model.json"
WEIGHTED_THRESHOLD = 0.25  # the hand-weighted confidence's threshold (eval/README.md, "Confidence")


def calibrated_threshold() -> float:
    """The default answer threshold, as the confidence calibration chose it with the model it fitted."""
    import json

    try:
        return float(json.loads(CONFIDENCE_MODEL.read_text(encoding="utf-8"))["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SettingsError(
            f"{CONFIDENCE_MODEL}: no threshold in the confidence model ({e}); set KB_CONFIDENCE_THRESHOLD or refit "
            "with: python -m eval.calibrate"
        ) from e


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the KB_ variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KB_", env_file=".env", env_file_encoding="utf-8", env_nested_delimiter="__", extra="ignore"
    )

    # --- storage -------------------------------------------------------------------------------
    data_dir: Path = Field(Path("./data"), description="Everything the app writes lives here.")
    chroma_url: str | None = Field(None, description="Chroma server URL (http://host:port); unset = embedded.")

    # --- models --------------------------------------------------------------------------------
    embedding_model: str | None = Field(
        None,
        description="sentence-transformers model directory, or all-mpnet-base-v2 (requirements-mpnet.txt); "
        "unset = the bundled all-MiniLM-L6-v2. With KB_EMBEDDING_BASE_URL: the model name the service is asked "
        "for (required; it tags every vector, so vectors of two models never mix).",
    )
    embedding_base_url: str | None = Field(
        None,
        description="An OpenAI-compatible embeddings service (its /v1 base: text-embeddings-inference, vLLM, "
        "Infinity, Ollama, OpenAI) that embeds documents and questions instead of a local model; unset = local.",
    )
    embedding_api_key: str | None = Field(None, description="API key for KB_EMBEDDING_BASE_URL (if it needs one).")
    embedding_timeout_s: float = Field(60.0, gt=0, description="The most one call to the embeddings service waits.")
    embedding_max_retries: int = Field(
        3, ge=0, le=10, description="Retries of a failed embeddings-service call (connection errors, 429, 5xx)."
    )
    embedding_batch_size: int = Field(
        64, ge=1, description="Texts per embedding batch (per request to a service: at most what it accepts, "
        "e.g. text-embeddings-inference's --max-client-batch-size, 32 by default).",
    )  # fmt: skip
    embedding_device: str = Field(
        "cpu", pattern=r"^(cpu|auto|cuda(:\d+)?|mps)$",
        description="Where the embedding model runs: cpu, auto (a GPU when torch sees one), cuda, cuda:N or mps.",
    )  # fmt: skip
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint; unset = extractive answers.")
    llm_api_key: str | None = Field(None, description="API key for the LLM endpoint.")
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the LLM endpoint.")
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0)
    llm_timeout_s: float = Field(
        60.0, gt=0, description="The most one question waits for the LLM (condense and answer, retries included); "
        "then it is answered without it.",
    )  # fmt: skip
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries of a failed LLM call, within llm_timeout_s.")
    llm_retry_backoff_s: float = Field(
        0.25, ge=0, description="First retry's wait; it doubles each retry (with jitter), bounded by llm_timeout_s."
    )
    llm_breaker_threshold: int = Field(
        3, ge=1, description="After this many questions in a row the LLM failed, stop calling it for a while."
    )
    llm_breaker_cooldown_s: float = Field(
        30.0, gt=0, description="How long a failing LLM is left alone (answers are extractive meanwhile)."
    )
    llm_fallback_min_confidence: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Confidence an extractive answer needs when the LLM is unavailable; below it the question "
        "gets the holding reply and a ticket (llm_unavailable). Unset = confidence_threshold.",
    )  # fmt: skip
    llm_price_prompt_per_1m: float = Field(0.15, ge=0, description="Dashboard cost: price per 1M prompt tokens.")
    llm_price_completion_per_1m: float = Field(
        0.60, ge=0, description="Dashboard cost: price per 1M completion tokens."
    )

    # --- ingest --------------------------------------------------------------------------------
    chunk_size: int = Field(500, ge=100, description="Target chunk size in characters.")
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are refused at ingest.")
    unstructured_api_url: str | None = Field(
        None,
        description="unstructured's partition API, its base URL (https://api.unstructuredapp.io, or a self-hosted "
        "unstructured-api such as http://unstructured:8000): it parses PDF, Word, PowerPoint and HTML files "
        "instead of the local loaders; unset = local.",
    )
    unstructured_api_key: str | None = Field(None, description="API key for KB_UNSTRUCTURED_API_URL.")
    unstructured_api_strategy: str = Field(
        "auto", pattern=r"^(auto|fast|hi_res|ocr_only)$",
        description="The API's partition strategy for PDFs and images: auto, fast, hi_res (layout model) or ocr_only.",
    )  # fmt: skip
    ingest_workers: int | None = Field(
        None, ge=1, description="Processes that load and chunk files in parallel; unset = number of CPU cores."
    )
    ingest_publish_chunks: int = Field(
        1000, ge=1, description="An ingest makes its work visible (a new KB version) every this many new chunks."
    )
    ingest_publish_seconds: float = Field(
        60.0, gt=0, description="... or when this many seconds passed since the last publish, whichever is first."
    )
    ingest_test_pause_s: float = Field(
        0.0, ge=0, description="Testing only: sleep this long at each step of a publish, so a test can kill it."
    )

    # --- retrieval and answers -----------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=50, description="Passages handed to the answerer and cited.")
    candidate_k: int = Field(30, ge=1, description="Candidates per retriever before fusion and rerank.")
    keyword_search: bool = Field(True, description="BM25 keyword retrieval beside dense retrieval.")
    dense_search: bool = Field(True, description="Embedding retrieval.")
    rerank: bool = Field(True, description="Rerank fused candidates.")
    reranker_model: str | None = Field(None, description="CrossEncoder model path; unset = offline lexical reranker.")
    glossary_builtin: bool = Field(
        True, description="Use the bundled workplace glossary (HR, admin, IT, expenses terms in Chinese and English)."
    )
    glossary_files: Annotated[list[Path], NoDecode] = Field(
        [],
        description="Your own glossary files, comma-separated: one concept per line, its synonyms and translations "
        "separated by tabs. Keyword search and question coverage treat a concept's terms as one.",
    )
    confidence_model: Literal["weighted", "fitted"] = Field(
        "weighted",
        description="How sure an answer is: weighted = coverage and dense similarity of the best passage, "
        "hand-weighted; fitted = the model `python -m eval.calibrate` fitted on real documents (eval/README.md).",
    )
    confidence_threshold: float | None = Field(
        None,  # unset: filled in by _default_threshold, so always a number once the settings are read
        ge=0.0,
        le=1.0,
        description="Below it the question is not answered; unset = 0.25 for the weighted confidence, the threshold "
        "the fitted model was calibrated with for the fitted one (kb_assistant/answer/confidence_model.json).",
    )
    max_question_chars: int = Field(4000, ge=1)
    max_history_messages: int = Field(
        20, ge=0, description="Earlier turns a question is condensed with (the newest); each cut to max_question_chars."
    )
    holding_reply_zh: str = "这个问题我们还在研究，请你等待我们的回复。"
    holding_reply_en: str = "We're still looking into this question. Please wait for our reply."

    # --- human queue -------------------------------------------------------------------------
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the one database every store shares (tickets, answer log, agents, API keys, "
        "the ingest ledger, the published KB versions, the semantic cache's entries): what replicas share. Unset = "
        "SQLite files in the data dir (queue.db, ingest.sqlite, published.sqlite, cache.sqlite3; WAL, busy timeout). "
        "Postgres: postgresql+psycopg://…",
    )
    version_check_s: float = Field(
        1.0, ge=0, description="How often a process asks the database whether a newer KB version was published "
        "(besides once per question); a replica sees another's ingest within this.",
    )  # fmt: skip
    database_busy_timeout_s: float = Field(10.0, gt=0, description="SQLite: how long a writer waits for the lock.")
    handoff_phrases: list[str] = Field(
        ["转人工", "人工客服", "找人工", "真人客服", "人工服务", "talk to a human", "speak to a human",
         "talk to a person", "speak to a person", "speak to an agent", "talk to an agent", "human agent",
         "real person"],
        description="A question containing one of these (case-insensitive) goes straight to the human queue.",
    )  # fmt: skip
    ticket_group_similarity: float = Field(
        0.95, ge=0.0, le=1.0, description="Open questions this similar (embedding cosine) share one ticket."
    )
    gap_similarity: float = Field(0.7, ge=0.0, le=1.0, description="Unanswered questions this similar form one gap.")
    max_answer_chars: int = Field(8000, ge=1, description="Longest agent answer accepted.")
    ticket_note_zh: str = Field("（工单号 {ticket}）", description="Appended to the holding reply; {ticket} = id.")
    ticket_note_en: str = Field(" (ticket #{ticket})", description="Appended to the holding reply; {ticket} = id.")
    console_port: int = Field(7861, ge=1, le=65535, description="Where `kb console` listens (host: KB_HOST).")

    # --- semantic cache ------------------------------------------------------------------------
    cache_enabled: bool = Field(True, description="Answer repeats and paraphrases from the semantic cache.")
    cache_threshold_en: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Similarity (0..1) an English question needs to a cached one; 1.0 = no embedding layer (chosen "
        "on held-out COVID and policy-PDF pairs: below it, different questions about one passage got each other's "
        "answer).",
    )
    cache_threshold_zh: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Similarity (0..1) a Chinese question needs to a cached one; 1.0 = no embedding layer (repeats "
        "and rewordings in other function words only: the default embedding cannot tell Chinese questions apart).",
    )
    cache_threshold_faq_en: float = Field(
        0.65,
        ge=0.0,
        le=1.0,
        description="Similarity (0..1) an English question needs to a cached one whose answer is one FAQ entry's, "
        "when the new question's own top passage is that same entry: an FAQ entry answers one question, so then "
        "only the answer types, numbers and negation must agree (a document passage answers many questions and "
        "keeps cache_threshold_en). 1.0 = off. On held-out COVID FAQ pairs 0 wrong hits from 0.50 up; 0.65 is the "
        "lowest at which no question of another KB (policy PDFs) was served (eval/README.md).",
    )
    cache_max_unmatched_en: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Share of an English question's content weight (IDF) that may lack a counterpart in the cached "
        "question it is served for (same stem, one glossary concept, a near-neighbour word); 1.0 = compare answer "
        "types, numbers and negation only (an FAQ-table KB, where one entry answers one question).",
    )
    cache_ttl_s: float = Field(7 * 86400, ge=0, description="Entries older than this are dropped; 0 = no limit.")
    cache_max_entries: int = Field(10000, ge=1, description="Entries per KB; the least recently used go first.")

    # --- serving -------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    max_request_bytes: int = Field(1_000_000, ge=1024, description="Larger HTTP request bodies are refused (413).")
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        [],
        description="Origins (scheme://host[:port]) whose pages may embed the widget and call the API from the "
        "browser (CORS), comma-separated; empty = same origin only; '*' = any origin.",
    )

    sso_trusted_proxies: Annotated[list[str], NoDecode] = Field(
        [],
        description="Addresses (IPs or CIDR networks, comma-separated) of the SSO proxies (oauth2-proxy and the "
        "like) whose user and groups headers are believed; empty = no SSO headers are believed from anyone.",
    )
    sso_user_header: str = Field("X-Forwarded-User", description="The header a trusted SSO proxy names the user in.")
    sso_groups_header: str = Field(
        "X-Forwarded-Groups", description="The header a trusted SSO proxy lists the user's groups in (comma-separated)."
    )

    api_keys_file: Path | None = Field(
        None,
        description="Legacy only: the JSON file earlier releases kept the API keys in, imported once into the queue "
        "database (KB_DATABASE_URL) and renamed <name>.imported; unset = apikeys.json in the data dir.",
    )

    @model_validator(mode="after")
    def _default_threshold(self):
        """KB_CONFIDENCE_THRESHOLD unset: the weighted confidence's 0.25, or the fitted model's calibrated one."""
        if self.confidence_threshold is None:
            self.confidence_threshold = (
                WEIGHTED_THRESHOLD if self.confidence_model == "weighted" else calibrated_threshold()
            )
        return self

    @field_validator("sso_trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]):
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or CIDR network (e.g. 10.0.0.5, 10.0.0.0/24)"
                ) from None
        return value

    @field_validator("allowed_origins", "glossary_files", "sso_trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator(
        "chroma_url", "llm_base_url", "llm_api_key", "embedding_model", "embedding_base_url", "embedding_api_key",
        "reranker_model", "unstructured_api_url", "unstructured_api_key", mode="before",
    )  # fmt: skip
    @classmethod
    def _blank_is_unset(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("chroma_url", "llm_base_url", "embedding_base_url", "unstructured_api_url")
    @classmethod
    def _must_be_http(cls, value: str | None):
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _service_needs_a_model_name(self):
        if self.embedding_base_url and not self.embedding_model:
            raise ValueError(
                "KB_EMBEDDING_BASE_URL is set, so KB_EMBEDDING_MODEL must name the model the service is asked for"
            )
        return self

    @property
    def llm_enabled(self) -> bool:
        return self.llm_base_url is not None

    def holding_reply(self, lang: str) -> str:
        return self.holding_reply_zh if lang == "zh" else self.holding_reply_en

    def path(self, *parts: str) -> Path:
        """A path inside the data directory, its parent created."""
        p = self.data_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def check_kb_name(name: str) -> str:
    if not KB_NAME_RE.match(name or ""):
        raise SettingsError(
            f"invalid knowledge-base name {name!r}: "
            "use 1-63 letters, digits, '_' or '-', starting and ending with a letter or digit"
        )
    return name


def load_settings(**overrides) -> Settings:
    """Build Settings from the environment, turning validation errors into one readable message."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            lines.append(f"KB_{field.upper()}: {err['msg']}" if field else err["msg"].removeprefix("Value error, "))
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
