"""`python -m kb_assistant.cli …` is `kb …`."""

from kb_assistant.cli.commands import main

main()
