"""The gap log: unanswered questions grouped by meaning, ranked by how often they were asked.

Greedy clustering per KB and access scope (the askers' groups: a gap only some groups have is shown as theirs),
oldest question first: a question joins the cluster it is most similar to (compared with each cluster's first few
members, all at once) when the similarity reaches ``KB_GAP_SIMILARITY``, else starts a new one; rows of one wording
share one vector (a stored embedding, else one embedding of the wording). Similarity is the embedding cosine; for
Chinese, where MiniLM's vectors say little, it is blended with the share of words the two questions have in common.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kb_assistant.language import detect_language, tokenize
from kb_assistant.queue.models import format_ticket_id
from kb_assistant.queue.store import TicketQueue, normalize_question

_LEADERS = 5  # a question is compared with a cluster's first few members


@dataclass
class GapCluster:
    kb: str
    question: str  # the most common wording
    groups: list[str] = field(default_factory=list)  # the askers' access groups: a cluster holds one scope
    count: int = 0
    examples: list[str] = field(default_factory=list)  # distinct wordings, most frequent first
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    tickets: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "kb": self.kb, "groups": self.groups, "count": self.count, "question": self.question,
            "examples": self.examples,
            "first_seen": _iso(self.first_seen), "last_seen": _iso(self.last_seen), "reasons": self.reasons,
            "tickets": self.tickets,
        }  # fmt: skip


@dataclass
class _Member:
    text: str
    vector: object
    words: frozenset[str]
    zh: bool


def similarity(a: _Member, b: _Member) -> float:
    import numpy as np

    cos = float(np.dot(a.vector, b.vector))
    if not (a.zh or b.zh):
        return cos
    union = a.words | b.words
    dice = 2 * len(a.words & b.words) / (len(a.words) + len(b.words)) if union else 1.0
    return 0.4 * cos + 0.6 * dice


class _Leaders:
    """The leaders of a KB's clusters as one matrix: a new wording is compared with all of them in one product
    (the Chinese pairs then get their blended similarity), and joins the best cluster at or over the threshold."""

    def __init__(self):
        import numpy as np

        self.vectors = np.empty((0, 0), dtype=np.float32)
        self.owners: list[int] = []  # cluster index of each leader
        self.members: list[_Member] = []
        self.zh: list[int] = []  # leaders whose similarity is blended

    def add(self, owner: int, m: _Member) -> None:
        import numpy as np

        n = len(self.owners)
        if n == len(self.vectors):  # grow by doubling
            grown = np.empty((max(64, 2 * n), len(m.vector)), dtype=np.float32)
            if n:
                grown[:n] = self.vectors[:n]
            self.vectors = grown
        self.vectors[n] = m.vector
        self.owners.append(owner)
        self.members.append(m)
        if m.zh:
            self.zh.append(n)

    def best(self, m: _Member, threshold: float) -> int | None:
        sims = self.vectors[: len(self.owners)] @ m.vector
        for i in range(len(self.owners)) if m.zh else self.zh:
            sims[i] = similarity(m, self.members[i])
        top = float(sims.max())
        if top < threshold:
            return None
        return max(o for o, sim in zip(self.owners, sims, strict=True) if sim == top)  # ties: the later cluster


def gap_clusters(
    queue: TicketQueue,
    embeddings,
    *,
    kb: str | None = None,
    since: datetime | None = None,
    threshold: float | None = None,
    examples: int = 5,
) -> list[GapCluster]:
    import numpy as np

    threshold = queue.settings.gap_similarity if threshold is None else threshold
    rows = queue.unanswered(kb=kb, since=since)
    texts = [r.standalone_question or r.question for r in rows]
    keys = [(r.kb, normalize_question(t)) for r, t in zip(rows, texts, strict=True)]
    # one vector per wording: the stored embedding of one of its rows (escalated rows keep one), else one embedding
    # of the wording for all of them
    pick: dict[tuple[str, str], str] = {}
    for r, k in zip(rows, keys, strict=True):
        if not r.answered:
            pick.setdefault(k, r.id)
    for r, k in zip(rows, keys, strict=True):
        pick.setdefault(k, r.id)
    found = queue.embeddings_of(list(pick.values()))
    stored = {k: found[i] for k, i in pick.items() if i in found}
    missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in stored}
    stored.update(zip(missing, embeddings.embed_documents(list(missing.values())) if missing else [], strict=True))
    vectors: dict[tuple[str, str], object] = {}
    words: dict[str, tuple[frozenset[str], bool]] = {}
    members: list[_Member] = []
    for k, text in zip(keys, texts, strict=True):
        if k not in vectors:
            vec = np.asarray(stored[k], dtype=np.float32)
            vectors[k] = vec / (np.linalg.norm(vec) or 1.0)
        if text not in words:
            words[text] = (frozenset(tokenize(text)), detect_language(text) == "zh")
        members.append(_Member(text, vectors[k], *words[text]))

    clusters: list[tuple[GapCluster, list[_Member], Counter, set]] = []
    by_norm: dict[tuple[str, str], int] = {}
    pools: dict[tuple[str, str], _Leaders] = {}  # per KB and scope: the clusters' leaders, compared at once
    for row, m in zip(rows, members, strict=True):
        scope = getattr(row, "scope", "") or ""
        key = (row.kb, scope, normalize_question(m.text))
        best = by_norm.get(key)
        if best is None and (row.kb, scope) in pools:
            best = pools[(row.kb, scope)].best(m, threshold)
        if best is None:
            cluster = GapCluster(kb=row.kb, question=m.text, groups=[g for g in scope.split(",") if g],
                                 first_seen=row.created_at)  # fmt: skip
            clusters.append((cluster, [], Counter(), set()))
            best = len(clusters) - 1
        by_norm[key] = best
        cluster, leaders, wordings, tickets = clusters[best]
        if len(leaders) < _LEADERS:
            leaders.append(m)
            pools.setdefault((row.kb, scope), _Leaders()).add(best, m)
        wordings[m.text] += 1
        cluster.count += 1
        cluster.last_seen = row.created_at
        reason = row.reason or ("downvote" if row.rating == "down" else "unanswered")
        cluster.reasons[reason] = cluster.reasons.get(reason, 0) + 1
        if row.ticket_id:
            tickets.add(row.ticket_id)

    out = []
    for cluster, _, wordings, tickets in clusters:
        ranked = [w for w, _ in wordings.most_common()]
        cluster.question, cluster.examples = ranked[0], ranked[:examples]
        cluster.tickets = [format_ticket_id(t) for t in sorted(tickets)]
        out.append(cluster)
    out.sort(key=lambda c: c.last_seen, reverse=True)  # ties: the most recently asked first
    out.sort(key=lambda c: c.count, reverse=True)
    return out


def write_csv(clusters: list[GapCluster], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8-sig") as f:  # BOM: Excel opens Chinese text correctly
        w = csv.writer(f)
        w.writerow(["rank", "kb", "count", "question", "examples", "first_seen", "last_seen", "reasons", "tickets",
                    "groups"])  # fmt: skip
        for rank, c in enumerate(clusters, start=1):
            w.writerow(
                [rank, c.kb, c.count, c.question, " | ".join(c.examples), _iso(c.first_seen), _iso(c.last_seen),
                 " ".join(f"{k}:{v}" for k, v in c.reasons.items()), " ".join(c.tickets), ",".join(c.groups)]
            )  # fmt: skip


def _iso(dt: datetime | None) -> str:
    return dt.isoformat(timespec="seconds") if dt else ""
