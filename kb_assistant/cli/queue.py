"""`kb queue …`, `kb user …`, `kb gaps`, `kb feedback`, `kb replies`, `kb console`: the human queue from the shell.

Registered on the main app by ``register(app)``. Thin: parse, call Assistant / TicketQueue, print.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from kb_assistant.cli.common import fail as _fail
from kb_assistant.cli.common import settings as _settings

queue_app = typer.Typer(help="The human queue: tickets for questions the KB could not answer.", no_args_is_help=True)
user_app = typer.Typer(help="Agents who answer tickets in the console.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
AgentOption = Annotated[str, typer.Option("--agent", help="Who does it (shown on the ticket and the FAQ entry).")]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _queue():
    from kb_assistant.queue.store import TicketQueue

    return TicketQueue(_settings())


def _assistant():
    from kb_assistant.assistant import Assistant

    return Assistant(_settings())


def _promote(ticket_id: str, question: str | None = None, groups: str | None = None) -> str:
    from ingest.promote import promote

    return promote(_assistant(), ticket_id, question, groups)


def parse_duration(text: str, option: str) -> timedelta:
    m = _DURATION.match(text or "")
    if not m:
        _fail(f"{option} {text!r}: give a duration like 30m, 12h, 7d or 2w")
    return timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})


def parse_since(text: str | None) -> datetime | None:
    """'7d' (ago) or an ISO date/time; UTC."""
    if not text:
        return None
    if _DURATION.match(text):
        return datetime.now(UTC) - parse_duration(text, "--since")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--since {text!r}: give a duration like 7d or a date like 2026-11-01")
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _run(fn):
    from kb_assistant.errors import KBError

    try:
        return fn()
    except KBError as exc:
        _fail(str(exc), 1)


def scope_groups(scope: str | None) -> list[str]:
    """A ticket's scope as its askers' groups (empty: askers in no group)."""
    return [g for g in (scope or "").split(",") if g]


def ticket_dict(t) -> dict:
    from kb_assistant.queue.models import format_ticket_id

    return {
        "id": format_ticket_id(t.id), "kb": t.kb, "groups": scope_groups(t.scope), "status": t.status,
        "resolution": t.resolution, "reason": t.reason,
        "question": t.question, "standalone_question": t.standalone_question, "language": t.language,
        "asked": len(t.requests), "requests": [
            {"question": r.question, "session_id": r.session_id, "user": r.user, "reason": r.reason,
             "answer_id": r.answer_id, "comment": r.comment, "ref": r.ref, "created_at": _iso(r.created_at)}
            for r in t.requests
        ],
        "conversation": t.conversation, "passages": t.passages, "bad_answer": t.bad_answer,
        "claimed_by": t.claimed_by, "answer": t.answer, "answered_by": t.answered_by,
        "promoted_source": t.promoted_source, "created_at": _iso(t.created_at), "claimed_at": _iso(t.claimed_at),
        "answered_at": _iso(t.answered_at), "closed_at": _iso(t.closed_at),
    }  # fmt: skip


def _iso(dt) -> str | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def _age(dt) -> str:
    secs = (datetime.now(UTC) - (dt if dt.tzinfo else dt.replace(tzinfo=UTC))).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{int(secs // size)}{unit}"
    return f"{int(secs)}s"


def _one_line(text: str, width: int = 70) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --- kb queue ------------------------------------------------------------------------------------------
@queue_app.command("list")
def queue_list(
    kb: Annotated[str | None, typer.Option("--kb", help="Only this knowledge base.")] = None,
    status: Annotated[str, typer.Option(help="open (open or claimed), claimed, answered, closed, all.")] = "open",
    reason: Annotated[
        str | None, typer.Option(help="low_confidence, not_in_context, no_citation, handoff, downvote.")
    ] = None,
    older_than: Annotated[str | None, typer.Option(help="Only tickets at least this old, e.g. 2h, 3d.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="Tickets per page; 0 = all of them.")] = 100,
    page: Annotated[int, typer.Option(min=1, help="Which page of --limit tickets.")] = 1,
    as_json: JsonOption = False,
):
    """List tickets, oldest first, a page at a time; says how many there are (the count goes to stderr with
    --json, whose stdout is the page's tickets)."""
    older = parse_duration(older_than, "--older-than") if older_than else None
    queue = _queue()
    filters = dict(kb=kb, status=status, reason=reason, older_than=older)
    total = _run(lambda: queue.count_tickets(**filters))
    offset = (page - 1) * limit if limit else 0
    tickets = _run(lambda: queue.list_tickets(**filters, limit=limit or None, offset=offset))
    shown = f"{offset + 1}–{offset + len(tickets)} of {total}" if tickets else f"none of {total} on page {page}"
    more = f"; next: --page {page + 1}" if limit and offset + len(tickets) < total else ""
    footer = f"{status} tickets {shown}{more}"
    if as_json:
        typer.echo(json.dumps([ticket_dict(t) for t in tickets], ensure_ascii=False, indent=2))
        typer.echo(footer, err=True)
        return
    if not total:
        typer.echo(f"no {status} tickets")
        return
    from kb_assistant.queue.models import format_ticket_id

    for t in tickets:
        who = f" @{t.claimed_by}" if t.claimed_by and t.status == "claimed" else ""
        times = f" ×{len(t.requests)}" if len(t.requests) > 1 else ""
        typer.echo(
            f"{format_ticket_id(t.id)}  {t.status:<8}{who}  {t.kb:<10} {t.reason:<15} {_age(t.created_at):>4}"
            f"{times}  {_one_line(t.question)}" + (f"  [groups {t.scope}]" if t.scope else "")
        )
    typer.echo(footer)


@queue_app.command("show")
def queue_show(ticket_id: str, as_json: JsonOption = False):
    """Everything about one ticket: the question, the conversation, the passages, why it escalated."""
    t = _run(lambda: _queue().get(ticket_id))
    d = ticket_dict(t)
    if as_json:
        typer.echo(json.dumps(d, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{d['id']}  [{d['status']}]  KB {d['kb']}  reason: {d['reason']}  opened {d['created_at']}")
    typer.echo(f"asked by: {', '.join(d['groups']) or 'no group'} (the answer reaches only askers of these groups)")
    typer.echo(f"question: {d['question']}")
    if d["standalone_question"] != d["question"]:
        typer.echo(f"standalone: {d['standalone_question']}")
    for r in d["requests"]:
        extra = f" — comment: {r['comment']}" if r["comment"] else ""
        typer.echo(f"  asked {r['created_at']} session {r['session_id'] or '-'}: {r['question']}{extra}")
    if d["conversation"]:
        typer.echo("conversation:")
        for m in d["conversation"]:
            typer.echo(f"  {m['role']}: {_one_line(m['content'], 200)}")
    if d["bad_answer"]:
        typer.echo(f"answer voted down: {d['bad_answer']}")
    if d["passages"]:
        typer.echo("passages retrieved:")
        for p in d["passages"]:
            typer.echo(f"  [{p['n']}] {p['score']:.2f}  {p['source']} {p['section']}: {_one_line(p['text'], 90)}")
    if d["answer"]:
        typer.echo(f"answer ({d['answered_by']}, {d['answered_at'] or d['closed_at']}): {d['answer']}")
    if d["promoted_source"]:
        typer.echo(f"in the knowledge base as {d['promoted_source']}")


@queue_app.command("claim")
def queue_claim(ticket_id: str, agent: AgentOption):
    """Take a ticket so other agents see it is being worked on."""
    t = _run(lambda: _queue().claim(ticket_id, agent))
    typer.echo(f"{ticket_dict(t)['id']} claimed by {agent}")


@queue_app.command("answer")
def queue_answer(
    ticket_id: str,
    text: Annotated[str | None, typer.Argument(help="The answer; omit to read it from stdin.")] = None,
    agent: AgentOption = "cli",
    promote: Annotated[bool, typer.Option("--promote", help="Also add it to the knowledge base.")] = False,
    as_json: JsonOption = False,
):
    """Answer a ticket (and close it as answered): everyone who asked sees the answer in their chat."""
    text = text if text is not None else sys.stdin.read()
    t = _run(lambda: _queue().answer(ticket_id, text, agent))
    d = ticket_dict(t)
    if promote:
        d["promoted_source"] = _run(lambda: _promote(ticket_id))
    if as_json:
        typer.echo(json.dumps(d, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{d['id']} answered by {agent}; {d['asked']} asker(s) will see it")
    if promote:
        typer.echo(f"added to the knowledge base '{d['kb']}' as {d['promoted_source']}")


@queue_app.command("close")
def queue_close(
    ticket_id: str,
    agent: AgentOption = "cli",
    note: Annotated[str, typer.Option(help="Optional message to the user, e.g. who to ask instead.")] = "",
    as_json: JsonOption = False,
):
    """Close a ticket as not our question (answered tickets are closed by `kb queue answer`)."""
    t = _run(lambda: _queue().close(ticket_id, agent, note))
    if as_json:
        typer.echo(json.dumps(ticket_dict(t), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{ticket_dict(t)['id']} closed (not our question)")


@queue_app.command("promote")
def queue_promote(
    ticket_id: str,
    question: Annotated[str | None, typer.Option(help="The FAQ question, if not the ticket's wording.")] = None,
    groups: Annotated[
        str | None, typer.Option(help="Visible to these access groups instead of the ticket's askers' (a,b).")
    ] = None,
    everyone: Annotated[bool, typer.Option("--everyone", help="Visible to everyone who may use the KB.")] = False,
):
    """Add an answered ticket to its knowledge base as a curated FAQ entry, searchable at once. It is visible to
    the access groups of the ticket's askers unless --groups or --everyone widens it."""
    if groups is not None and everyone:
        _fail("give --groups or --everyone, not both")
    source = _run(lambda: _promote(ticket_id, question, "" if everyone else groups))
    typer.echo(f"added to the knowledge base as {source}")


# --- kb user -------------------------------------------------------------------------------------------
@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="agent (tickets, gaps) or admin (also KBs, documents, stats).")] = "agent",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
):
    """Create a console user, agent or admin (or change their role and password); stored as a bcrypt hash."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    _run(lambda: _queue().add_user(name, password, role))
    typer.echo(f"user {name} ({role}) saved")


@user_app.command("list")
def user_list():
    """Console users: name, role, enabled or disabled, since when."""
    from kb_assistant.queue.agents import is_disabled

    for u in _run(lambda: _queue().users()):
        state = "disabled" if is_disabled(u) else "enabled"
        typer.echo(f"{u.name}  {u.role}  {state}  since {_iso(u.created_at)}")


@user_app.command("disable")
def user_disable(name: str):
    """Refuse a user's sign-in and role from the next request on (kb user enable NAME undoes it)."""
    _run(lambda: _queue().disable_user(name))
    typer.echo(f"user {name} disabled")


@user_app.command("enable")
def user_enable(name: str):
    """Let a disabled user sign in again, with the password they had."""
    _run(lambda: _queue().enable_user(name))
    typer.echo(f"user {name} enabled")


@user_app.command("remove")
def user_remove(name: str):
    """Delete a console user (the last enabled admin is kept)."""
    _run(lambda: _queue().remove_user(name))
    typer.echo(f"user {name} removed")


# --- top-level commands --------------------------------------------------------------------------------
def gaps(
    kb: Annotated[str | None, typer.Option("--kb", help="Only this knowledge base.")] = None,
    since: Annotated[str | None, typer.Option(help="Only questions since: 7d, 12h, or a date 2026-11-01.")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write the clusters to this CSV file.")] = None,
    limit: Annotated[int, typer.Option(help="Clusters to print.")] = 20,
    as_json: JsonOption = False,
):
    """What the knowledge base is missing: unanswered questions grouped by meaning, most asked first."""
    from kb_assistant.queue.gaps import gap_clusters, write_csv

    assistant = _assistant()
    clusters = _run(lambda: gap_clusters(assistant.queue, assistant.embeddings, kb=kb, since=parse_since(since)))
    if csv_file:
        write_csv(clusters, csv_file)
        typer.echo(f"{len(clusters)} gaps written to {csv_file}", err=True)
    if as_json:
        typer.echo(json.dumps([c.as_dict() for c in clusters], ensure_ascii=False, indent=2))
        return
    if not clusters:
        typer.echo("no unanswered questions")
        return
    for rank, c in enumerate(clusters[:limit], start=1):
        groups = f" (groups {', '.join(c.groups)})" if c.groups else ""
        typer.echo(f"{rank:>3}. ×{c.count:<3} [{c.kb}]{groups} {c.question}")
        for ex in c.examples[1:4]:
            typer.echo(f"         also: {ex}")
        if c.tickets:
            typer.echo(f"         tickets: {' '.join(c.tickets[:6])}{' …' if len(c.tickets) > 6 else ''}")


def feedback(
    answer_id: str,
    rating: Annotated[str, typer.Argument(help="up or down.")],
    comment: Annotated[str, typer.Option(help="What was wrong; a 👎 with a comment opens a ticket.")] = "",
    session: Annotated[str | None, typer.Option(help="The chat session that will see the reply.")] = None,
):
    """👍/👎 on an answer (its id is in `kb ask --json`)."""
    fb = _run(lambda: _assistant().feedback(answer_id, rating, comment, session_id=session))
    typer.echo(f"recorded {fb.rating}" + (f"; ticket {fb.ticket_id}" if fb.ticket_id else ""))


def replies(session: Annotated[str, typer.Argument(help="The session id used with `kb ask --session`.")],
            as_json: JsonOption = False):  # fmt: skip
    """The tickets of a chat session and the answers agents gave: what the user sees when they come back."""
    views = _run(lambda: _assistant().replies(session))
    if as_json:
        typer.echo(json.dumps([v.model_dump() for v in views], ensure_ascii=False, indent=2))
        return
    for v in views:
        typer.echo(f"{v.id} [{v.status}] {v.question}")
        if v.answer:
            typer.echo(f"    → {v.answer}")


def console(
    host: Annotated[str | None, typer.Option(help="Bind address (KB_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (KB_CONSOLE_PORT).")] = None,
):
    """Open the agent console (login: agents from `kb user add NAME --role agent`)."""
    settings = _settings()
    from ui.console import launch

    launch(settings, host=host or settings.host, port=port or settings.console_port)


def register(app: typer.Typer) -> None:
    app.add_typer(queue_app, name="queue")
    app.add_typer(user_app, name="user")
    for fn in (gaps, feedback, replies, console):
        app.command(fn.__name__)(fn)
