"""Parsing at scale: unstructured's partition API (``KB_UNSTRUCTURED_API_URL``) instead of the local loaders.

For users who run unstructured's API (their hosted service, or the open-source ``unstructured-api`` container on
their own hardware: OCR of scanned PDFs, hi_res layout models, GPUs), PDF, Word, PowerPoint and HTML files are sent
to it through the ``unstructured-client`` SDK (retries with backoff on 5xx; a PDF is split into page batches sent
in parallel). The elements it returns are unstructured's own, so they become blocks exactly as local partitions do
(``ingest.loaders``). CSV/XLSX FAQ tables, Markdown and plain text stay local: reading them is cheap and ours.

A file the API cannot parse (HTTP 400/422) fails that file, as a corrupt file does locally. An API that is down or
refuses the key is a ``PartitionServiceError``: it stops the run, naming the setting, so no document loses its
chunks because the parser was away.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.document import DocumentError
from kb_assistant.errors import KBError

if TYPE_CHECKING:
    from kb_assistant.settings import Settings

API_SUFFIXES = frozenset({".pdf", ".docx", ".pptx", ".html", ".htm"})
_PATH = "/general/v0/general"  # the SDK adds it; a URL copied with it would get it twice


class PartitionServiceError(KBError):
    """The partition API cannot be used as configured; the message names the KB_ setting."""


@dataclass(frozen=True)
class PartitionAPI:
    """Where and how to call the API (picklable: it travels to the ingest's worker processes)."""

    url: str
    key: str | None = None
    strategy: str = "auto"
    timeout_s: float = 300.0  # one request (a batch of pages with hi_res and OCR takes a while)
    retry_s: float = 60.0  # how long 5xx answers and refused connections are retried, with backoff

    @classmethod
    def from_settings(cls, settings: Settings) -> PartitionAPI | None:
        if not settings.unstructured_api_url:
            return None
        url = settings.unstructured_api_url.rstrip("/").removesuffix(_PATH)
        return cls(url, settings.unstructured_api_key, settings.unstructured_api_strategy)

    def handles(self, suffix: str) -> bool:
        return suffix in API_SUFFIXES


def partition_remote(path: Path, data: bytes, api: PartitionAPI) -> list:
    """unstructured ``Element``s of one file, partitioned by the API."""
    from unstructured.staging.base import elements_from_dicts
    from unstructured_client import UnstructuredClient
    from unstructured_client.models import errors, operations, shared
    from unstructured_client.utils import BackoffStrategy, RetryConfig

    where = f"KB_UNSTRUCTURED_API_URL={api.url}"
    retry = RetryConfig("backoff", BackoffStrategy(250, 8000, 2.0, int(api.retry_s * 1000)), True)
    params = shared.PartitionParameters(
        files=shared.Files(content=data, file_name=path.name), strategy=api.strategy, split_pdf_page=True
    )
    try:
        with _root_logging_kept():
            client = UnstructuredClient(
                api_key_auth=api.key or "", server_url=api.url, retry_config=retry, timeout_ms=int(api.timeout_s * 1e3)
            )
        with client:
            response = client.general.partition(request=operations.PartitionRequest(partition_parameters=params))
    except errors.HTTPValidationError as exc:  # 422: this file, not the service
        raise DocumentError(f"the partition API could not parse it (HTTP 422: {str(exc)[:300]})") from None
    except errors.UnstructuredClientError as exc:
        status = exc.status_code
        if status in (400, 415):
            raise DocumentError(f"the partition API could not parse it (HTTP {status}: {exc.body[:300]})") from None
        if status in (401, 403):
            message = f"{where} refused the key (HTTP {status}): check KB_UNSTRUCTURED_API_KEY"
        elif status == 404:
            message = f"{where} answered 404: it should be the API's base URL, without {_PATH}"
        else:
            message = f"{where} answered HTTP {status} (after retries): {exc.body[:300]}"
        raise PartitionServiceError(message) from None
    except Exception as exc:  # noqa: BLE001 (httpx's connection errors, timeouts, a body that is not elements)
        raise PartitionServiceError(f"cannot use the partition API {where}: {type(exc).__name__}: {exc}") from None
    try:
        return elements_from_dicts(response.elements or [])
    except (KeyError, TypeError, ValueError) as exc:
        raise PartitionServiceError(f"{where} returned no elements JSON: {type(exc).__name__}: {exc}") from None


@contextlib.contextmanager
def _root_logging_kept():
    """The SDK calls ``logging.basicConfig(level=INFO)`` when a client starts: our process's logging stays ours."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
