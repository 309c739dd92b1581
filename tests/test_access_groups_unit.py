"""Access groups, the parts that need no model: group names, principals, which SSO headers are believed, which
``.kb-groups`` file governs a document, and the visibility a ledger's sources and sidecars give each chunk."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kb_assistant.schema import Principal, parse_groups

pytestmark = pytest.mark.unit


def test_group_names_are_parsed_from_commas_and_spaces_and_a_bad_name_is_named():
    assert parse_groups("managers, hr-team  finance.emea") == {"managers", "hr-team", "finance.emea"}
    assert parse_groups(None) == frozenset() and parse_groups(" , ") == frozenset()
    with pytest.raises(ValueError, match="'CN=x'"):
        parse_groups("managers,CN=x", what="--groups")


def test_a_principal_sees_unrestricted_things_and_those_of_its_groups():
    nobody, manager = Principal(), Principal.of("maria", "managers,staff")
    assert nobody.may_see([]) and not nobody.may_see(["managers"])
    assert manager.may_see(["managers", "board"]) and not manager.may_see(["board"])
    assert manager.scope == "managers,staff" and nobody.scope == ""


def test_sso_headers_are_believed_only_from_a_trusted_proxy_and_bad_group_names_are_left_out():
    from kb_assistant.settings import Settings
    from ui.principal import principal_for

    settings = Settings(sso_trusted_proxies="10.0.0.0/24, 127.0.0.1")
    headers = {"X-Forwarded-User": "maria", "X-Forwarded-Groups": "managers,CN=Admins OU=x,staff"}
    assert principal_for(settings, headers, "10.0.0.9") == Principal("maria", frozenset({"managers", "staff"}))
    assert principal_for(settings, headers, "10.0.1.9") == Principal()  # not the proxy: the headers mean nothing
    assert principal_for(settings, headers, None) == Principal()
    key = SimpleNamespace(id="k1", groups=["managers"])
    assert principal_for(settings, headers, "192.0.2.1", key) == Principal("k1", frozenset({"managers"}))
    assert principal_for(settings, {}, "10.0.0.9", None, "u7") == Principal("u7")  # a name for the log, no group
    assert principal_for(Settings(), headers, "127.0.0.1") == Principal()  # no proxy configured: none trusted


def test_bad_trusted_proxy_settings_are_refused_naming_the_value():
    from kb_assistant.settings import Settings

    with pytest.raises(ValueError, match="'proxy.example'"):
        Settings(sso_trusted_proxies="proxy.example")


def test_the_nearest_kb_groups_file_governs_a_document_else_the_sources_groups(tmp_path):
    from ingest.visibility import BadGroupsFile, GroupResolver

    (tmp_path / "managers" / "reviews").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "managers" / ".kb-groups").write_text("# who may read this folder\nmanagers, hr-team\n")
    (tmp_path / "managers" / "reviews" / ".kb-groups").write_text("managers\n")
    (tmp_path / "empty" / ".kb-groups").write_text("# nobody named\n")
    root = str(tmp_path)
    resolver = GroupResolver({root: frozenset({"staff"})})
    assert resolver.groups(root, "handbook.md") == {"staff"}
    assert resolver.groups(root, "managers/guide.md") == {"managers", "hr-team"}
    assert resolver.groups(root, "managers/reviews/2026.md") == {"managers"}
    with pytest.raises(BadGroupsFile, match="names no group"):
        resolver.groups(root, "empty/x.md")
    assert GroupResolver({}).groups(root, "handbook.md") == frozenset()


def test_a_chunk_is_limited_to_the_union_of_its_documents_groups_unless_an_unrestricted_document_holds_it(tmp_path):
    from ingest.visibility import visibility

    root = str(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / ".kb-groups").write_text("CN=Admins\n")
    docs = [
        SimpleNamespace(root=root, path="a.md", status="done", chunk_ids=["shared", "a"]),
        SimpleNamespace(root="/elsewhere/b.md", path="b.md", status="done", chunk_ids=["shared", "b"]),
        SimpleNamespace(root=root, path="bad/c.md", status="done", chunk_ids=["c"]),
        SimpleNamespace(root=root, path="gone.md", status="failed", chunk_ids=["g"]),
    ]
    ledger = SimpleNamespace(
        sources=lambda kb: [
            SimpleNamespace(root=root, groups=["managers"]),
            SimpleNamespace(root="/elsewhere/b.md", groups=None),
        ],
        documents=lambda kb: docs,
    )
    limited, errors = visibility(ledger, "hr")
    assert limited == {"a": ["managers"], "c": ["-"]}  # "shared" is in b.md, which everyone sees
    assert list(errors) == [(root, "bad/c.md")] and "CN=Admins" in errors[(root, "bad/c.md")]
