"""Files other processes read while we rewrite them (the published KB state, the API keys, the server record,
the spool, curated FAQ rows): ``write_atomic`` is the one way we replace one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, *, mode: int = 0o644, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``data`` so a reader sees the old content or the new, never half of it, and a crash
    leaves no half-written file: a temp file of its own in the same folder, flushed to disk, renamed over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode(encoding) if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
