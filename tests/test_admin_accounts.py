"""Users and API keys managed by an admin: the same stores as `kb user` / `kb apikey` (the queue database), every
change checked for the admin role on the server (/admin/api over HTTP; the Gradio tab is in the browser test)."""

from __future__ import annotations

import httpx
import pytest

from kb_assistant.apikeys import ApiKeyStore
from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError
from kb_assistant.queue.store import TicketQueue
from kb_assistant.settings import Settings

ADMIN, AGENT = ("ada", "admin password 1"), ("anna", "agent password 1")
LEAVE = "# Bereavement leave\n\nEmployees may take five days of paid bereavement leave for a close family member.\n"


def test_a_disabled_account_cannot_sign_in_or_act_until_enabled_and_keeps_its_password(tmp_path):
    queue = TicketQueue(Settings(data_dir=tmp_path))
    queue.add_user(*ADMIN, role="admin")
    queue.add_user(*AGENT, role="agent")
    queue.disable_user("anna")
    assert not queue.check_password(*AGENT) and queue.role_of("anna") is None
    queue.enable_user("anna")
    assert queue.check_password(*AGENT) and queue.role_of("anna") == "agent"
    queue.set_role("anna", "admin")
    assert queue.role_of("anna") == "admin"
    queue.remove_user("anna")
    assert [u.name for u in queue.users()] == ["ada"] and not queue.check_password(*AGENT)


def test_the_last_enabled_admin_cannot_be_disabled_removed_or_made_an_agent(tmp_path):
    queue = TicketQueue(Settings(data_dir=tmp_path))
    queue.add_user(*ADMIN, role="admin")
    changes = (lambda: queue.disable_user("ada"), lambda: queue.remove_user("ada"),
               lambda: queue.set_role("ada", "agent"), lambda: queue.add_user(*ADMIN, "agent"))  # fmt: skip
    for change in changes:
        with pytest.raises(KBError, match="last enabled admin"):
            change()
    assert queue.role_of("ada") == "admin"
    queue.add_user("bea", "admin password 2", role="admin")
    queue.disable_user("ada")  # another admin exists now
    assert queue.role_of("ada") is None


@pytest.fixture
def served(tmp_path, embeddings, live_server):
    from ui.server import build_app

    assistant = Assistant(Settings(data_dir=tmp_path / "data"), embeddings=embeddings)
    assistant.queue.add_user(*ADMIN, role="admin")
    assistant.queue.add_user(*AGENT, role="agent")
    return assistant, live_server(build_app(assistant))


def test_an_admin_manages_users_over_http_and_an_agent_or_nobody_cannot(served):
    assistant, base = served
    with httpx.Client(base_url=base, timeout=120) as http:
        made = http.post("/admin/api/users", json={"name": "bob", "password": "bob password 1", "role": "agent"},
                         auth=ADMIN)  # fmt: skip
        assert made.status_code == 201 and made.json()["status"] == "enabled", made.text
        assert assistant.queue.check_password("bob", "bob password 1")  # what `kb user add` stores: bcrypt
        assert http.post("/console/login", data={"username": "bob", "password": "bob password 1"}).status_code == 200

        off = http.patch("/admin/api/users/bob", json={"disabled": True}, auth=ADMIN)
        assert off.json()["status"] == "disabled"
        assert http.post("/console/login", data={"username": "bob", "password": "bob password 1"}).status_code >= 400
        assert http.get("/admin/api/kbs", auth=("bob", "bob password 1")).status_code == 401
        promoted = http.patch("/admin/api/users/bob", json={"disabled": False, "role": "admin"}, auth=ADMIN)
        assert promoted.json() | {"created": ""} == {"name": "bob", "role": "admin", "status": "enabled", "created": ""}
        assert http.get("/admin/api/kbs", auth=("bob", "bob password 1")).status_code == 200

        mine = http.patch("/admin/api/users/ada", json={"disabled": True}, auth=ADMIN)
        assert mine.status_code == 400 and "your own account" in mine.json()["error"]["message"]
        short = http.post("/admin/api/users", json={"name": "cy", "password": "short"}, auth=ADMIN)
        assert short.status_code == 400 and "8 to 72 bytes" in short.json()["error"]["message"]

        calls = [("GET", "/admin/api/users", {}),
                 ("POST", "/admin/api/users", {"json": {"name": "eve", "password": "eve password 1", "role": "admin"}}),
                 ("PATCH", "/admin/api/users/anna", {"json": {"role": "admin"}}),
                 ("DELETE", "/admin/api/users/bob", {})]  # fmt: skip
        for method, path, kw in calls:
            as_agent = http.request(method, path, auth=AGENT, **kw)
            assert as_agent.status_code == 403 and "only an admin" in as_agent.json()["error"]["message"], path
            assert http.request(method, path, **kw).status_code == 401
        assert {u.name: u.role for u in assistant.queue.users()} == {"ada": "admin", "anna": "agent", "bob": "admin"}

        assert http.delete("/admin/api/users/bob", auth=ADMIN).json() == {"removed": "bob"}
        assert [u["name"] for u in http.get("/admin/api/users", auth=ADMIN).json()] == ["ada", "anna"]


