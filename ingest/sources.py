"""A knowledge base's sources: the folders and files the ledger remembers for it, which files lie in them, and
the messages that name them when a path is not one of them or has gone from disk.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ingest.ledger import Ledger
from kb_assistant.errors import KBError


class UnknownSource(KBError):
    pass


def iter_files(paths: Iterable[Path]) -> Iterable[tuple[Path, str]]:
    """(file, source name): a folder's files relative to the folder, a file by its name. Hidden files skipped."""
    for root in paths:
        if root.is_dir():
            for f in sorted(root.rglob("*")):
                rel = f.relative_to(root)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts):
                    yield f, rel.as_posix()
        else:
            yield root, root.name


def owning_root(target: Path, roots: set[str]) -> str | None:
    """The remembered source folder ``target`` lies strictly inside (the outermost one), if any."""
    owners = [
        r for r in roots
        if target != Path(r) and target.is_relative_to(r)
        and not any(p.startswith(".") for p in target.relative_to(r).parts)  # hidden: the folder sync skips it
    ]  # fmt: skip
    return min(owners, key=len) if owners else None


def in_scope(path: str, scope: str) -> bool:
    """Whether a document (path relative to its source) is ``scope`` or lies under it ("" = everything)."""
    return not scope or path == scope or path.startswith(scope + "/")


def known_roots(ledger: Ledger, kb: str) -> set[str]:
    """Remembered sources, and roots that still own documents (a source forgotten by an older version)."""
    roots = {s.root for s in ledger.sources(kb)}
    return roots | {d.root for d in ledger.documents(kb)}


def missing_reason(ledger: Ledger, kb: str, root_key: str, known: set[str]) -> str:
    """Why a path given to sync cannot be synced: it never existed, or it is a remembered source gone from disk."""
    if root_key not in known:
        return "no such file or folder"
    n = sum(1 for d in ledger.documents(kb, root_key) if d.status == "done")
    return (
        f"remembered source is gone from disk: its {n} documents stay in the KB; if it was moved or deleted "
        f"on purpose, remove them with: kb ingest --forget '{root_key}' --kb {kb}"
    )


def unknown_source_message(ledger: Ledger, kb: str, key: str, known: set[str]) -> str:
    """Why ``key`` cannot be forgotten from ``kb``, and what to do instead."""
    msg = f"'{key}' is not a remembered source of knowledge base '{kb}'"
    owner = owning_root(Path(key), known)
    if owner:
        return (
            f"{msg}: it is part of the source '{owner}'; delete or move it and re-sync that source "
            f"(kb ingest '{owner}' --kb {kb}), or forget the whole source"
        )
    others = sorted({s.kb for s in ledger.sources() if s.root == key})
    if others:
        return f"{msg}: it is a source of {', '.join(repr(k) for k in others)}: add --kb {others[0]}"
    listed = ", ".join(f"'{r}'" for r in sorted(known)) or "none"
    return f"{msg} (its sources: {listed}; see kb status)"
