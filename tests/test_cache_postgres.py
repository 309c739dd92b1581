"""The semantic cache on a real Postgres (``KB_DATABASE_URL``): replicas share the entries, so what one replica
stores another serves, and a 👎 on one drops the entry for all. Each test works in a schema of its own (tests/
engines.py starts the throw-away cluster)."""

from __future__ import annotations

import pytest
from test_cache import write_kb


@pytest.fixture
def replicas(tmp_path, pg_url, embeddings):
    """Two assistants over one Postgres database, as two replicas behind a load balancer: each has its own cache
    object (its own in-memory similarity index); the KB is published once, in the shared database."""
    from ingest.pipeline import ingest_paths
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    assert ingest_paths(settings, [write_kb(tmp_path / "docs")], "default").ok
    return [Assistant(settings.model_copy(), embeddings=embeddings) for _ in range(2)]


def test_the_cache_lives_in_postgres_and_its_schema_is_what_the_migrations_build(replicas):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    a, _ = replicas
    store = a.cache.db
    assert store.engine.dialect.name == "postgresql"
    ours = {  # the queue's tables share the database
        "version_table": "cache_alembic_version",
        "include_name": lambda name, kind, _parent: kind != "table" or name in store.metadata.tables,
    }
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts=ours), store.metadata) == []
    assert not (a.settings.data_dir / "cache.sqlite3").exists()


def test_what_one_replica_caches_another_serves_and_a_thumbs_down_on_one_drops_it_for_all(replicas):
    a, b = replicas
    question = "How many days of paid sick leave do I get per year?"
    first = a.ask(question)
    assert first.answered and not first.cached and "12" in first.text
    served = b.ask(question)
    assert served.cached and served.text == first.text
    assert [e.question for e in b.cache.entries("default")] == [question]
    assert served.id in a.cache.entries("default")[0].served  # who got it, seen from either replica

    b.feedback(served.id, "down", "wrong")
    assert a.cache.entries("default") == []
    again = a.ask(question)
    assert not again.cached, "the entry a 👎 dropped on replica b is gone on replica a too"
    assert not b.ask(question).cached, "and the same answer is not stored again until its sources change"
    stats = a.cache.stats("default")
    assert (stats.exact_hits, stats.evicted_feedback) == (1, 1)


def test_a_replica_sees_entries_another_stored_after_its_similarity_index_was_built(replicas):
    a, b = replicas
    b.ask("What are the office hours?")  # b builds its in-memory index of the cached questions (wording keys)
    first = a.ask("How many days of paid sick leave do I get per year?")
    assert first.answered and not first.cached
    reworded = b.ask("How many days of paid sick leave can I get per year?")
    assert reworded.cached, "b reloaded its index: a's entry is served"
