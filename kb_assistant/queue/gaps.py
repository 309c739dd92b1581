"""The gap log: unanswered questions grouped by meaning, ranked by how often they were asked.

Greedy clustering per KB and access scope (the askers' groups: a gap only some groups have is shown as theirs),
oldest question first: a question joins the cluster it is most similar to when the
similarity reaches ``KB_GAP_SIMILARITY``, else starts a new one. Similarity is the embedding cosine; for
Chinese, where MiniLM's vectors say little, it is blended with the share of words the two questions have in
common.
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
    missing = [r.standalone_question or r.question for r in rows if not r.embedding]
    fresh = iter(embeddings.embed_documents(missing) if missing else [])
    members: list[_Member] = []
    for r in rows:
        text = r.standalone_question or r.question
        vec = np.asarray(r.embedding if r.embedding else next(fresh), dtype=np.float32)
        vec /= np.linalg.norm(vec) or 1.0
        members.append(_Member(text, vec, frozenset(tokenize(text)), detect_language(text) == "zh"))

    clusters: list[tuple[GapCluster, list[_Member], Counter, set]] = []
    by_norm: dict[tuple[str, str], int] = {}
    for row, m in zip(rows, members, strict=True):
        scope = getattr(row, "scope", "") or ""
        key = (row.kb, scope, normalize_question(m.text))
        best = by_norm.get(key)
        if best is None:
            best_sim = threshold
            for i, (c, leaders, _, _) in enumerate(clusters):
                if c.kb != row.kb or ",".join(c.groups) != scope:
                    continue
                sim = max(similarity(m, x) for x in leaders)
                if sim >= best_sim:
                    best, best_sim = i, sim
        if best is None:
            cluster = GapCluster(kb=row.kb, question=m.text, groups=[g for g in scope.split(",") if g],
                                 first_seen=row.created_at)  # fmt: skip
            clusters.append((cluster, [], Counter(), set()))
            best = len(clusters) - 1
        by_norm[key] = best
        cluster, leaders, wordings, tickets = clusters[best]
        if len(leaders) < _LEADERS:
            leaders.append(m)
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
