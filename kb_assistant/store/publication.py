"""What a KB is right now: its published version and the live chunk set — the one answer to "is this chunk live?".

``<data>/kb/<name>/state.json`` names the KB version and its version folder (``keyword-v<N>``); it is replaced
atomically, so a reader sees one version whole or the one before. The folder holds the live chunk ids
(``ids.json``, written last: it marks the folder complete), each chunk's keyword tokens (``tokens.json``, so the
next publish re-tokenizes only new chunks), which live chunks are limited to access groups (``visibility.json``:
chunk id → groups; a chunk not named is visible to everyone who may use the KB) and the keyword backend's
index. Vectors may exist for chunks that are not live (written ahead of a publish, or left by an interrupted
ingest): every search drops them, so a half-ingested document is never seen. Readers notice a newer state.json
with one stat and reload.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kb_assistant.files import write_atomic
from kb_assistant.language import TOKENIZER_VERSION
from kb_assistant.settings import Settings

STATE_FILE = "state.json"
KEEP_VERSIONS = 2  # version folders kept: a reader may still be loading the previous one


def state_dir(settings: Settings, kb: str) -> Path:
    return settings.data_dir / "kb" / kb


def read_state(settings: Settings, kb: str) -> dict:
    """The published state of ``kb`` (``{}`` before its first publish), read without opening the KB."""
    f = state_dir(settings, kb) / STATE_FILE
    return json.loads(f.read_text(encoding="utf-8")) if f.exists() else {}


@dataclass(frozen=True)
class Snapshot:
    generation: int
    folder: Path
    sorted_ids: list[str]
    live: frozenset[str]
    visibility: dict[str, frozenset[str]]  # live chunk id → the groups that may see it (absent: everyone)


class Publication:
    """One KB's published state: version, live ids, the version folder a keyword backend reads."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._state: dict = {"version": 0}
        self._stamp: tuple | None = None
        self._read = False
        self.generation = 0  # how many states were read: a holder of derived state compares it to its own
        self._sorted: list[str] = []
        self._ids: frozenset[str] = frozenset()
        self._visibility: dict[str, frozenset[str]] = {}
        self._snapshot = Snapshot(0, directory / "keyword", [], frozenset(), {})
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Pick up a newer published state (another process or thread published); one stat when unchanged."""
        f = self.directory / STATE_FILE
        try:
            st = f.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if self._read and stamp == self._stamp:
            return
        with self._lock:
            if self._read and stamp == self._stamp:
                return
            state = json.loads(f.read_text(encoding="utf-8")) if stamp else {"version": 0}
            ids = self.directory / state.get("keyword", "keyword") / "ids.json"
            sorted_ids = json.loads(ids.read_text(encoding="utf-8")) if ids.exists() else []
            vis = self.directory / state.get("keyword", "keyword") / "visibility.json"
            visibility = (
                {cid: frozenset(g) for cid, g in json.loads(vis.read_text(encoding="utf-8")).items()}
                if vis.exists()
                else {}
            )
            self._sorted, self._ids, self._visibility = sorted_ids, frozenset(sorted_ids), visibility
            self._state, self._stamp, self._read = state, stamp, True
            self.generation += 1
            self._snapshot = Snapshot(self.generation, self.folder, sorted_ids, self._ids, visibility)

    @property
    def state(self) -> dict:
        return dict(self._state)

    @property
    def version(self) -> int:
        return int(self._state.get("version", 0))

    @property
    def folder(self) -> Path:
        """The published version's folder (what a keyword backend loads its index from)."""
        return self.directory / self._state.get("keyword", "keyword")

    def sorted_ids(self) -> list[str]:
        """The live chunk ids in the order the version folder lists them (a keyword index's row order)."""
        return self._sorted

    def live_ids(self) -> frozenset[str]:
        return self._ids

    def snapshot(self) -> Snapshot:
        """The published version's folder, live ids and visibility, read together (never torn by a refresh)."""
        return self._snapshot

    def visibility(self) -> dict[str, frozenset[str]]:
        """The live chunks limited to access groups: chunk id → the groups that may see it."""
        return self._visibility

    def tokens(self) -> dict[str, list[str]] | None:
        """Each live chunk's keyword tokens, or None for a version written before tokens were kept or by another
        tokenizer version (the next publish then re-tokenizes every chunk)."""
        f, version = self.folder / "tokens.json", self.folder / "tokenizer.txt"
        if not f.exists() or not version.exists() or version.read_text(encoding="utf-8").strip() != TOKENIZER_VERSION:
            return None
        return json.loads(f.read_text(encoding="utf-8"))

    def publish(
        self,
        version: int,
        tokens: dict[str, list[str]],
        build_index: Callable[[Path, list[str]], None],
        visibility: dict[str, list[str]] | None = None,
        **extra,
    ) -> None:
        """Make exactly the chunks in ``tokens`` live, as ``version``: the folder written whole (the keyword
        backend's index by ``build_index(folder, ids)``, ``visibility``: the live chunks limited to groups), then
        one atomic rename of state.json."""
        name = f"keyword-v{version}"
        folder = self.directory / name
        if folder.exists():  # left by an interrupted publish of the same version
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        ids = sorted(tokens)
        build_index(folder, ids)
        (folder / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
        (folder / "tokenizer.txt").write_text(TOKENIZER_VERSION, encoding="utf-8")
        limited = {cid: sorted(g) for cid, g in (visibility or {}).items() if g and cid in tokens}
        (folder / "visibility.json").write_text(json.dumps(limited, sort_keys=True), encoding="utf-8")
        (folder / "ids.json").write_text(json.dumps(ids), encoding="utf-8")  # written last: marks it complete
        state = {**extra, "version": version, "keyword": name, "chunks": len(tokens), "published_at": time.time()}
        write_atomic(self.directory / STATE_FILE, json.dumps(state, ensure_ascii=False))
        self.refresh()
        self._drop_old_folders()

    def _drop_old_folders(self) -> None:
        folders = []
        for d in self.directory.glob("keyword*"):
            n = d.name.removeprefix("keyword-v")
            folders.append((int(n) if n.isdigit() else -1, d))
        for _, d in sorted(folders)[:-KEEP_VERSIONS]:
            shutil.rmtree(d, ignore_errors=True)
