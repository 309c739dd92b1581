"""Surfaces on top of the core: the Gradio chat (and later the HTTP API, agent console and widget)."""
