"""API keys for the HTTP API: created by ``kb apikey create``, stored hashed, scoped to knowledge bases.

The store is one small JSON file in the data dir (``apikeys.json``). A key is 32 random bytes, so a plain
SHA-256 of it is enough (no salt or slow hash needed: there is nothing to brute-force). Only the hash and the
first characters (to recognise a key in ``kb apikey list``) are kept; the key itself is shown once.
Writes are atomic (temp file + rename); readers re-read the file when it changes, so a running server sees a
new or revoked key without a restart.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from kb_assistant.errors import KBError
from kb_assistant.files import write_atomic
from kb_assistant.settings import Settings, check_kb_name

KEY_PREFIX = "kb_"
ALL_KBS = "*"


class UnknownApiKey(KBError):
    """``kb apikey revoke`` named a key that is not in the store."""


class ApiKey(BaseModel):
    id: str = Field(description="Public id, e.g. for `kb apikey revoke`.")
    name: str = ""
    kbs: list[str] = Field(description="Knowledge bases this key may use; ['*'] = all.")
    hash: str = Field(description="sha256 hex digest of the key.")
    hint: str = Field(description="The key's first characters, to recognise it.")
    created_at: str

    def allows(self, kb: str) -> bool:
        return ALL_KBS in self.kbs or kb in self.kbs


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: list[ApiKey] = []

    @classmethod
    def for_settings(cls, settings: Settings) -> ApiKeyStore:
        return cls(settings.api_keys_file or settings.data_dir / "apikeys.json")

    # --- reading (cheap when the file has not changed) ---------------------------------------------
    def keys(self) -> list[ApiKey]:
        with self._lock:
            try:
                st = self.path.stat()
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # os.replace gives a new inode
            except FileNotFoundError:
                self._stamp, self._keys = None, []
                return []
            if stamp != self._stamp:
                self._keys = self._read()
                self._stamp = stamp
            return list(self._keys)

    def enabled(self) -> bool:
        """Keys are required as soon as one exists."""
        return bool(self.keys())

    def check(self, key: str | None) -> ApiKey | None:
        """The stored key matching ``key``, or None."""
        if not key:
            return None
        digest = hash_key(key.strip())
        return next((k for k in self.keys() if secrets.compare_digest(k.hash, digest)), None)

    def _read(self) -> list[ApiKey]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [ApiKey(**k) for k in data.get("keys", [])]
        except (OSError, ValueError, TypeError) as exc:
            raise KBError(f"cannot read the API key file {self.path}: {exc}; fix or delete it") from None

    # --- writing ------------------------------------------------------------------------------------
    def create(self, kbs: list[str], name: str = "") -> tuple[str, ApiKey]:
        """A new key for ``kbs``; returns (the key, shown once; its stored record)."""
        if not kbs:
            raise KBError("an API key needs at least one knowledge base: --kb NAME (or --kb '*' for all)")
        kbs = sorted({k if k == ALL_KBS else check_kb_name(k) for k in kbs})
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(
            id=secrets.token_hex(4), name=name, kbs=kbs, hash=hash_key(key), hint=key[:8],
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )  # fmt: skip
        with self._lock:
            self._write([*self._read_quiet(), record])
        return key, record

    def revoke(self, id_or_name: str) -> list[ApiKey]:
        with self._lock:
            keys = self._read_quiet()
            gone = [k for k in keys if id_or_name in (k.id, k.name)]
            if not gone:
                raise UnknownApiKey(f"no API key with id or name {id_or_name!r} in {self.path} (see: kb apikey list)")
            self._write([k for k in keys if k not in gone])
        return gone

    def _read_quiet(self) -> list[ApiKey]:
        return self._read() if self.path.exists() else []

    def _write(self, keys: list[ApiKey]) -> None:
        write_atomic(self.path, json.dumps({"keys": [k.model_dump() for k in keys]}, indent=2), mode=0o600)
        self._stamp = None  # re-read on next use
