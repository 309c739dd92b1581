"""`kb`: the command line, and the composition root of the project.

This package is the only core code that may import the apps (``ingest``, ``ui``, ``eval``), and only lazily inside
a command, so that ``kb --help`` stays fast; the import-linter contract in pyproject.toml says so and CI checks it.
``commands`` holds the root app (ingest, ask, serve, eval, status); each command group has its own module
(``apikey``, ``cache``, ``queue``); ``common`` is what they share.
"""

from kb_assistant.cli.commands import app, main

__all__ = ["app", "main"]
