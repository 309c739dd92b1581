"""The published KB state lives in the database: every process (a replica with a data dir of its own) serves the
version the ingest published, materialising its keyword index locally; a data dir of an earlier release, or one
used before KB_DATABASE_URL was set, is adopted with nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb_assistant.language import TOKENIZER_VERSION, tokenize
from kb_assistant.settings import Settings
from kb_assistant.store import KnowledgeBase
from kb_assistant.store.keyword import BM25Search
from kb_assistant.store.published import MIGRATIONS, Base, PublishedStore

PARKING = {"park-1": tokenize("Visitors park free for three hours in garage B2")}
LUNCH = {"lunch-1": tokenize("The canteen serves lunch from noon on floor 3")}
ARCHIVE = {"arch-1": tokenize("The paper archive is in basement room K7")}


def kb(data_dir: Path, url: str | None = None, name: str = "hr") -> KnowledgeBase:
    """One process's view of the KB (no embedding model: only the keyword side is used here)."""
    return KnowledgeBase(Settings(data_dir=data_dir, database_url=url), name, None)


def keyword_hits(index: KnowledgeBase, query: str) -> list[str]:
    return [cid for cid, _ in index.keyword.search(query, 5)]


def write_old_release_kb(directory: Path, version: int, tokens: dict[str, list[str]], *, with_tokens=True) -> None:
    """What the release before this one left in <data>/kb/<name>: state.json and its version folder."""
    folder = directory / f"keyword-v{version}"
    folder.mkdir(parents=True)
    ids = sorted(tokens)
    BM25Search.build(folder, ids, tokens)
    if with_tokens:
        (folder / "tokens.json").write_text(json.dumps(tokens), encoding="utf-8")
        (folder / "tokenizer.txt").write_text(TOKENIZER_VERSION, encoding="utf-8")
    (folder / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
    state = {"version": version, "keyword": folder.name, "chunks": len(ids), "published_at": 1.0}
    (directory / "state.json").write_text(json.dumps(state), encoding="utf-8")


@pytest.mark.unit
def test_a_new_published_store_is_built_by_its_migrations_exactly_as_its_models_say(tmp_path):
    store = PublishedStore(Settings(data_dir=tmp_path / "d"))
    assert store.url.endswith("/d/published.sqlite")
    assert MIGRATIONS.drift(store.engine, Base.metadata) == []
    assert MIGRATIONS.current(store.engine) == MIGRATIONS.head() == "publication_0001"


@pytest.mark.unit
def test_a_publish_is_one_version_with_exactly_its_chunks_and_a_second_process_serves_it(tmp_path):
    writer, reader = kb(tmp_path / "d"), kb(tmp_path / "d")
    writer.publish(1, {**PARKING, **LUNCH})
    assert reader.version == 1 and reader.live_ids() == {"park-1", "lunch-1"}
    assert keyword_hits(reader, "where do visitors park") == ["park-1"]

    writer.publish(2, {**PARKING, **ARCHIVE})  # lunch removed, archive added
    assert reader.version == 2 and reader.live_ids() == {"park-1", "arch-1"}
    assert keyword_hits(reader, "paper archive room") == ["arch-1"]
    assert reader.state()["chunks"] == 2 and reader.published_tokens() == {**PARKING, **ARCHIVE}
    folders = sorted(p.name for p in (tmp_path / "d" / "kb" / "hr").iterdir())
    assert len(folders) == 2 and all(f.startswith(("keyword-v1-", "keyword-v2-")) for f in folders)


@pytest.mark.unit
def test_a_chunk_removed_and_published_again_is_live_again(tmp_path):
    index = kb(tmp_path / "d")
    index.publish(1, {**PARKING, **LUNCH})
    index.publish(2, PARKING)
    index.publish(3, {**PARKING, **LUNCH})  # the edit was reverted: the same content-addressed id comes back
    again = kb(tmp_path / "d")
    assert again.version == 3 and again.live_ids() == {"park-1", "lunch-1"}
    assert keyword_hits(again, "canteen lunch") == ["lunch-1"]


def test_replicas_with_their_own_data_dirs_serve_what_one_of_them_published_on_postgres(tmp_path, pg_url):
    a, b = kb(tmp_path / "replica-a", pg_url), kb(tmp_path / "replica-b", pg_url)
    assert b.version == 0 and keyword_hits(b, "visitors park") == []
    a.publish(1, {**PARKING, **LUNCH})
    assert b.version == 1 and keyword_hits(b, "where do visitors park") == ["park-1"]
    assert any((tmp_path / "replica-b" / "kb" / "hr").glob("keyword-v1-*/ids.json"))  # b built its own index

    a.publish(2, {**LUNCH, **ARCHIVE})
    b.refresh(force=True)  # what each question does
    assert b.live_ids() == {"lunch-1", "arch-1"} and keyword_hits(b, "visitors park") == []
    assert keyword_hits(b, "paper archive") == ["arch-1"]
    assert not (tmp_path / "replica-b" / "published.sqlite").exists()  # nothing of it lives on the replica's disk


@pytest.mark.unit
def test_between_questions_a_process_checks_for_a_newer_version_at_most_every_version_check_s(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", version_check_s=3600)
    reader = KnowledgeBase(settings, "hr", None)
    kb(tmp_path / "d").publish(1, PARKING)
    assert reader.live_ids() == {"park-1"}
    another_process = PublishedStore(settings)  # a publish that did not go through this process
    another_process.write("hr", 2, {**PARKING, **LUNCH}, "b" * 32, {"version": 2, "published_at": 2.0})
    assert reader.live_ids() == {"park-1"}  # within the interval: the version it has, no database read
    reader.refresh(force=True)  # a question's check
    assert reader.live_ids() == {"park-1", "lunch-1"}
    assert keyword_hits(reader, "canteen lunch") == ["lunch-1"]  # its index built from the published tokens


@pytest.mark.unit
def test_a_publish_by_this_process_is_seen_at_once_by_its_other_readers(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", version_check_s=3600)
    reader, ingest = KnowledgeBase(settings, "hr", None), KnowledgeBase(settings, "hr", None)
    ingest.publish(1, PARKING)
    assert reader.live_ids() == {"park-1"}
    ingest.publish(2, {**PARKING, **LUNCH})  # e.g. a server running a handed-off ingest itself
    assert reader.live_ids() == {"park-1", "lunch-1"}


@pytest.mark.unit
def test_a_data_dir_of_the_release_before_is_adopted_with_its_version_and_chunks(tmp_path):
    data = tmp_path / "d"
    write_old_release_kb(data / "kb" / "hr", 7, {**PARKING, **LUNCH})
    before = {p: p.read_bytes() for p in (data / "kb" / "hr").rglob("*") if p.is_file()}

    index = kb(data)
    assert index.version == 7 and index.live_ids() == {"park-1", "lunch-1"}
    assert index.published_tokens() == {**PARKING, **LUNCH}
    assert keyword_hits(index, "canteen lunch") == ["lunch-1"]
    assert all(p.read_bytes() == content for p, content in before.items())  # the old files are left as they were
    index.publish(8, {**PARKING, **LUNCH, **ARCHIVE})  # and the next ingest goes on from its version
    assert kb(data).version == 8


@pytest.mark.unit
def test_an_old_data_dir_without_kept_tokens_is_adopted_with_tokens_made_from_its_chunks(tmp_path):
    from kb_assistant.store.publication import Publication

    data = tmp_path / "d"
    write_old_release_kb(data / "kb" / "hr", 3, {**PARKING, **LUNCH}, with_tokens=False)
    asked = []

    def tokens_for(ids):  # what KnowledgeBase does: tokenize the stored chunks' text
        asked.extend(ids)
        return {**PARKING, **LUNCH}

    pub = Publication(Settings(data_dir=data), "hr", build_index=BM25Search.build, tokens_for=tokens_for)
    pub.refresh()
    assert pub.version == 3 and sorted(asked) == ["lunch-1", "park-1"]
    assert pub.tokens() == {**PARKING, **LUNCH}


def test_a_data_dir_used_before_kb_database_url_was_set_is_adopted_into_postgres(tmp_path, pg_url):
    from ingest.ledger import DocumentChange, Ledger, commit_version

    data = tmp_path / "d"
    local = Ledger(Settings(data_dir=data))  # the data dir as it was: SQLite files
    run_id, _ = local.start_run("hr")
    change = DocumentChange("/docs", "parking.md", 10, 1, "ab" * 32, "done", ["park-1"], "cfg")
    commit_version(local, "hr", run_id, [change], ["park-1"], [], 1)
    local.finish_run(run_id, {"added": 1})
    kb(data).publish(1, PARKING)

    ledger = Ledger(Settings(data_dir=data, database_url=pg_url))
    assert ledger.url == pg_url and [d.path for d in ledger.documents("hr")] == ["parking.md"]
    assert ledger.latest_version("hr") == 1 and [r.status for r in ledger.runs("hr")] == ["finished"]
    new_run, _ = ledger.start_run("hr")
    assert new_run == run_id + 1  # the adopted runs' ids are not handed out again
    replica = kb(tmp_path / "replica", pg_url)  # a fresh data dir has nothing to adopt
    assert replica.version == 0
    assert kb(data, pg_url).version == 1  # the old data dir, opened on Postgres, brings its version in
    assert replica.version == 1 and replica.live_ids() == {"park-1"}
    assert (data / "ingest.sqlite").exists() and (data / "published.sqlite").exists()  # nothing deleted


@pytest.mark.unit
def test_an_interrupted_publish_leaves_the_version_before_it_served(tmp_path, monkeypatch):
    index = kb(tmp_path / "d")
    index.publish(1, PARKING)

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # killed after building its index folder, before the database committed

    monkeypatch.setattr(PublishedStore, "write", dies)
    with pytest.raises(KeyboardInterrupt):
        index.publish(2, {**PARKING, **LUNCH})
    monkeypatch.undo()
    other = kb(tmp_path / "d")
    assert other.version == 1 and other.live_ids() == {"park-1"}
    # the half-built version 2 folder is scratch: the next publish of 2 builds its own
    index.publish(2, {**PARKING, **ARCHIVE})
    assert kb(tmp_path / "d").live_ids() == {"park-1", "arch-1"}


@pytest.mark.unit
def test_the_access_groups_of_a_version_reach_a_process_with_a_data_dir_of_its_own(tmp_path):
    from kb_assistant import db
    from kb_assistant.store.publication import Publication

    url = db.sqlite_url(tmp_path / "shared.db")  # one database, as replicas share Postgres

    def process(name: str) -> Publication:
        settings = Settings(data_dir=tmp_path / name, database_url=url)
        return Publication(settings, "hr", build_index=BM25Search.build)

    writer, reader = process("ingest-host"), process("replica")
    writer.publish(1, {**PARKING, **LUNCH}, {"lunch-1": ["staff"]})
    reader.refresh()
    assert reader.visibility() == {"lunch-1": frozenset({"staff"})}
    assert reader.snapshot().live == {"park-1", "lunch-1"}
    writer.publish(2, {**PARKING, **LUNCH}, {"park-1": ["visitors", "staff"]})  # only the groups changed
    reader.refresh(force=True)
    assert reader.visibility() == {"park-1": frozenset({"visitors", "staff"})}
    assert reader.version == 2 and reader.snapshot().sorted_ids == ["lunch-1", "park-1"]
