"""Shared fixtures: every test gets a temporary data dir; the real model and real Chroma are loaded once.

Network beyond 127.0.0.1 is blocked for the whole run: a test that tries to reach a model hub fails loudly.
Tests marked ``unit`` (``pytest -m unit``, ``make test-unit``) run in seconds: no embedding model, no Chroma, no
server, no browser, no Postgres. A unit test that asks for one of ``HEAVY_FIXTURES``, or imports
sentence-transformers or Chroma while it runs, fails; ``fake_embeddings`` stands in for the model.
"""

from __future__ import annotations

import os
import socket
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")
for var in [v for v in os.environ if v.startswith("KB_") and not v.startswith("KB_TEST_")]:  # no leaks from a shell
    del os.environ[var]


@pytest.fixture(autouse=True, scope="session")
def _block_outbound_network():
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        inet = sock.family in (socket.AF_INET, socket.AF_INET6)
        if inet and isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")):
            raise ConnectionRefusedError(f"test tried to reach {address}: only 127.0.0.1 is allowed")
        return real_connect(sock, address)

    socket.socket.connect = guarded
    yield
    socket.socket.connect = real_connect


# --- the unit tier ----------------------------------------------------------------------------------------------
HEAVY_FIXTURES = frozenset(
    ["embeddings", "sample_data_dir", "sample_assistant", "postgres_url", "chroma_url", "browser", "live_server"]
)
HEAVY_MODULES = ("sentence_transformers", "chromadb")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A unit test may not ask for the model, Chroma, a server, a browser or Postgres: it fails before any of them
    is set up."""
    if item.get_closest_marker("unit") is not None:
        heavy = sorted(HEAVY_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        if heavy:
            pytest.fail(f"a unit test may not use the fixtures {', '.join(heavy)}: drop the unit mark or use fakes")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A unit test that imports sentence-transformers or Chroma (a model load, a vector store) fails."""
    unit = item.get_closest_marker("unit") is not None
    before = {m for m in HEAVY_MODULES if m in sys.modules}
    result = yield
    loaded = sorted(m for m in HEAVY_MODULES if m in sys.modules and m not in before)
    if unit and loaded:
        pytest.fail(f"a unit test imported {', '.join(loaded)}: drop the unit mark or use fakes")
    return result


@pytest.fixture
def fake_embeddings():
    """A deterministic stand-in for the model (384 dimensions, like MiniLM): the same text always gets the same
    vector, different texts unrelated ones. Nothing is loaded."""
    from langchain_core.embeddings import DeterministicFakeEmbedding

    return DeterministicFakeEmbedding(size=384)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from kb_assistant.settings import Settings

    monkeypatch.chdir(tmp_path)  # no stray ./data or .env from the developer's folder
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def embeddings():
    from kb_assistant.embeddings import make_embeddings
    from kb_assistant.settings import Settings

    return make_embeddings(Settings())


@pytest.fixture(scope="session")
def sample_data_dir(tmp_path_factory, embeddings):
    """The bundled sample KBs, ingested once for the session into their own data dir."""
    from ingest.pipeline import ensure_sample_kbs
    from kb_assistant.settings import Settings

    data_dir = tmp_path_factory.mktemp("sample") / "data"
    reports = ensure_sample_kbs(Settings(data_dir=data_dir), say=lambda m: None)
    assert {r.kb for r in reports} == {"default", "sales"}
    assert all(r.ok for r in reports), [r.failed for r in reports]
    return data_dir


@pytest.fixture(scope="session")
def sample_assistant(sample_data_dir, embeddings):
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings

    # Shared by many tests: the semantic cache would serve one test's answer to the next (tests/test_cache.py
    # tests it on KBs of its own).
    return Assistant(Settings(data_dir=sample_data_dir, cache_enabled=False), embeddings=embeddings)


# --- real engines ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL for the whole run: KB_TEST_POSTGRES_URL if set, else a throw-away cluster started here
    (tests/engines.py). Missing binaries skip the test on a developer's machine and fail it under CI."""
    from engines import EngineMissing, postgres_server

    if os.environ.get("KB_TEST_POSTGRES_URL"):
        yield os.environ["KB_TEST_POSTGRES_URL"]
        return
    try:
        server = postgres_server()
        url = server.__enter__()
    except EngineMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Postgres tests: {exc}")
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def pg_url(postgres_url):
    """A schema of this test's own on the run's Postgres (as the search path of the URL), dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine

    from kb_assistant import db

    schema = "kbtest_" + uuid.uuid4().hex[:8]
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    yield url
    db.dispose(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture
def chroma_url(tmp_path):
    """A real Chroma server (`chroma run`) for this test, storing under its tmp_path: its URL, for KB_CHROMA_URL."""
    from engines import chroma_server

    with chroma_server(tmp_path / "chroma-server") as url:
        yield url


# --- a real browser ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium through Playwright (which cannot download a browser here)."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: run `apt-get install -y chromium` (browser tests need it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        yield browser
        browser.close()


# --- serving -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live_server():
    """Runs apps with uvicorn on 127.0.0.1 (a free port) in a background thread: ``base_url = live_server(app)``.
    Servers stop at the end of the module."""
    from contextlib import ExitStack

    from ui.server import running

    with ExitStack() as stack:
        yield lambda app: stack.enter_context(running(app))
