"""`kb cache stats|list|drop|clear`: what the semantic cache saved, which answers it holds and served to whom,
and ways to drop one entry or all."""

from __future__ import annotations

from typing import Annotated

import typer

from kb_assistant.cli.common import fail as _fail
from kb_assistant.cli.common import settings as _settings

app = typer.Typer(
    help="The semantic cache: hit rate, time saved, entries and who received them; drop one or clear it.",
    no_args_is_help=True,
)
KbOption = Annotated[str | None, typer.Option("--kb", help="One knowledge base (default: all).")]


def _cache():
    from kb_assistant.cache.semantic import SemanticCache

    return SemanticCache(_settings(), embeddings=None)  # stats and clear never embed


@app.command()
def stats(
    kb: KbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stats as JSON.")] = False,
):
    """Hit rate, time saved, entries and invalidations."""
    s = _cache().stats(kb)
    if as_json:
        typer.echo(s.model_dump_json(indent=2))
        return
    typer.echo(
        f"cache{f' for {kb!r}' if kb else ''}: {s.entries} entries; {s.lookups} lookups, {s.hits} hits "
        f"({s.hit_rate:.1%}: {s.exact_hits} exact, {s.wording_hits} reworded, {s.semantic_hits} similar); "
        f"time saved {s.time_saved_s:.1f}s\n"
        f"  near misses rejected {s.near_misses_rejected}, paraphrases their own retrieval did not back "
        f"{s.evidence_disagreed}, personal questions skipped {s.personal_skipped}, "
        f"invalidations {s.invalidations}, expired {s.expired}, evicted (size) {s.evicted_lru}, "
        f"evicted (👎) {s.evicted_feedback}"
    )


@app.command()
def clear(kb: KbOption = None):
    """Delete the cached answers (of one KB, or all)."""
    n = _cache().clear(kb)
    typer.echo(f"cleared {n} cached answers{f' of {kb!r}' if kb else ''}")


@app.command("list")
def list_entries(
    kb: KbOption = None,
    limit: Annotated[int, typer.Option(help="Entries at most, the most recently used first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the entries as JSON.")] = False,
):
    """Each cached answer: its id, question, hits, cited sources, and which users received it."""
    entries = _cache().entries(kb, limit=limit)
    receivers = _receivers([a for e in entries for a in e.served[:20]])
    if as_json:
        import json

        rows = [{**e.model_dump(), "received_by": [receivers.get(a) for a in e.served[:20]]} for e in entries]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not entries:
        typer.echo(f"no cached answers{f' in {kb!r}' if kb else ''}")
        return
    for e in entries:
        typer.echo(f"#{e.id} [{e.kb}, {e.language}, {e.origin}] {e.hits} hits: {e.question}")
        typer.echo(f"    answer: {e.answer[:160]}{'…' if len(e.answer) > 160 else ''}")
        typer.echo(f"    cites: {'; '.join(e.sources) or '(nothing: an agent answer)'}")
        if e.served:
            got = [f"{a} ({receivers[a]})" if receivers.get(a) else a for a in e.served[:5]]
            more = f" and {len(e.served) - 5} more" if len(e.served) > 5 else ""
            typer.echo(f"    served as: {', '.join(got)}{more}")
    typer.echo("drop one with: kb cache drop ID")


def _receivers(answer_ids: list[str]) -> dict[str, str]:
    """answer id -> "user, session" from the answer log, for the ids it knows (an empty map when it is away)."""
    if not answer_ids:
        return {}
    from kb_assistant.errors import KBError
    from kb_assistant.queue.store import TicketQueue

    try:
        queue = TicketQueue(_settings())
        logged = {a: queue.answer_log(a) for a in answer_ids}
    except KBError:  # the answer log is away: the cache listing stands without it
        return {}
    out = {}
    for answer_id, row in logged.items():
        if row is not None:
            who = [f"user {row.user}" if row.user else "", f"session {row.session_id}" if row.session_id else ""]
            out[answer_id] = ", ".join(w for w in who if w) or "anonymous"
    return out


@app.command()
def drop(entry_id: Annotated[int, typer.Argument(help="The entry's id, as `kb cache list` shows it (#ID).")]):
    """Delete one cached answer; the next asker gets a fresh answer."""

    if not _cache().drop(entry_id):
        _fail(f"no cached answer #{entry_id}: see the ids with `kb cache list`")
    typer.echo(f"dropped cached answer #{entry_id}")
