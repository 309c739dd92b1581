"""`kb`'s root app: ingest, ask, serve, eval, status. Thin: parses, calls Assistant / ingest, prints.

The command groups (apikey, cache, queue) live beside it; heavy imports happen inside commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from kb_assistant.cli import apikey, cache, queue
from kb_assistant.cli.common import fail as _fail
from kb_assistant.cli.common import settings as _settings

app = typer.Typer(
    help="kb-assistant: cited answers from your handbooks and FAQs; a person when the KB has no answer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

KbOption = Annotated[str, typer.Option("--kb", help="Knowledge base name.")]


def _ensure_sample(settings) -> None:
    from ingest.pipeline import ensure_sample_kbs

    for report in ensure_sample_kbs(settings, say=lambda m: typer.echo(m, err=True)):
        typer.echo(f"  '{report.kb}': {report.documents} documents, {report.chunks} chunks", err=True)


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders to sync into the KB.")] = None,
    kb: KbOption = "default",
    all_sources: Annotated[bool, typer.Option("--all", help="Re-sync every remembered source of every KB.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Rebuild: reload and re-embed every document.")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Fail if another ingest holds the KB.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    forget: Annotated[
        bool, typer.Option("--forget", help="Forget the remembered sources PATH…: remove their chunks from --kb.")
    ] = False,
    groups: Annotated[
        str | None,
        typer.Option(
            "--groups",
            help="Limit the sources PATH… to these access groups (e.g. managers,hr-team); remembered for --all.",
        ),
    ] = None,
    no_groups: Annotated[
        bool, typer.Option("--no-groups", help="Make the sources PATH… visible to everyone who may use the KB.")
    ] = False,
):
    """Sync documents into a KB: only new and changed files are loaded and embedded, deleted ones removed.

    Formats: md, txt, html, pdf, docx, pptx, xlsx, csv FAQ tables. Exit code 1 when any file failed.
    """
    from ingest.pipeline import forget_sources, sync_all, sync_sources
    from ingest.report import IngestReport
    from kb_assistant.errors import KBError
    from kb_assistant.settings import SettingsError

    def on_file(path: Path, error: str | None):
        if error:
            typer.secho(f"failed: {path}: {error}", fg=typer.colors.RED, err=True)

    from ingest.handoff import hand_off, running_server

    settings = _settings()
    if bool(paths) == all_sources:
        _fail("give PATH… to sync into --kb, or --all to re-sync every remembered source (not both)")
    if forget and (all_sources or full):
        _fail("--forget takes the remembered sources to forget as PATH… (not --all or --full)")
    if groups is not None or no_groups:
        if all_sources or forget or (groups is not None and no_groups):
            _fail("--groups / --no-groups set the groups of the sources PATH… (not with --all, --forget or each other)")
        if groups is not None and not groups.replace(",", " ").strip():
            _fail("--groups names no group: give the groups (e.g. managers,hr-team), or --no-groups")
        from ingest.visibility import set_source_groups

        try:  # remembered before the sync, which publishes the documents with them
            set_source_groups(settings, paths, kb, "" if no_groups else groups)
        except KBError as exc:
            _fail(str(exc))
    server = running_server(settings)  # embedded Chroma has one writer: a running server ingests for us
    handed = None
    if server is not None:
        typer.echo(f"{server.describe()} serves this data dir: handing the ingest to it …", err=True)
        job = {"paths": [str(p.resolve()) for p in paths or []], "kb": kb, "full": full, "all": all_sources,
               "forget": forget}  # fmt: skip
        try:
            handed = [IngestReport.model_validate(r) for r in hand_off(settings, server, job)]
        except KBError as exc:
            _fail(str(exc))
        for r in handed:
            for f in r.failed:
                on_file(Path(f.path), f.reason)
    if forget:
        try:
            r = (
                handed[0]
                if handed
                else forget_sources(settings, paths, kb, wait=not no_wait, say=lambda m: typer.echo(m, err=True))
            )
        except (KBError, SettingsError) as exc:
            _fail(str(exc))
        if as_json:
            typer.echo(r.model_dump_json(indent=2))
        else:
            typer.echo(
                f"knowledge base '{r.kb}': forgot {len(r.sources)} source(s), {r.deleted} documents removed, "
                f"{r.total_chunks} chunks in the KB (KB version {r.kb_version})"
            )
        raise typer.Exit(0)

    options = dict(
        full=full,
        wait=not no_wait,
        progress=not as_json and sys.stderr.isatty(),
        on_file=on_file,
        say=lambda m: typer.echo(m, err=True),
    )
    try:
        if handed is not None:
            reports = handed
        else:
            reports = sync_all(settings, **options) if all_sources else [sync_sources(settings, paths, kb, **options)]
    except (KBError, SettingsError) as exc:
        _fail(str(exc))
    if as_json:
        import json

        data = [r.model_dump(mode="json") for r in reports]
        typer.echo(json.dumps(data if all_sources else data[0], indent=2, ensure_ascii=False))
    else:
        for r in reports:
            typer.echo(
                f"knowledge base '{r.kb}': {r.documents} documents ({r.added} added, {r.updated} updated, "
                f"{r.unchanged} unchanged), {r.deleted} deleted, {len(r.failed)} failed, {r.chunks} chunks "
                f"written ({r.embedded} embedded), {r.total_chunks} in the KB, {r.seconds:.1f}s "
                f"(KB version {r.kb_version})"
            )
        if all_sources and not reports:
            typer.echo("no remembered sources: ingest a folder first with: kb ingest PATH --kb NAME")
    raise typer.Exit(1 if any(r.failed for r in reports) else 0)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in Chinese or English.")],
    kb: KbOption = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole Answer as JSON.")] = False,
    session: Annotated[str | None, typer.Option(help="Chat session id (see `kb replies`).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Ask as this user (logged with the answer).")] = None,
    groups: Annotated[
        str | None,
        typer.Option("--groups", help="Ask as a member of these access groups (none: sees unrestricted documents)."),
    ] = None,
):
    """Ask one question and print the cited answer."""
    from kb_assistant.assistant import Assistant
    from kb_assistant.errors import KBError
    from kb_assistant.schema import Principal

    settings = _settings()
    try:
        principal = Principal.of(user, groups)
    except ValueError as exc:
        _fail(f"--groups: {exc}")
    _ensure_sample(settings)
    try:
        answer = Assistant(settings).ask(question, kb=kb, session_id=session, principal=principal)
    except KBError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(answer.model_dump_json(indent=2))
        return
    typer.echo(answer.text)
    for c in answer.citations:
        where = " · ".join(x for x in (c.section, f"p. {c.page}" if c.page else "") if x)
        typer.echo(f"  [{c.n}] {c.source}" + (f" — {where}" if where else ""))
    if not answer.answered:
        typer.echo(f"  (not answered: {answer.escalation_reason}, confidence {answer.confidence:.2f})", err=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (KB_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (KB_PORT).")] = None,
):
    """Serve the chat, the HTTP API, the OpenAI-compatible endpoint and the widget on http://127.0.0.1:7860."""
    settings = _settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    from kb_assistant.errors import KBError

    try:
        _ensure_sample(settings)
        from ui.server import serve as serve_app

        serve_app(settings)
    except KBError as exc:
        _fail(str(exc))


