"""Which principals may use a knowledge base at all: a KB limited to groups (``kb access hr --groups hr-team``)
is offered and answered only to principals in one of them; a KB without groups, to everyone.

The groups live beside the KB's published state, ``<data>/kb/<name>/access.json``, replaced atomically and read
again when it changes (one stat per question). Which documents of a KB a principal sees is ``store.visibility``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kb_assistant.files import write_atomic
from kb_assistant.schema import Principal, parse_groups
from kb_assistant.settings import Settings, check_kb_name

ACCESS_FILE = "access.json"
_MEMO: dict[Path, tuple[tuple, frozenset[str]]] = {}
_LOCK = threading.Lock()


def _path(settings: Settings, kb: str) -> Path:
    return settings.data_dir / "kb" / check_kb_name(kb) / ACCESS_FILE


def kb_groups(settings: Settings, kb: str) -> frozenset[str]:
    """The groups ``kb`` is limited to (empty: everyone)."""
    path = _path(settings, kb)
    try:
        st = path.stat()
    except FileNotFoundError:
        return frozenset()
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    with _LOCK:
        memo = _MEMO.get(path)
        if memo is not None and memo[0] == stamp:
            return memo[1]
    groups = parse_groups(json.loads(path.read_text(encoding="utf-8")).get("groups", []), what=str(path))
    with _LOCK:
        _MEMO[path] = (stamp, groups)
    return groups


def set_kb_groups(settings: Settings, kb: str, groups) -> frozenset[str]:
    """Limit ``kb`` to ``groups`` (empty: open it to everyone)."""
    groups = parse_groups(groups)
    write_atomic(_path(settings, kb), json.dumps({"groups": sorted(groups)}))
    return groups


def may_use(settings: Settings, kb: str, principal: Principal) -> bool:
    return principal.may_see(kb_groups(settings, kb))
