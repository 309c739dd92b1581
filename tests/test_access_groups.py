"""The access-groups conformance test (issue 20): a KB with a public source and a source limited to the group
``managers``, whose documents hold unique secret strings in English and Chinese. A manager is answered and cited
from them; an outsider asks directly, in paraphrase, with the secret's exact words, as a follow-up and after the
manager's answer was cached — through the CLI, /api, /v1 and the Gradio chat — and no field of any response holds
a secret string it did not send itself. A KB limited to a group is not offered to others; SSO headers from an
untrusted address are ignored; a group taken away takes effect on the next question.

The matrix (surface × probe kind → leaks found) is printed at the end: ``pytest -s tests/test_access_groups.py``.
Real Chroma, the real MiniLM, a real uvicorn server on 127.0.0.1, Gradio's own HTTP API."""

from __future__ import annotations

import json
from collections import defaultdict

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb_assistant.assistant import Assistant
from kb_assistant.cli import app as cli_app
from kb_assistant.schema import Principal
from kb_assistant.settings import Settings
from ui.chat import from_text
from ui.server import build_app

SECRETS = ["ZX-4471-BLUEFALCON", "91,400", "Harrowgate", "蓝隼计划", "九万一千四百"]
PUBLIC_DOCS = {
    "pay.md": "# Pay\n\n## Payday\n\nSalaries are paid on the 10th of every month into your bank account. Payslips "
    "are in the HR portal.\n\n## Pay reviews\n\nEvery employee has a pay review with their manager once a year.\n",
    "工资.md": "# 工资\n\n## 发薪日\n\n工资每月10日发放到员工的银行账户，工资条可在人事系统查看。\n",
}
RESTRICTED_DOCS = {
    "salary-bands.md": "# Salary bands for managers\n\n## Senior managers\n\nThe confidential salary band for "
    "senior managers (band code ZX-4471-BLUEFALCON) starts at 91,400 EUR a year.\n\n## Restructuring\n\nThe "
    "restructuring plan closes the Harrowgate office next spring; its staff move to the main office.\n",
    "薪资带宽.md": "# 经理薪资带宽\n\n## 高级经理\n\n"
    "高级经理的保密薪资带宽（代号蓝隼计划）年薪起点为九万一千四百欧元。\n",
}
BOARD_SECRET = "Q7-OSPREY-MERGER"

PROBES = {  # probe kind → (question, history)
    "direct": [
        ("What is the salary band for senior managers?", []),
        ("高级经理的薪资带宽是多少？", []),
        ("Which office does the restructuring plan close?", []),
    ],
    "paraphrase": [
        ("How much does a senior manager earn per year?", []),
        ("经理一年挣多少钱？", []),
        ("Is any office being shut down?", []),
    ],
    "exact words": [
        ("ZX-4471-BLUEFALCON", []),
        ("What does band code ZX-4471-BLUEFALCON mean?", []),
        ("蓝隼计划", []),
        ("Harrowgate office", []),
    ],
    "follow-up": [
        (
            "And for senior managers?",
            [
                {"role": "user", "content": "When is salary paid?"},
                {"role": "assistant", "content": "Salaries are paid on the 10th of every month [1]"},
            ],
        ),
        (
            "那高级经理呢？",
            [
                {"role": "user", "content": "工资什么时候发？"},
                {"role": "assistant", "content": "工资每月10日发放[1]"},
            ],
        ),
    ],  # fmt: skip
}
CACHED = "What is the salary band for senior managers?"  # the manager asks it first: the answer is cached
SSO_MANAGER = {"X-Forwarded-User": "maria", "X-Forwarded-Groups": "managers, staff"}
SSO_OUTSIDER = {"X-Forwarded-User": "otto", "X-Forwarded-Groups": "staff"}
MATRIX: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # (surface, probe) → [responses, leaks]


def leaks(body, sent: list[str]) -> list[str]:
    """The secret strings in any field of a response, less what the asker sent itself (a question or history
    that names a secret is echoed back in ``question``: that tells the asker nothing)."""
    text = json.dumps(body, ensure_ascii=False) if not isinstance(body, str) else body
    for s in sorted(sent, key=len, reverse=True):
        text = text.replace(s, "").replace(json.dumps(s, ensure_ascii=False)[1:-1], "")
    return [s for s in SECRETS + [BOARD_SECRET] if s.lower() in text.lower()]


def record(surface: str, probe: str, body, sent: list[str]) -> list[str]:
    found = leaks(body, sent)
    cell = MATRIX[(surface, probe)]
    cell[0] += 1
    cell[1] += len(found)
    return found