app.add_typer(apikey.app, name="apikey")


@app.command(name="eval")
def eval_(
    dataset: Annotated[
        Path | None,
        typer.Argument(
            help="golden .jsonl, SQuAD .json, FAQ table (with --paraphrases), or a folder of PDFs with "
            "token_presence_*.csv (or one such csv); default: the bundled golden set."
        ),
    ] = None,
    kind: Annotated[str | None, typer.Option(help="golden | faq | squad (default: from the file).")] = None,
    paraphrases: Annotated[
        Path | None, typer.Option(help="For an FAQ table: csv question_1,question_2,similar.")
    ] = None,
    corpus: Annotated[Path | None, typer.Option(help="Build a fresh KB from this folder for a golden file.")] = None,
    kb: Annotated[str | None, typer.Option("--kb", help="Ask this existing KB (golden files).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    ablate: Annotated[bool, typer.Option(help="Also run dense-only, BM25-only and fusion without rerank.")] = False,
    calibrate: Annotated[
        bool, typer.Option(help="Print the refusal precision/recall curve and the chosen threshold.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Folder for report.json and report.html.")] = Path("eval-report"),
    compare: Annotated[Path | None, typer.Option(help="An older report.json: show the deltas.")] = None,
    fail_under: Annotated[list[str], typer.Option(help="METRIC=VALUE; exit 1 when below (repeatable).")] = [],  # noqa: B006
    fail_over: Annotated[
        list[str], typer.Option(help="METRIC=VALUE; exit 1 when above, e.g. wrong=0.15 (repeatable).")
    ] = [],  # noqa: B006
    price_in: Annotated[float, typer.Option(help="LLM price per million prompt tokens, for the cost line.")] = 0.0,
    price_out: Annotated[float, typer.Option(help="LLM price per million completion tokens.")] = 0.0,
    cache_pairs: Annotated[
        list[str],
        typer.Option(
            help="FILE:LANG (en|zh), csv question_1,question_2,label: measure the semantic cache instead (seed it "
            "with question 1, ask question 2; hit and wrong-hit rates per threshold). Repeatable."
        ),
    ] = [],  # noqa: B006
    sample: Annotated[int, typer.Option(help="With --cache-pairs: pairs per file at most (0 = all).")] = 4000,
    cache_compare: Annotated[
        bool, typer.Option(help="Also ask the questions in order with the semantic cache on; compare correctness.")
    ] = False,
):
    """Measure retrieval, answers, refusals and latency on a dataset (the same Assistant.ask as the chat, cache off)."""
    from eval.command import evaluate
    from kb_assistant.errors import KBError

    if cache_pairs:
        from eval.cache_eval import parse_pair_files, run

        try:
            run(parse_pair_files(cache_pairs), sample=sample)
        except KBError as exc:
            _fail(str(exc))
        raise typer.Exit(0)
    settings = _settings()
    try:
        _, failed = evaluate(
            settings, dataset, kind=kind, paraphrases=paraphrases, corpus=corpus, kb=kb, limit=limit, ablate=ablate,
            calibrate=calibrate, out=out, compare=compare, fail_under=fail_under, fail_over=fail_over,
            price_per_mtok=(price_in, price_out), cache_compare=cache_compare,
        )  # fmt: skip
    except KBError as exc:
        _fail(str(exc))
    for line in failed:
        typer.secho(f"{'fail-over' if ' > ' in line else 'fail-under'}: {line}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1 if failed else 0)


app.add_typer(cache.app, name="cache")
queue.register(app)  # kb queue|user|gaps|feedback|replies|console


@app.command()
def access(
    kb: Annotated[str | None, typer.Argument(help="The knowledge base (none: list every KB's groups).")] = None,
    groups: Annotated[
        str | None, typer.Option("--groups", help="Offer the KB only to principals in these groups, e.g. hr-team.")
    ] = None,
    everyone: Annotated[bool, typer.Option("--everyone", help="Offer the KB to everyone.")] = False,
):
    """Which principals may use a KB at all (its documents' own groups: kb ingest --groups, .kb-groups files)."""
    from kb_assistant.kb_access import kb_groups, set_kb_groups
    from kb_assistant.store import list_kbs

    settings = _settings()
    if kb is None:
        for name in list_kbs(settings):
            typer.echo(f"{name}: {', '.join(sorted(kb_groups(settings, name))) or 'everyone'}")
        return
    if kb not in list_kbs(settings):
        _fail(f"no knowledge base named {kb!r} in {settings.data_dir}")
    if (groups is None) == (not everyone):
        _fail("give --groups a,b (offer the KB only to them) or --everyone")
    if not everyone and not groups.replace(",", " ").strip():
        _fail("--groups names no group: give the groups (e.g. hr-team), or --everyone")
    try:
        now = set_kb_groups(settings, kb, "" if everyone else groups)
    except ValueError as exc:
        _fail(f"--groups: {exc}")
    typer.echo(f"{kb}: offered to {', '.join(sorted(now)) or 'everyone'}")


@app.command()
def status(
    kb: Annotated[str | None, typer.Option("--kb", help="Only this knowledge base.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
):
    """What each KB holds: documents, chunks, failures, KB version and the last ingest run."""
    from ingest.status import kb_status

    settings = _settings()
    rows = kb_status(settings, kb)
    if kb and not rows:
        _fail(f"no knowledge base named {kb!r} has been ingested in {settings.data_dir}")
    if as_json:
        import json

        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo(f"no knowledge base ingested in {settings.data_dir} yet: kb ingest PATH --kb NAME")
    for r in rows:
        typer.echo(
            f"{r['kb']}: {r['documents']} documents, {r['chunks']} chunks, {r['failed']} failed, "
            f"KB version {r['version']}"
        )
        if r.get("groups"):
            typer.echo(f"  KB limited to groups: {', '.join(r['groups'])}")
        for root in r["sources"]:
            src = r["source_groups"][root]
            typer.echo(f"  source: {root}  groups: {', '.join(src['groups']) or 'none (everyone)'}")
            for folder, folder_groups in src["folders"].items():
                typer.echo(f"    {folder}/  groups: {', '.join(folder_groups)}")
        run = r["last_run"]
        if run:
            typer.echo(
                f"  last run: {run['started']} {run['status']}" + (f" — {run['summary']}" if run["summary"] else "")
            )
        for f in r["failures"]:
            typer.echo(f"  failed: {f['path']}: {f['reason']}")
        for e in r.get("excluded", []):
            typer.echo(f"  excluded: {e['path']} ({e['note']}; undo it in the admin console)")


def main():
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
