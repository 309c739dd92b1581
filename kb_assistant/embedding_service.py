"""Embeddings from a service: any OpenAI-compatible ``/v1/embeddings`` endpoint (``KB_EMBEDDING_BASE_URL``).

text-embeddings-inference, vLLM, Infinity, Ollama and OpenAI itself all speak it, so ingest and questions can be
embedded on a GPU box while the app replicas stay small. The client is langchain-openai's ``OpenAIEmbeddings``:
batches of ``KB_EMBEDDING_BATCH_SIZE`` texts per request, retries with backoff (``KB_EMBEDDING_MAX_RETRIES``) on
connection errors, 429 and 5xx. Raw text is sent (``check_embedding_ctx_length=False``): most servers take no
token arrays, and tiktoken would otherwise fetch its encoding files from the network.

What comes back is checked (one vector per text, one dimension for the life of the process) and scaled to unit
length (our cosine scores and the semantic cache take dot products). Every failure is an ``EmbeddingModelError``
that names the setting to look at.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from kb_assistant.errors import KBError

if TYPE_CHECKING:
    from kb_assistant.settings import Settings


class EmbeddingServiceError(KBError, RuntimeError):
    """The embeddings service cannot be used as configured; the message names the KB_ setting."""


def service_embeddings(settings: Settings):
    """An ``Embeddings`` over the service ``settings.embedding_base_url`` serving ``settings.embedding_model``."""
    from langchain_core.embeddings import Embeddings
    from langchain_openai import OpenAIEmbeddings

    client = OpenAIEmbeddings(
        model=settings.embedding_model,
        base_url=settings.embedding_base_url,
        api_key=settings.embedding_api_key or "not-needed",  # the client insists on one; most servers ignore it
        check_embedding_ctx_length=False,  # raw text, no tiktoken (it would download its encodings)
        chunk_size=settings.embedding_batch_size,
        max_retries=settings.embedding_max_retries,
        request_timeout=settings.embedding_timeout_s,
        model_kwargs={"encoding_format": "float"},  # not every server speaks the SDK's default base64
    )
    where = f"KB_EMBEDDING_BASE_URL={settings.embedding_base_url} (KB_EMBEDDING_MODEL={settings.embedding_model})"

    class ServiceEmbeddings(Embeddings):
        def __init__(self):
            self.client = client
            self.dimension: int | None = None
            self._lock = threading.Lock()

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            if not texts:
                return []
            try:
                vectors = self.client.embed_documents(texts)
            except Exception as exc:  # noqa: BLE001 (the SDK's errors, and a body that is no embeddings response)
                raise EmbeddingServiceError(explain(exc, where)) from exc
            return self._checked(vectors, len(texts))

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

        def _checked(self, vectors, expected: int) -> list[list[float]]:
            import numpy as np

            if len(vectors) != expected:
                raise EmbeddingServiceError(f"{where} returned {len(vectors)} vectors for {expected} texts")
            sizes = {len(v) for v in vectors}
            if len(sizes) != 1 or 0 in sizes:
                raise EmbeddingServiceError(f"{where} returned vectors of mixed or zero size: {sorted(sizes)}")
            (size,) = sizes
            with self._lock:
                self.dimension = self.dimension or size
            if size != self.dimension:
                raise EmbeddingServiceError(
                    f"{where} returned vectors of {size} dimensions, not the {self.dimension} it returned before: "
                    "the service changed model under this name. Give each model its own KB_EMBEDDING_MODEL name "
                    "(vectors are kept per model name) and re-ingest."
                )
            matrix = np.asarray(vectors, dtype=np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            if not np.all(np.isfinite(norms)) or np.any(norms == 0):
                raise EmbeddingServiceError(f"{where} returned a zero or non-finite vector")
            return (matrix / norms).tolist()

    return ServiceEmbeddings()


def explain(exc: Exception, where: str) -> str:
    """What went wrong with the service, in words that name the setting to fix."""
    import openai

    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return f"{where} refused the key (HTTP {exc.status_code}): check KB_EMBEDDING_API_KEY"
    if isinstance(exc, openai.NotFoundError):
        return (
            f"{where} answered 404: check that KB_EMBEDDING_BASE_URL is the service's /v1 base and that it serves "
            f"KB_EMBEDDING_MODEL ({_detail(exc)})"
        )
    if isinstance(exc, openai.APITimeoutError):
        return f"{where} did not answer within KB_EMBEDDING_TIMEOUT_S (retried KB_EMBEDDING_MAX_RETRIES times)"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach the embeddings service {where}: is it running? ({exc.__cause__ or exc})"
    if isinstance(exc, openai.APIStatusError):
        hint = " (too many texts per request? lower KB_EMBEDDING_BATCH_SIZE)" if exc.status_code in (413, 422) else ""
        return f"{where} answered HTTP {exc.status_code}{hint}: {_detail(exc)}"
    return f"{where} sent no usable embeddings: {type(exc).__name__}: {exc}"


def _detail(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        body = body.get("message") or body.get("error") or body
    return str(body or exc)[:300]
