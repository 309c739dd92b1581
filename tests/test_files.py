"""Replacing a file others read: the old content or the new, never half, and nothing left behind on failure."""

from __future__ import annotations

import os
import stat

import pytest

from kb_assistant.files import write_atomic

pytestmark = pytest.mark.unit


def test_a_file_is_replaced_whole_with_the_mode_asked_for(tmp_path):
    path = tmp_path / "deep" / "state.json"
    write_atomic(path, '{"version": 1}')
    assert path.read_text() == '{"version": 1}' and stat.S_IMODE(path.stat().st_mode) == 0o644
    write_atomic(path, "密钥".encode(), mode=0o600)
    assert path.read_text(encoding="utf-8") == "密钥" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["state.json"]


def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "apikeys.json"
    write_atomic(path, "old")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, "new")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["apikeys.json"]