def test_an_admin_creates_a_key_scoped_to_a_kb_shown_once_and_revokes_it(served):
    assistant, base = served
    with httpx.Client(base_url=base, timeout=120) as http:
        assert http.post("/admin/api/kbs", json={"name": "hr"}, auth=ADMIN).status_code == 201
        http.post("/admin/api/kbs/hr/documents", files=[("files", ("leave.md", LEAVE.encode()))], auth=ADMIN)
        unknown = http.post("/admin/api/keys", json={"kbs": ["payroll"]}, auth=ADMIN)
        assert unknown.status_code == 400 and "no knowledge base named 'payroll'" in unknown.json()["error"]["message"]
        for who, code in ((AGENT, 403), (None, 401)):
            assert http.post("/admin/api/keys", json={"kbs": ["hr"]}, auth=who).status_code == code
            assert http.get("/admin/api/keys", auth=who).status_code == code
        made = http.post("/admin/api/keys", json={"kbs": ["hr"], "name": "intranet"}, auth=ADMIN)
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        listed = http.get("/admin/api/keys", auth=ADMIN).json()
        assert [(k["id"], k["name"], k["kbs"]) for k in listed] == [(made.json()["id"], "intranet", "hr")]
        assert key not in str(listed) and listed[0]["hint"] == key[:8] + "…"  # the key itself is never listed again
        # the same store as `kb apikey list`
        stored = ApiKeyStore.for_settings(assistant.settings).keys()
        assert [k.id for k in stored] == [listed[0]["id"]]

        question = {"question": "How many days of bereavement leave?", "kb": "hr"}
        assert http.post("/api/ask", json=question).status_code == 401  # a key exists: the API needs one
        bearer = {"Authorization": f"Bearer {key}"}
        assert http.post("/api/ask", json=question, headers=bearer).json()["answered"]
        other = http.post("/api/ask", json=question | {"kb": "default"}, headers=bearer)
        assert other.status_code in (403, 404)  # scoped to hr
        widget = http.post("/admin/api/keys", json={"kbs": ["*"], "name": "widget"}, auth=ADMIN).json()
        assert http.delete(f"/admin/api/keys/{listed[0]['id']}", auth=AGENT).status_code == 403
        assert http.delete(f"/admin/api/keys/{listed[0]['id']}", auth=ADMIN).json() == {"revoked": [listed[0]["id"]]}
        assert http.post("/api/ask", json=question, headers=bearer).status_code == 401  # from the next request on
        assert http.post("/api/ask", json=question, headers={"Authorization": f"Bearer {widget['key']}"}).json()[
            "answered"]  # fmt: skip
        assert [k["name"] for k in http.get("/admin/api/keys", auth=ADMIN).json()] == ["widget"]
