"""What every `kb` command group shares: the settings (a clear error, not a traceback) and the one way to fail."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit with ``code`` (2: bad input; 1: the action failed)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def settings():
    """The one Settings object, or a clear exit naming the setting that is wrong."""
    from kb_assistant.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))
