"""`kb apikey create|list|revoke`: keys for the HTTP API, scoped to knowledge bases."""

from __future__ import annotations

from typing import Annotated

import typer

from kb_assistant.cli.common import fail as _fail
from kb_assistant.cli.common import settings as _settings

app = typer.Typer(help="API keys for the HTTP API (/api, /v1). Once one exists, every request needs one.")


def _store():
    from kb_assistant.apikeys import ApiKeyStore

    return ApiKeyStore.for_settings(_settings())


@app.command()
def create(
    kb: Annotated[list[str], typer.Option("--kb", help="A knowledge base the key may use (repeat; '*' = all).")],
    name: Annotated[str, typer.Option("--name", help="A label, e.g. the intranet page using it.")] = "",
    groups: Annotated[
        str, typer.Option("--groups", help="Access groups its requests ask as, e.g. managers,hr-team (none: no group).")
    ] = "",
):
    """Create a key and print it once (only its hash is stored)."""
    from kb_assistant.errors import KBError
    from kb_assistant.settings import SettingsError

    store = _store()
    try:
        key, record = store.create(kb, name=name, groups=groups)
    except (KBError, SettingsError) as exc:
        _fail(str(exc))
    typer.echo(key)
    typer.echo(
        f"key {record.id} for {', '.join(record.kbs)}"
        + (f" (groups {', '.join(record.groups)})" if record.groups else "")
        + f" saved (hashed) in {store.where}; "
        "it is shown only now: send it as 'Authorization: Bearer KEY'",
        err=True,
    )


@app.command("list")
def list_keys():
    """List keys: id, name, knowledge bases, first characters, created."""
    from kb_assistant.errors import KBError

    try:
        keys = _store().keys()
    except KBError as exc:
        _fail(str(exc))
    if not keys:
        typer.echo("no API keys: the API is open to anyone who can reach it", err=True)
    for k in keys:
        groups = ",".join(k.groups) or "-"
        typer.echo(f"{k.id}  {k.name or '-':<20} {','.join(k.kbs):<24} {groups:<20} {k.hint}…  {k.created_at}")


@app.command()
def revoke(id_or_name: Annotated[str, typer.Argument(help="The key's id (or name) from `kb apikey list`.")]):
    """Revoke a key; a running server refuses it from the next request on."""
    from kb_assistant.errors import KBError

    try:
        gone = _store().revoke(id_or_name)
    except KBError as exc:
        _fail(str(exc))
    for k in gone:
        typer.echo(f"revoked {k.id} ({k.name or 'no name'})")
