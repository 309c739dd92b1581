"""What a KB is right now: its published version and the live chunk set — the one answer to "is this chunk live?".

The published state lives in the database (``store.published``: ``KB_DATABASE_URL``, else the data dir's SQLite),
so every replica serves what the ingest published. Each process holds one version at a time: its live ids, which
of them are limited to access groups (chunk id → groups; a chunk not named is visible to everyone who may use the
KB), and a keyword index it materialises from the version's tokens into ``<data>/kb/<name>/keyword-v<N>-<stamp>``
(scratch: built whole in a temp folder and renamed, rebuilt when missing; the publishing process builds it before
the version goes live). ``refresh()`` asks the database for the version (one read of the KB's stamp by primary key)
at most every ``version_check_s`` seconds, and at once when forced (each question forces one check) or when this
process published the KB meanwhile (an ingest the server runs itself); while a newer version is being
materialised, other threads go on serving the one they have.

Vectors may exist for chunks that are not live (written ahead of a publish, or left by an interrupted ingest):
every search drops them, so a half-ingested document is never seen.

A data dir of an earlier release (``state.json``, the version folder's ``ids.json`` and ``tokens.json``), or one
used without ``KB_DATABASE_URL`` before (its ``published.sqlite``), is adopted the first time the database has no
version of the KB: its state is copied in, the files are left as they are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kb_assistant.language import TOKENIZER_VERSION
from kb_assistant.settings import Settings
from kb_assistant.store.published import PUBLISHED_FILE, Head, PublishedStore, legacy_state, local_url

BuildIndex = Callable[[Path, list[str], dict[str, list[str]]], None]  # (folder, ids in row order, tokens)
TokensFor = Callable[[list[str]], dict[str, list[str]]]  # chunk ids → their tokens, from the chunks' text
_FOLDER = re.compile(r"^keyword(?:-v(\d+))?")
_PUBLISHED_HERE: dict[tuple[str, str], int] = {}  # (database, KB) → publishes by this process: seen at once here


@dataclass(frozen=True)
class Snapshot:
    generation: int
    folder: Path
    sorted_ids: list[str]
    live: frozenset[str]
    visibility: dict[str, frozenset[str]]  # live chunk id → the groups that may see it (absent: everyone)


def state_dir(settings: Settings, kb: str) -> Path:
    return settings.data_dir / "kb" / kb


def read_state(settings: Settings, kb: str) -> dict:
    """The published state of ``kb`` (``{}`` before its first publish), read without loading the KB."""
    head = PublishedStore(settings).head(kb)
    if head is not None:
        return head.state
    return legacy_state(state_dir(settings, kb)) or {}


class Publication:
    """One KB's published state, as this process serves it: version, live ids, the keyword index's folder."""

    def __init__(self, settings: Settings, kb: str, *, build_index: BuildIndex, tokens_for: TokensFor | None = None):
        self.settings = settings
        self.kb = kb
        self.directory = state_dir(settings, kb)
        self.store = PublishedStore(settings)
        self.build_index = build_index
        self.tokens_for = tokens_for
        self.check_s = settings.version_check_s
        self._state: dict = {"version": 0}
        self._stamp: str | None = None
        self._folder = self.directory / "keyword"
        self._read = False
        self._checked = 0.0
        self._here = 0  # publishes of this KB by this process (another KnowledgeBase object) seen so far
        self.generation = 0  # how many states were loaded: a holder of derived state compares it to its own
        self._sorted: list[str] = []
        self._ids: frozenset[str] = frozenset()
        self._visibility: dict[str, frozenset[str]] = {}
        self._snapshot = Snapshot(0, self._folder, [], frozenset(), {})
        self._lock = threading.Lock()

    def refresh(self, *, force: bool = False) -> None:
        """Pick up a newer published version (another process, replica or thread published): one read of the
        KB's row when due or forced, nothing otherwise."""
        now = time.monotonic()
        here = _PUBLISHED_HERE.get((self.store.url, self.kb), 0)
        if self._read and not force and here == self._here and now - self._checked < self.check_s:
            return
        self._here = here
        stamp = self.store.stamp(self.kb)
        self._checked = now
        if self._read and stamp == self._stamp:
            return
        head = self.store.head(self.kb) if stamp else self._adopt()
        if not self._lock.acquire(blocking=not self._read):
            return  # another thread is loading it: serve the version we have meanwhile
        try:
            if not self._read or (head.stamp if head else None) != self._stamp:
                self._load(head)
        finally:
            self._lock.release()

    @property
    def state(self) -> dict:
        return dict(self._state)

    @property
    def version(self) -> int:
        return int(self._state.get("version", 0))

    @property
    def folder(self) -> Path:
        """The served version's folder (what a keyword backend loads its index from)."""
        return self._folder

    def sorted_ids(self) -> list[str]:
        """The live chunk ids in the order the version folder lists them (a keyword index's row order)."""
        return self._sorted

    def live_ids(self) -> frozenset[str]:
        return self._ids

    def snapshot(self) -> Snapshot:
        """The served version's folder, live ids and visibility, read together (never torn by a refresh)."""
        return self._snapshot

    def visibility(self) -> dict[str, frozenset[str]]:
        """The live chunks limited to access groups: chunk id → the groups that may see it."""
        return self._visibility

    def tokens(self) -> dict[str, list[str]] | None:
        """Each live chunk's keyword tokens as published, or None when another tokenizer version made them (the
        next publish then re-tokenizes every chunk)."""
        head = self.store.head(self.kb)
        if head is None or head.tokenizer != TOKENIZER_VERSION:
            return None
        return self.store.tokens(self.kb, head.version)

    def publish(
        self, version: int, tokens: dict[str, list[str]], visibility: dict[str, list[str]] | None = None, **extra
    ) -> None:
        """Make exactly the chunks in ``tokens`` live, as ``version``, limited to groups as ``visibility`` says:
        this process's index folder built first, then one database transaction (the changed chunk rows and the
        KB's row) — the moment it goes live."""
        stamp = uuid.uuid4().hex
        folder = self._folder_for(version, stamp)
        limited = {cid: sorted(g) for cid, g in (visibility or {}).items() if g and cid in tokens}
        self._materialise(folder, tokens, limited)
        state = {**extra, "version": version, "chunks": len(tokens), "published_at": time.time(),
                 "writer_host": socket.gethostname()}  # fmt: skip
        self.store.write(self.kb, version, tokens, stamp, state, limited)
        key = (self.store.url, self.kb)
        _PUBLISHED_HERE[key] = _PUBLISHED_HERE.get(key, 0) + 1
        with self._lock:
            self._load(Head(version, stamp, TOKENIZER_VERSION, state))
        self._checked = time.monotonic()

    # --- loading one version -------------------------------------------------------------------------------
    def _folder_for(self, version: int, stamp: str) -> Path:
        return self.directory / f"keyword-v{version}-{stamp[:12]}"

    def _load(self, head: Head | None, tries: int = 3) -> None:
        if head is None:
            state, stamp, ids, folder = {"version": 0}, None, [], self.directory / "keyword"
        else:
            folder = self._folder_for(head.version, head.stamp)
            if not (folder / "ids.json").exists():
                tokens, groups = self.store.live(self.kb, head.version)
                newer = self.store.head(self.kb)
                if newer is not None and newer.stamp != head.stamp and tries > 1:  # published meanwhile: take that
                    return self._load(newer, tries - 1)
                self._materialise(folder, tokens, groups)
            state, stamp = head.state, head.stamp
            ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
        visibility = _read_visibility(folder)
        self._state, self._stamp, self._folder = state, stamp, folder
        self._sorted, self._ids, self._visibility, self._read = ids, frozenset(ids), visibility, True
        self.generation += 1
        self._snapshot = Snapshot(self.generation, folder, ids, self._ids, visibility)
        self._drop_old_folders()
        return None

    def _materialise(self, folder: Path, tokens: dict[str, list[str]], groups: dict[str, list[str]]) -> None:
        """Build ``folder`` whole (the keyword index, ``visibility.json``, then ``ids.json``) in a temp folder
        renamed into place: a process sharing the data dir sees it complete or not at all."""
        if (folder / "ids.json").exists():
            return
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        ids = sorted(tokens)
        self.build_index(tmp, ids, tokens)
        (tmp / "visibility.json").write_text(json.dumps(groups, sort_keys=True), encoding="utf-8")
        (tmp / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (folder / "ids.json").exists():  # not another process's identical build: a real failure
                raise

    def _drop_old_folders(self) -> None:
        """Keep the served version's folder and the one before (a thread may still be loading it)."""
        for d in self.directory.glob("keyword*"):
            m = _FOLDER.match(d.name)
            n = int(m.group(1)) if m and m.group(1) else -1
            if d != self._folder and n < self.version - 1:
                shutil.rmtree(d, ignore_errors=True)

    # --- adopting a data dir's own state -------------------------------------------------------------------
    def _adopt(self) -> Head | None:
        """The database has no version of this KB: copy in the one this data dir holds, if any."""
        found = self._from_local_database() or self._from_legacy_files()
        if found is None:
            return None
        version, state, tokens, groups = found
        self.store.write(self.kb, version, tokens, uuid.uuid4().hex, state, groups, if_absent=True)
        return self.store.head(self.kb)

    def _from_local_database(self) -> tuple[int, dict, dict, dict] | None:
        url = local_url(self.settings)
        if url == self.store.url or not (self.settings.data_dir / PUBLISHED_FILE).exists():
            return None
        local = PublishedStore(self.settings, url)
        head = local.head(self.kb)
        if head is None:
            return None
        tokens, groups = local.live(self.kb, head.version)
        if head.tokenizer != TOKENIZER_VERSION:
            tokens = self._retokenized(sorted(tokens))
        return head.version, head.state, tokens, groups

    def _from_legacy_files(self) -> tuple[int, dict, dict, dict] | None:
        state = legacy_state(self.directory)
        if state is None:
            return None
        folder = self.directory / state.pop("keyword", "keyword")
        ids_file, tokens_file, tokenizer = folder / "ids.json", folder / "tokens.json", folder / "tokenizer.txt"
        ids = json.loads(ids_file.read_text(encoding="utf-8")) if ids_file.exists() else []
        tokens = None
        same_tokenizer = tokenizer.exists() and tokenizer.read_text(encoding="utf-8").strip() == TOKENIZER_VERSION
        if tokens_file.exists() and same_tokenizer:
            tokens = json.loads(tokens_file.read_text(encoding="utf-8"))
        if tokens is None or set(tokens) != set(ids):
            tokens = self._retokenized(ids)
        groups = {cid: sorted(g) for cid, g in _read_visibility(folder).items()}
        return int(state.get("version", 0)), state, tokens, groups

    def _retokenized(self, ids: list[str]) -> dict[str, list[str]]:
        found = self.tokens_for(ids) if self.tokens_for and ids else {}
        return {cid: found.get(cid, []) for cid in ids}


def _read_visibility(folder: Path) -> dict[str, frozenset[str]]:
    f = folder / "visibility.json"
    if not f.exists():
        return {}
    return {cid: frozenset(g) for cid, g in json.loads(f.read_text(encoding="utf-8")).items() if g}