@pytest.fixture(scope="module")
def hr(tmp_path_factory, embeddings):
    """Data dir with KB "hr" (a public source, a source limited to managers) and KB "board" (limited to board)."""
    from ingest.pipeline import sync_sources
    from ingest.visibility import set_source_groups
    from kb_assistant.kb_access import set_kb_groups

    root = tmp_path_factory.mktemp("access")
    public, restricted, board = root / "public", root / "restricted", root / "board"
    for folder, docs in ((public, PUBLIC_DOCS), (restricted, RESTRICTED_DOCS)):
        folder.mkdir()
        for name, text in docs.items():
            (folder / name).write_text(text, encoding="utf-8")
    board.mkdir()
    (board / "merger.md").write_text(f"# Merger\n\nThe merger code name is {BOARD_SECRET}.\n", encoding="utf-8")
    settings = Settings(
        data_dir=root / "data", database_url=f"sqlite:///{root / 'queue.db'}", sso_trusted_proxies=["127.0.0.1"]
    )
    assert sync_sources(settings, [public], "hr", embeddings=embeddings).ok
    set_source_groups(settings, [restricted], "hr", "managers")
    assert sync_sources(settings, [restricted], "hr", embeddings=embeddings).ok
    assert sync_sources(settings, [board], "board", embeddings=embeddings).ok
    set_kb_groups(settings, "board", "board")
    return settings


@pytest.fixture(scope="module")
def assistant(hr, embeddings):
    return Assistant(hr, embeddings=embeddings)


@pytest.fixture(scope="module")
def keys(hr):
    from kb_assistant.apikeys import ApiKeyStore

    store = ApiKeyStore.for_settings(hr)
    manager, _ = store.create(["*"], name="managers' portal", groups="managers")
    outsider, _ = store.create(["*"], name="intranet")
    return {"manager": {"Authorization": f"Bearer {manager}"}, "outsider": {"Authorization": f"Bearer {outsider}"}}


@pytest.fixture(scope="module")
def server(live_server, assistant):
    return live_server(build_app(assistant))  # the API and the Gradio chat at /


# --- the surfaces ------------------------------------------------------------------------------------------------
def ask_cli(hr, question, history, who):
    assert not history, "kb ask takes no history"
    args = ["ask", question, "--kb", "hr", "--json", "--user", who["user"]]
    if who["groups"]:
        args += ["--groups", who["groups"]]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KB_DATA_DIR", str(hr.data_dir))
        mp.setenv("KB_DATABASE_URL", hr.database_url)
        result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ask_api(server, question, history, headers):
    r = httpx.post(f"{server}/api/ask", json={"question": question, "kb": "hr", "history": history},
                   headers=headers, timeout=120)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


def ask_v1(server, question, history, headers, stream=False):
    body = {"model": "hr", "messages": [*history, {"role": "user", "content": question}], "stream": stream}
    r = httpx.post(f"{server}/v1/chat/completions", json=body, headers=headers, timeout=120)
    assert r.status_code == 200, r.text
    return r.text if stream else r.json()


def ask_chat(server, question, history, headers, kb="hr"):
    """Gradio's HTTP API for the chat, as any caller (or the page) uses it."""
    event = httpx.post(f"{server}/gradio_api/call/chat", json={"data": [question, history, kb, None]},
                       headers=headers, timeout=120)  # fmt: skip
    assert event.status_code == 200, event.text
    stream = httpx.get(f"{server}/gradio_api/call/chat/{event.json()['event_id']}", headers=headers, timeout=120)
    # every update the chat streamed, as the user reads it: the Markdown escapes undone (``91\\,400`` is 91,400)
    updates = [json.loads(line[6:]) for line in stream.text.splitlines() if line.startswith("data: ")]
    return stream.text + "\n" + json.dumps(unescaped(updates), ensure_ascii=False)


def unescaped(value):
    if isinstance(value, str):
        return from_text(value)
    if isinstance(value, list | tuple):
        return [unescaped(v) for v in value]
    if isinstance(value, dict):
        return {k: unescaped(v) for k, v in value.items()}
    return value


WHO = {"manager": {"user": "maria", "groups": "managers"}, "outsider": {"user": "otto", "groups": "staff"}}


def surfaces(hr, server, keys):
    """surface → ask(question, history, role) → the response (whatever the surface returns, whole)."""
    return {
        "cli": lambda q, h, role: ask_cli(hr, q, h, WHO[role]),
        "/api": lambda q, h, role: ask_api(server, q, h, keys[role]),
        "/api (SSO)": lambda q, h, role: ask_api(server, q, h, {**keys["outsider"], **sso(role)}),
        "/v1": lambda q, h, role: ask_v1(server, q, h, keys[role]),
        "/v1 stream": lambda q, h, role: ask_v1(server, q, h, keys[role], stream=True),
        "chat": lambda q, h, role: ask_chat(server, q, h, sso(role)),
    }


def sso(role: str) -> dict:
    return SSO_MANAGER if role == "manager" else SSO_OUTSIDER


# --- the tests ---------------------------------------------------------------------------------------------------
def test_a_manager_is_answered_and_cited_from_the_restricted_source_on_every_surface(hr, server, keys):
    for surface, ask in surfaces(hr, server, keys).items():
        body = ask(CACHED, [], "manager")  # also caches the manager's answer for the probes below
        text = json.dumps(body, ensure_ascii=False) if not isinstance(body, str) else body
        assert "91,400" in text and "salary-bands.md" in text, surface


