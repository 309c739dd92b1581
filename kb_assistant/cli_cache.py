"""`kb cache stats|clear [--kb]`: what the semantic cache saved, and a way to empty it."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="The semantic cache: hit rate, time saved, entries, invalidations; clear it.", no_args_is_help=True
)
KbOption = Annotated[str | None, typer.Option("--kb", help="One knowledge base (default: all).")]


def _cache():
    from kb_assistant.cache import SemanticCache
    from kb_assistant.cli import _settings

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
        f"  near misses rejected {s.near_misses_rejected}, personal questions skipped {s.personal_skipped}, "
        f"invalidations {s.invalidations}, expired {s.expired}, evicted (size) {s.evicted_lru}, "
        f"evicted (👎) {s.evicted_feedback}"
    )


@app.command()
def clear(kb: KbOption = None):
    """Delete the cached answers (of one KB, or all)."""
    n = _cache().clear(kb)
    typer.echo(f"cleared {n} cached answers{f' of {kb!r}' if kb else ''}")
