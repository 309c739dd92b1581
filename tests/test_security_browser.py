"""Security in a real browser: the Gradio chat keeps its session secret in localStorage, so an agent's reply
appears after a reload, in that browser only. Playwright drives Debian's chromium (headless) against a real
uvicorn server on 127.0.0.1 (see tests/test_widget_browser.py)."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.settings import Settings
from ui.server import build_app

DOG = "Can I bring my dog to the office?"
REPLY = "Dogs are welcome on Fridays once registered with reception."


@pytest.fixture(scope="module")
def assistant(sample_data_dir, embeddings, tmp_path_factory):
    db = tmp_path_factory.mktemp("chat-queue") / "queue.db"
    settings = Settings(data_dir=sample_data_dir, database_url=f"sqlite:///{db}", cache_enabled=False)
    return Assistant(settings, embeddings=embeddings)


@pytest.fixture(scope="module")
def server(live_server, assistant):
    return live_server(build_app(assistant))  # with the Gradio chat at /


def call_gradio(server: str, api_name: str, data: list) -> list:
    """Gradio's HTTP API as any caller can use it: POST the inputs, read the result's server-sent events."""
    event = httpx.post(f"{server}/gradio_api/call/{api_name}", json={"data": data}, timeout=30).json()["event_id"]
    stream = httpx.get(f"{server}/gradio_api/call/{api_name}/{event}", timeout=30).text
    results = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: ")]
    return results[-1]


def test_an_agents_reply_appears_in_the_chat_after_a_reload_and_no_caller_can_read_it(browser, server, assistant):
    context = browser.new_context(viewport={"width": 1000, "height": 760})
    page = context.new_page()
    page.goto(server + "/")
    box = page.locator("textarea").first
    box.fill(DOG)
    box.press("Enter")
    holding = page.get_by_text(re.compile(r"ticket #T-\d+"))
    holding.first.wait_for(timeout=60_000)
    ticket_id = re.search(r"T-\d+", holding.first.text_content()).group()
    ticket = assistant.queue.get(ticket_id)
    session_id = ticket.requests[0].session_id
    assert session_id.startswith("chat-")
    page.wait_for_function("() => window.localStorage.getItem('kb-assistant-chat') !== null", timeout=30_000)
    stored = page.evaluate("() => JSON.stringify(Object.assign({}, window.localStorage))")
    assert session_id not in stored and "kb-assistant-chat" in stored  # only the encrypted secret is kept

    assistant.queue.answer(ticket_id, REPLY, "anna")  # as in the console
    page.reload()
    page.get_by_text(REPLY).first.wait_for(timeout=60_000)  # shown on load: the session survived the reload
    assert page.get_by_text(re.compile(f"Our reply.*{ticket_id}")).count() >= 1
    context.close()

    # Gradio's /show_replies gets the state as the caller sends it: a session id, or a guess, reads nothing
    for forged in ({"session_id": session_id, "shown": []}, {"secret": session_id, "shown": []}):
        state, panel = call_gradio(server, "show_replies", [forged, ""])
        assert REPLY not in json.dumps(panel) and REPLY not in json.dumps(state)
    # and a new browser starts a session of its own
    other = browser.new_context().new_page()
    other.goto(server + "/")
    other.locator("textarea").first.wait_for()
    assert REPLY not in other.content()
    other.context.close()