@pytest.mark.parametrize("probe", [*PROBES, "after cache"])
def test_an_outsider_gets_no_secret_string_on_any_surface(hr, server, keys, assistant, probe):
    assistant.ask(CACHED, kb="hr", principal=Principal.of("maria", "managers"))  # the manager's answer is cached
    questions = PROBES.get(probe) or [(CACHED, []), ("what is the salary band for senior managers", [])]
    found = []
    for surface, ask in surfaces(hr, server, keys).items():
        for question, history in questions:
            if surface == "cli" and history:
                continue  # kb ask has no history
            body = ask(question, history, "outsider")
            sent = [question] + [m["content"] for m in history]
            found += [(surface, question, s) for s in record(surface, probe, body, sent)]
    assert found == []


def test_sso_headers_from_an_address_that_is_not_a_trusted_proxy_are_ignored(assistant, keys):
    app = build_app(assistant, assistant.settings, mount_ui=False)
    with TestClient(app, client=("203.0.113.7", 40000)) as client:
        for question, _ in PROBES["direct"]:
            r = client.post("/api/ask", json={"question": question, "kb": "hr"},
                            headers={**keys["outsider"], **SSO_MANAGER})  # fmt: skip
            assert r.status_code == 200 and record("/api (untrusted SSO)", "spoofed SSO", r.json(), [question]) == []
    with TestClient(app, client=("127.0.0.1", 40000)) as client:  # from the proxy the same headers are believed
        r = client.post("/api/ask", json={"question": CACHED, "kb": "hr"}, headers={**keys["outsider"], **SSO_MANAGER})
        assert "91,400" in r.text


def test_a_kb_limited_to_a_group_is_offered_only_to_its_members(hr, server, keys, assistant):
    outsider_models = httpx.get(f"{server}/v1/models", headers=keys["outsider"]).json()
    assert [m["id"] for m in outsider_models["data"]] == ["hr"]
    assert record("/v1", "closed KB", outsider_models, []) == []
    sso_models = httpx.get(f"{server}/v1/models", headers={**keys["outsider"], "X-Forwarded-User": "bob",
                                                           "X-Forwarded-Groups": "board"}).json()  # fmt: skip
    assert [m["id"] for m in sso_models["data"]] == ["board", "hr"]
    board = Principal.of("bob", "board")
    assert assistant.knowledge_bases(board) == ["board", "hr"] and assistant.knowledge_bases(Principal()) == ["hr"]
    r = httpx.post(f"{server}/api/ask", json={"question": "What is the merger code name?", "kb": "board"},
                   headers=keys["outsider"])  # fmt: skip
    assert r.status_code == 404 and record("/api", "closed KB", r.json(), []) == []
    chat = ask_chat(server, "What is the merger code name?", [], SSO_OUTSIDER, kb="board")
    assert record("chat", "closed KB", chat, []) == [] and "no knowledge base named 'board'" in chat
    page = httpx.get(f"{server}/", headers=SSO_OUTSIDER).text
    assert "board" not in page.replace("Knowledge base", "")  # the page names only the KBs open to everyone
    member = ask_chat(
        server,
        "What is the merger code name?",
        [],
        {"X-Forwarded-User": "bob", "X-Forwarded-Groups": "board"},
        kb="board",
    )
    assert BOARD_SECRET in member


def test_a_group_taken_away_takes_effect_on_the_next_question(hr, server, keys):
    assert "91,400" in json.dumps(ask_api(server, CACHED, [], {**keys["outsider"], **SSO_MANAGER}))
    revoked = {**SSO_MANAGER, "X-Forwarded-Groups": "staff"}  # the directory dropped maria from managers
    assert record("/api (SSO)", "revoked", ask_api(server, CACHED, [], {**keys["outsider"], **revoked}), [CACHED]) == []
    assert record("chat", "revoked", ask_chat(server, CACHED, [], revoked), [CACHED]) == []


def test_the_conformance_matrix_has_no_leak():
    """Printed for the closing note (pytest -s); every cell must be 0."""
    assert MATRIX, "run with the tests above"
    surfaces_ = sorted({s for s, _ in MATRIX})
    probes = list(dict.fromkeys(p for _, p in MATRIX))
    width = max(len(p) for p in probes) + 2
    lines = ["surface".ljust(22) + "".join(p.ljust(width) for p in probes)]
    for s in surfaces_:
        cells = [f"{MATRIX[(s, p)][1]}/{MATRIX[(s, p)][0]}" if (s, p) in MATRIX else "-" for p in probes]
        lines.append(s.ljust(22) + "".join(c.ljust(width) for c in cells))
    print("\nconformance matrix (leaks found / responses checked)\n" + "\n".join(lines))
    assert sum(leaked for _, leaked in MATRIX.values()) == 0
