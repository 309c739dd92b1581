"""Which access groups each document of a KB is limited to, and publishing that without re-embedding.

A source's groups are remembered in the ledger (``kb ingest PATH --kb KB --groups managers,hr-team``; ``--all``
keeps them; no groups: everyone who may use the KB sees it). A folder inside a source folder may carry its own
groups in a ``.kb-groups`` file at its root (group names separated by commas, spaces or new lines; ``#`` starts a
comment): the documents under it take the groups of the nearest such file above them, and where there is none,
the source's. A ``.kb-groups`` file naming no group, or a name that is not a group name, fails the documents under
it (each named with the reason) instead of publishing them unrestricted.

A chunk's groups are its documents' (a chunk two documents hold is seen by whoever may see either; one a
document without groups holds is seen by everyone). ``visibility(ledger, kb)`` computes them from the ledger and
the sidecar files; the pipeline publishes them with every KB version (``KnowledgeBase.publish``), and
``republish(...)`` publishes a version with new groups and the same chunks when only the groups changed.
"""

from __future__ import annotations

from pathlib import Path

from kb_assistant.errors import KBError
from kb_assistant.schema import parse_groups

SIDECAR = ".kb-groups"


class BadGroupsFile(KBError):
    pass


def read_sidecar(path: Path) -> frozenset[str]:
    """The groups a ``.kb-groups`` file names; raises BadGroupsFile naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadGroupsFile(f"{path}: cannot read the groups file ({exc})") from None
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    try:
        groups = parse_groups(" ".join(lines), what=str(path))
    except ValueError as exc:
        raise BadGroupsFile(str(exc)) from None
    if not groups:
        raise BadGroupsFile(
            f"{path}: names no group (write the groups that may read this folder, e.g. 'managers, hr-team'; "
            "delete the file to make the folder visible to everyone)"
        )
    return groups


class GroupResolver:
    """A document's groups: the nearest ``.kb-groups`` above it inside its source folder, else the source's.
    Sidecar files are read once per resolver (one per publish)."""

    def __init__(self, source_groups: dict[str, frozenset[str]]):
        self.source_groups = source_groups
        self._dirs: dict[Path, frozenset[str] | BadGroupsFile | None] = {}

    def groups(self, root: str, path: str) -> frozenset[str]:
        """Raises BadGroupsFile when the sidecar that governs the document is unreadable or names no group."""
        base = Path(root)
        if base.is_dir():
            folder = (base / path).parent
            while True:
                found = self._sidecar(folder)
                if isinstance(found, BadGroupsFile):
                    raise found
                if found is not None:
                    return found
                if folder == base or base not in folder.parents:
                    break
                folder = folder.parent
        return self.source_groups.get(root, frozenset())

    def _sidecar(self, folder: Path):
        if folder not in self._dirs:
            f = folder / SIDECAR
            try:
                self._dirs[folder] = read_sidecar(f) if f.is_file() else None
            except BadGroupsFile as exc:
                self._dirs[folder] = exc
        return self._dirs[folder]


def visibility(ledger, kb: str) -> tuple[dict[str, list[str]], dict[tuple[str, str], str]]:
    """(chunk id → groups, for the live chunks limited to groups; (root, path) → why a document's groups could not
    be read). A document whose groups cannot be read keeps its chunks hidden from everyone (``"-"``, a name no
    group can have) until its groups file is fixed."""
    resolver = GroupResolver({s.root: frozenset(s.groups or ()) for s in ledger.sources(kb)})
    limited: dict[str, set[str]] = {}
    public: set[str] = set()
    errors: dict[tuple[str, str], str] = {}
    for doc in ledger.documents(kb):
        if doc.status != "done":
            continue
        try:
            groups = resolver.groups(doc.root, doc.path)
        except BadGroupsFile as exc:
            errors[(doc.root, doc.path)] = str(exc)
            groups = frozenset({"-"})
        for cid in doc.chunk_ids:
            if groups:
                limited.setdefault(cid, set()).update(groups)
            else:
                public.add(cid)
    return {cid: sorted(g) for cid, g in limited.items() if cid not in public}, errors


def republish(index, ledger, kb: str) -> tuple[bool, dict[tuple[str, str], str]]:
    """Publish a new KB version with the same chunks when their groups changed (ledger or ``.kb-groups`` files):
    Chroma's metadata is updated, nothing is re-embedded. The caller holds the KB's lock. Returns whether it
    published, and the documents whose groups file cannot be read (``visibility``)."""
    wanted, errors = visibility(ledger, kb)
    current = {cid: sorted(g) for cid, g in index.groups().items()}
    if wanted == current:
        return False, errors
    tokens = index.published_tokens()
    if tokens is None:  # a version written by another tokenizer: re-tokenize from the stored chunks
        from kb_assistant.store.keyword import keyword_tokens

        tokens = {cid: keyword_tokens(c) for cid, c in index.get(sorted(index.live_ids())).items()}
    version = max(ledger.latest_version(kb), index.version) + 1
    ledger.record_version(kb, version)
    index.publish(version, tokens, wanted)
    return True, errors


def set_source_groups(settings, paths: list[Path], kb: str, groups) -> list[str]:
    """Remember ``groups`` (names, or "a,b") for the sources ``paths`` of ``kb`` before they are synced (the
    sync publishes them: new documents are never visible beyond their groups, not even for one version). A path
    inside a remembered source folder cannot have groups of its own here: a ``.kb-groups`` file in it does that.
    Returns the source roots whose groups changed."""
    from ingest.ledger import Ledger

    try:
        wanted = parse_groups(groups, what="--groups")
    except ValueError as exc:
        raise KBError(str(exc)) from None
    ledger = Ledger(settings)
    known = {s.root for s in ledger.sources(kb)} | {d.root for d in ledger.documents(kb)}
    changed = []
    for path in paths:
        target = Path(path).resolve()
        owners = [r for r in known if target != Path(r) and target.is_relative_to(r)]
        owner = min(owners, key=len) if owners else None
        if owner is not None:
            raise KBError(
                f"{path} is inside the source {owner} of KB {kb!r}: give a sub-folder its own groups with a "
                f"{SIDECAR} file at its root (e.g. 'managers'), or change the groups of {owner} itself"
            )
        if ledger.set_source_groups(kb, str(target), wanted):
            changed.append(str(target))
    return changed


def sidecar_groups(root: str) -> dict[str, list[str]]:
    """The sub-folders of a source folder that carry their own groups (``.kb-groups``): folder → groups (a file
    that cannot be read: its error)."""
    base = Path(root)
    if not base.is_dir():
        return {}
    out: dict[str, list[str]] = {}
    for f in sorted(base.rglob(SIDECAR)):
        rel = f.parent.relative_to(base)
        if any(part.startswith(".") for part in rel.parts):
            continue  # a hidden folder the sync skips
        try:
            out[rel.as_posix()] = sorted(read_sidecar(f))
        except BadGroupsFile as exc:
            out[rel.as_posix()] = [f"unreadable: {exc}"]
    return out
