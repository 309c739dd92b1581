"""The escalation spool: what could not be written to the queue database waits here, on disk, until it can.

A JSON line per record, appended under an exclusive file lock and fsync'ed before the user is answered, so an
escalation survives a database outage and a crash. Replay applies each record in its own transaction; records
carry idempotency keys (the provisional ticket ref, the answer id), so a replay interrupted half-way is
simply run again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kb_assistant.files import write_atomic

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the spool still works within one process
    fcntl = None


class Spool:
    def __init__(self, path: Path):
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.bad_path = path.with_name(path.stem + ".bad.jsonl")

    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            if fcntl:
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._locked(), open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict]:
        """What is waiting (read without the lock: for showing a provisional ticket while the DB is down)."""
        if not self.pending():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def replay(self, apply: Callable[[dict], None], unavailable: tuple[type[BaseException], ...]) -> int:
        """Apply waiting records in order; stop at the first that finds the database unavailable and keep it and
        the rest. A record that cannot be parsed or applied for another reason goes to the .bad file, not away."""
        with self._locked():
            if not self.pending():
                return 0
            lines = self.path.read_text(encoding="utf-8").splitlines()
            done = 0
            for i, line in enumerate(lines):
                if not line.strip():
                    done = i + 1
                    continue
                try:
                    apply(json.loads(line))
                except unavailable:
                    break
                except Exception as exc:  # noqa: BLE001 - kept for a person to look at, never dropped
                    with open(self.bad_path, "a", encoding="utf-8") as bad:
                        bad.write(json.dumps({"error": repr(exc), "line": line}, ensure_ascii=False) + "\n")
                done = i + 1
            rest = lines[done:]
            write_atomic(self.path, "".join(x + "\n" for x in rest))
            return done
