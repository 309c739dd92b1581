"""The admin pages in a real browser (Playwright + Debian's chromium, headless) against a real uvicorn server:
an admin signs in, creates the KB, uploads a docx and a PDF (made here) with a bad file beside them, reads a
document's chunks, sees a chat question answered from the new document and then on the dashboard, deletes the
document and sees the chat stop answering from it; manages users and API keys (adds and disables an agent, creates
a key shown once, revokes it); an agent cannot sign in to the admin pages.
Screenshots go to test-artifacts/admin/ (the README's are copies of them, in docs/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.settings import Settings
from ui.server import build_app

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "admin"
ADMIN, AGENT = ("ada", "admin password 1"), ("anna", "agent password 1")
QUESTION = "How long is the sabbatical after five years of service?"
FACT = "eight weeks"


@pytest.fixture(scope="module", autouse=True)
def _artifacts_dir() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> list[Path]:
    from docx import Document
    from fpdf import FPDF

    folder = tmp_path_factory.mktemp("uploads")
    doc = Document()
    doc.add_heading("Sabbatical leave", level=1)
    doc.add_paragraph(
        f"After five years of service every employee may take a paid sabbatical of {FACT}. "
        "Ask your manager three months ahead and record the sabbatical in the HR portal."
    )
    doc.save(folder / "sabbatical.docx")
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 10, "Parking permits", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, "A staff parking permit costs 30 euros per month. Facilities issues permits at reception.")
    pdf.output(str(folder / "parking.pdf"))
    (folder / "macro.exe").write_bytes(b"MZ\x90\x00")
    return [folder / "sabbatical.docx", folder / "parking.pdf", folder / "macro.exe"]


@pytest.fixture(scope="module")
def server(live_server, embeddings, tmp_path_factory):
    assistant = Assistant(Settings(data_dir=tmp_path_factory.mktemp("admin") / "data"), embeddings=embeddings)
    assistant.queue.add_user(*ADMIN, role="admin")
    assistant.queue.add_user(*AGENT, role="agent")
    return live_server(build_app(assistant))


def sign_in(page, url: str, who: tuple[str, str]) -> None:
    page.goto(url)
    page.get_by_label("username").fill(who[0])
    page.get_by_label("password").fill(who[1])
    page.get_by_role("button", name="Login").click()


def ask_chat(page, server: str, question: str) -> str:
    """Ask in the Gradio chat at /; the bot's reply text once it is complete."""
    page.goto(f"{server}/")
    box = page.locator("textarea").first
    box.fill(question)
    box.press("Enter")
    bot = page.locator("[data-testid='bot']").last
    bot.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => { const b = [...document.querySelectorAll(\"[data-testid='bot']\")].pop();"
        " return b && /Sources|来源|ticket|工单/.test(b.innerText); }",
        timeout=30_000,
    )
    return bot.inner_text()


def test_an_admin_uploads_reads_and_deletes_documents_and_sees_the_questions_on_the_dashboard(browser, server, uploads):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    sign_in(page, f"{server}/admin/", ADMIN)
    page.get_by_label("New knowledge base").fill("default")
    page.get_by_role("button", name="Create").click()
    page.locator("#admin-message").get_by_text("Created knowledge base").wait_for()

    page.locator("#admin-upload input[type=file]").set_input_files([str(p) for p in uploads])
    page.locator("#admin-upload").get_by_text("macro").wait_for()  # the three files are on the server
    page.locator("#admin-ingest").click()
    progress = page.locator("#admin-progress")
    progress.get_by_text("Done").wait_for(timeout=60_000)
    text = progress.inner_text()
    assert "sabbatical.docx ingested" in text and "parking.pdf ingested" in text
    assert "macro.exe — unsupported file type '.exe'" in text  # the CLI's reason, beside the file
    docs = page.locator("#admin-docs")
    docs.get_by_text("parking.pdf").wait_for()
    listed = docs.inner_text()
    assert listed.count("ingested") == 2 and "macro" not in listed, listed
    page.screenshot(path=ARTIFACTS / "documents.png", full_page=True)

    docs.get_by_text("parking.pdf", exact=True).filter(visible=True).first.click()
    page.wait_for_function("() => document.querySelector('#admin-doc-key textarea, #admin-doc-key input')"
                           ".value.endsWith('::parking.pdf')")  # fmt: skip
    page.get_by_role("button", name="Show chunks").click()
    page.locator("#admin-chunks").get_by_text("30 euros per month").filter(visible=True).first.wait_for()
    page.locator("#admin-chunks").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "chunks.png", full_page=True)

    chat = context.new_page()
    answer = ask_chat(chat, server, QUESTION)
    assert FACT in answer and "sabbatical.docx" in answer

    page.get_by_role("tab", name="Dashboard").click()
    page.locator("#dash-refresh").click()
    page.locator("#dash-top").get_by_text(QUESTION).filter(visible=True).first.wait_for()
    totals = page.locator("#dash-totals").inner_text()
    assert totals.startswith("1 questions · 1 answered (100%)"), totals
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

    page.get_by_role("tab", name="Documents").click()
    docs.get_by_text("sabbatical.docx", exact=True).filter(visible=True).first.click()
    page.wait_for_function("() => document.querySelector('#admin-doc-key textarea, #admin-doc-key input')"
                           ".value.endsWith('::sabbatical.docx')")  # fmt: skip
    page.locator("#admin-delete").click()
    page.locator("#admin-message").get_by_text("Deleted").wait_for()
    page.wait_for_function("() => !document.querySelector('#admin-docs').innerText.includes('sabbatical.docx')")

    after = ask_chat(chat, server, QUESTION)
    assert FACT not in after and "sabbatical.docx" not in after
    context.close()


def test_an_admin_adds_and_disables_a_user_and_creates_and_revokes_an_api_key(browser, server):
    import httpx

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    sign_in(page, f"{server}/admin/", ADMIN)
    page.get_by_role("tab", name="Users and keys").click()
    users = page.locator("#admin-users")
    users.get_by_text("anna", exact=True).filter(visible=True).first.wait_for()
    page.locator("#admin-user-name input, #admin-user-name textarea").first.fill("bob")
    page.locator("#admin-user-password input").fill("bob password 1")
    page.locator("#admin-user-add").click()
    page.locator("#admin-users-message").get_by_text("Saved user bob (agent)").wait_for()
    bob = {"username": "bob", "password": "bob password 1"}
    assert httpx.post(f"{server}/console/login", data=bob).status_code == 200
    page.locator("#admin-user-disable").click()
    page.locator("#admin-users-message").get_by_text("Disabled bob").wait_for()
    page.wait_for_function("() => document.querySelector('#admin-users').innerText.includes('disabled')")
    assert httpx.post(f"{server}/console/login", data=bob).status_code >= 400
    page.locator("#admin-user-name input, #admin-user-name textarea").first.fill(ADMIN[0])
    page.locator("#admin-user-disable").click()  # an admin cannot lock themself out
    page.locator("#admin-users-message").get_by_text("cannot disable your own account").wait_for()

    page.locator("#admin-key-kbs input").click()
    page.get_by_role("option", name="*").click()
    page.locator("#admin-key-name input, #admin-key-name textarea").first.fill("intranet")
    page.locator("#admin-key-create").click()
    page.locator("#admin-users-message").get_by_text("Created key").wait_for()
    key = page.locator("#admin-new-key input, #admin-new-key textarea").first.input_value()
    assert key.startswith("kb_") and page.locator("#admin-keys").get_by_text("intranet").count()
    assert key not in page.locator("#admin-keys").inner_text()  # listed by its first characters only
    page.screenshot(path=ARTIFACTS / "users.png", full_page=True)
    ask = {"question": QUESTION, "kb": "default"}
    assert httpx.post(f"{server}/api/ask", json=ask, timeout=60).status_code == 401  # a key now guards the API
    assert httpx.post(f"{server}/api/ask", json=ask, headers={"Authorization": f"Bearer {key}"},
                      timeout=60).status_code == 200  # fmt: skip

    page.locator("#admin-keys").get_by_text("intranet", exact=True).filter(visible=True).first.click()
    page.wait_for_function("() => document.querySelector('#admin-key-id input, #admin-key-id textarea').value")
    page.locator("#admin-key-revoke").click()
    page.locator("#admin-users-message").get_by_text("Revoked key").wait_for()
    page.wait_for_function("() => !document.querySelector('#admin-keys').innerText.includes('intranet')")
    context.close()


def test_an_agent_cannot_sign_in_to_the_admin_pages(browser, server):
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    sign_in(page, f"{server}/admin/", AGENT)
    page.get_by_text("Incorrect Credentials", exact=False).wait_for()
    assert page.locator("#admin-docs").count() == 0
    page.screenshot(path=ARTIFACTS / "agent-refused.png")
    sign_in(page, f"{server}/console/", AGENT)  # the agent's own console still opens
    page.get_by_role("tab", name="Tickets").wait_for()
    context.close()
