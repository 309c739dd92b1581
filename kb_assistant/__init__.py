"""kb-assistant: cited answers from a company's handbooks and FAQs, and a person when the KB has no answer.

The core library. ``Assistant`` is the pipeline every surface calls; ``Settings`` the one configuration.
Heavy dependencies load on first use, so importing this package is cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Answer", "Assistant", "Settings", "load_settings"]


def __getattr__(name: str):
    if name == "Assistant":
        from kb_assistant.assistant import Assistant

        return Assistant
    if name in ("Settings", "load_settings"):
        from kb_assistant import settings

        return getattr(settings, name)
    if name == "Answer":
        from kb_assistant.schema import Answer

        return Answer
    raise AttributeError(name)
