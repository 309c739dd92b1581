"""The layers hold: the core never imports the apps (only kb_assistant.cli, lazily), and a violation fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit  # lint-imports reads the source: no app import, no model

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_are_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_core_module_importing_ingest_breaks_the_contract(tmp_path):
    for name in ("kb_assistant", "ingest", "ui", "eval"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "sample_kb"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "kb_assistant" / "retrieval.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _violation():\n    from ingest.pipeline import sync_sources  # noqa: F401\n")
    result = subprocess.run(
        [LINT, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode != 0, result.stdout
    assert "kb_assistant.retrieval -> ingest.pipeline" in result.stdout
