"""The README's screenshots of the admin dashboard and the users and keys page (docs/admin-*.png), reproducibly:

    PYTHONPATH=. .venv/bin/python tools/admin_screenshots.py --out docs      # Debian's chromium, 127.0.0.1 only

The documents and chunks pages are the browser test's own screenshots (tests/test_admin_browser.py writes them to
test-artifacts/admin/). These two need more than a test has: the dashboard over 6,000 synthetic answers
(``eval.bench_dashboard.fill``) asked in a few wordings per HR topic, with real MiniLM embeddings, so the top gaps
group by meaning; and a few users and API keys. Everything lives in a throw-away data dir.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

TOPICS = [  # wordings close enough for MiniLM to group (KB_GAP_SIMILARITY 0.7), as people repeat a question
    ("How many days of annual leave do I get?", "How many annual leave days do I get?",
     "How many days of annual leave do I have per year?"),
    ("Can I work from home on Fridays?", "Can I work from home on a Friday?",
     "Am I allowed to work from home on Fridays?"),
    ("How do I claim travel expenses?", "How can I claim my travel expenses?",
     "How do I get my travel expenses reimbursed?"),
    ("When is payday?", "When is the monthly payday?", "What day is payday?"),
    ("Can I bring my dog to the office?", "Can I bring my dog to work?", "Is my dog allowed in the office?"),
    ("How long is parental leave?", "How long is the parental leave?", "How many weeks of parental leave do I get?"),
    ("Who approves overtime?", "Who has to approve my overtime?", "Who approves overtime hours?"),
    ("年假有多少天？", "我每年可以休几天年假？", "年假一年有几天？"),
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--rows", type=int, default=6000)
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from eval.bench_dashboard import fill
    from ingest.ledger import Ledger
    from ingest.pipeline import ingest_paths, sample_kb_root
    from kb_assistant.apikeys import ApiKeyStore
    from kb_assistant.assistant import Assistant
    from kb_assistant.embeddings import make_embeddings
    from kb_assistant.settings import Settings
    from ui.server import build_app, running

    data = Path(tempfile.mkdtemp(prefix="kb-admin-shots-"))
    try:
        settings = Settings(data_dir=data, llm_price_prompt_per_1m=0.15, llm_price_completion_per_1m=0.6)
        embeddings = make_embeddings(settings)
        assistant = Assistant(settings, embeddings=embeddings)
        ingest_paths(settings, [sample_kb_root() / "default"], "default")
        docs = sorted(d.path for d in Ledger(settings).documents("default"))
        questions = [wording for i in range(3) for topic in TOPICS for wording in topic[i : i + 1]]
        fill(assistant.queue, args.rows, 30, questions=questions, embed=embeddings.embed_query, docs=docs)
        queue = assistant.queue
        queue.add_user("ada", "admin password 1", role="admin")
        queue.add_user("hr-lead", "admin password 2", role="admin")
        queue.add_user("anna", "agent password 1", role="agent")
        queue.add_user("bob", "agent password 2", role="agent")
        queue.disable_user("bob")
        keys = ApiKeyStore.for_settings(settings)
        keys.create(["default"], name="intranet")
        keys.create(["*"], name="chat widget")

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with running(build_app(assistant)) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{base}/admin/")
            page.get_by_label("username").fill("ada")
            page.get_by_label("password").fill("admin password 1")
            page.get_by_role("button", name="Login").click()
            page.get_by_role("tab", name="Dashboard").click()
            page.locator("#dash-refresh").click()
            page.locator("#dash-gaps").get_by_text("annual leave", exact=False).filter(visible=True).first.wait_for(
                timeout=120_000
            )
            page.wait_for_timeout(1500)  # the plots draw
            args.out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out / "admin-dashboard.png", full_page=True)
            page.get_by_role("tab", name="Users and keys").click()
            page.locator("#admin-keys").get_by_text("chat widget").filter(visible=True).first.wait_for()
            page.screenshot(path=args.out / "admin-users.png", full_page=True)
            browser.close()
        print(f"wrote {args.out / 'admin-dashboard.png'} and {args.out / 'admin-users.png'}")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
