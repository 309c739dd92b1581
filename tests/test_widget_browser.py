"""The embeddable widget in a real browser: Playwright driving Debian's chromium (headless) against a real
uvicorn server on 127.0.0.1 over the sample KBs (extractive answers). Screenshots go to test-artifacts/widget/.

chromium comes from Debian (`apt-get install -y chromium`; .ci/run installs it); `playwright install` cannot
download a browser here. Without chromium these tests fail with that message: they never pass silently.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.settings import Settings
from ui.server import build_app

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "widget"
XSS = "<img src=x onerror=alert(1)>"
WIDGET = "#kb-assistant-widget"  # Playwright's CSS locators pierce the widget's (open) shadow root


@pytest.fixture(scope="module", autouse=True)
def _artifacts_dir() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def widget_data_dir(sample_data_dir, tmp_path_factory):
    """The sample KBs plus a KB 'xss' whose only document carries an HTML payload."""
    from ingest.pipeline import ingest_paths

    data_dir = tmp_path_factory.mktemp("widget") / "data"
    shutil.copytree(sample_data_dir, data_dir)
    doc = tmp_path_factory.mktemp("xss-doc") / "wifi.txt"
    doc.write_text(
        f"Guest Wi-Fi\n\nThe guest Wi-Fi password is printed on the back of your badge {XSS} and reception resets it.",
        encoding="utf-8",
    )
    report = ingest_paths(Settings(data_dir=data_dir), [doc], "xss")
    assert report.ok, report.failed
    return data_dir


@pytest.fixture(scope="module")
def assistant(widget_data_dir, embeddings):
    return Assistant(Settings(data_dir=widget_data_dir), embeddings=embeddings)


@pytest.fixture(scope="module")
def server(live_server, assistant):
    return live_server(build_app(assistant, mount_ui=False))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 720}, locale="zh-CN")
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    context.close()


def ask(page, question: str):
    """Type a question into the open widget; return the bot message once its answer is rendered."""
    before = page.locator(f"{WIDGET} .msg.bot:not(.hello)").count()
    page.locator(f"{WIDGET} textarea.input").fill(question)
    with page.expect_response(lambda r: r.url.endswith("/api/ask")) as response:
        page.locator(f"{WIDGET} textarea.input").press("Enter")
    message = page.locator(f"{WIDGET} .msg.bot:not(.hello)").nth(before)
    message.and_(page.locator("[data-state=done]")).wait_for(timeout=30_000)
    return message, response.value


# --- the tests -------------------------------------------------------------------------------------------------------
def test_demo_page_loads_with_the_chat_bubble_in_isolated_styles(page, server):
    page.goto(f"{server}/widget/demo")

    launcher = page.locator(f"{WIDGET} button.launcher")
    launcher.wait_for()
    assert "有问题？问我" in launcher.text_content()  # <html lang="zh">: Chinese UI
    # the host page paints every button hot pink with !important; the widget's shadow root keeps its own look
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(36, 88, 214)"
    launcher.click()
    assert page.locator(f"{WIDGET} .panel").is_visible()
    page.screenshot(path=ARTIFACTS / "demo-open.png")


def test_chinese_question_streams_a_cited_answer(page, server):
    page.goto(f"{server}/widget/demo")
    page.locator(f"{WIDGET} button.launcher").click()

    message, response = ask(page, "公司几点上班？")

    assert response.headers["content-type"].startswith("text/event-stream")  # the streaming path, not JSON
    assert message.get_attribute("data-answered") == "true"
    assert "10:00" in message.locator(".text").text_content()
    assert message.locator("sup.ref").count() >= 1  # [n] markers become citation links
    sources = message.locator(".cites li")
    assert sources.count() >= 1 and "员工手册-考勤与工时.md" in sources.first.text_content()
    message.locator("sup.ref").first.click()  # opens that source's passage
    assert message.locator(".cites details[open] .snip").first.is_visible()
    assert message.locator("button.up").is_visible() and message.locator("button.down").is_visible()
    page.screenshot(path=ARTIFACTS / "cited-answer.png")


def test_off_topic_question_shows_the_holding_reply(page, server, assistant):
    page.goto(f"{server}/widget/demo")
    page.locator(f"{WIDGET} button.launcher").click()

    message, _ = ask(page, "火星上今天的天气怎么样？")

    assert message.get_attribute("data-answered") == "false"
    text = message.locator(".text").text_content()
    assert text.startswith(assistant.settings.holding_reply_zh)
    assert re.search(r"工单号 T-\d+", text), text  # the ticket number from the human queue
    assert message.locator(".cites").count() == 0
    assert "#T-" in message.locator(".ticket-id").text_content()
    page.screenshot(path=ARTIFACTS / "holding-reply.png")


def test_html_in_a_document_or_question_renders_inert(page, server):
    page.goto(f"{server}/widget/demo?kb=xss&lang=en")
    page.locator(f"{WIDGET} button.launcher").click()
    assert "Questions? Ask me" in page.locator(f"{WIDGET} button.launcher").text_content()

    message, _ = ask(page, f"What is the guest Wi-Fi password? {XSS}")
    message.locator(".cites summary").first.click()  # show the cited passage too
    page.wait_for_timeout(500)  # give any onerror handler the time to fire

    assert message.get_attribute("data-answered") == "true"
    assert XSS in page.locator(f"{WIDGET} .msg.user").last.text_content()  # the question, as text
    # the answer quotes the document (the extractive answerer strips markdown's '>', the tag stays), as text
    assert XSS.rstrip(">") in message.locator(".text").text_content()
    assert XSS in message.locator(".cites .snip").first.text_content()  # the passage, as text
    assert page.locator(f"{WIDGET} img").count() == 0 and page.locator("img").count() == 0
    assert page.dialogs == []
    page.screenshot(path=ARTIFACTS / "html-inert.png")


def test_ticket_number_agent_answer_and_feedback_through_the_human_queue(page, server, assistant):
    page.goto(f"{server}/widget/demo?poll_ms=1000")
    page.locator(f"{WIDGET} button.launcher").click()

    message, _ = ask(page, "火星上明天会刮沙尘暴吗？")
    ticket_id = re.search(r"T-\d+", message.locator(".ticket-id").text_content()).group()
    assistant.queue.answer(ticket_id, "没有。<b>注意</b>：月球分公司尚在筹备。", agent="anna")  # as in the console
    agent = page.locator(f"{WIDGET} .msg.agent")
    agent.wait_for(timeout=15_000)  # the widget polls GET /api/tickets/{id}
    assert "没有。<b>注意</b>：月球分公司尚在筹备。" in agent.text_content()  # shown as text, not HTML

    answered, _ = ask(page, "公司几点上班？")
    answered.locator("button.up").click()
    answered.locator(".fb .done").wait_for()
    again, _ = ask(page, "How many days of sick leave do I get?")
    again.locator("button.down").click()
    again.locator("textarea.comment").fill("it is 15 days since 2026")
    again.locator("button.submit").click()
    again.locator(".ticket-id").wait_for()  # 👎 with a comment opened a ticket
    assert assistant.queue.answer_log(answered.get_attribute("data-answer-id")).rating == "up"
    assert assistant.queue.answer_log(again.get_attribute("data-answer-id")).rating == "down"
    page.screenshot(path=ARTIFACTS / "ticket-and-feedback.png")
