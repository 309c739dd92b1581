"""The layers hold: the core never imports the apps (only kb_assistant.cli, lazily), no two sibling modules import
each other, and a violation of either fails."""

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
    assert "3 kept, 0 broken" in result.stdout


def _lint_copy_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess:
    """lint-imports on a copy of the tree where ``module`` (a path under the root) also holds ``line``."""
    for name in ("kb_assistant", "ingest", "ui", "eval"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "sample_kb"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / module, "a", encoding="utf-8") as f:
        f.write(f"\n\ndef _violation():\n    {line}  # noqa: F401\n")
    return subprocess.run(
        [LINT, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip


def test_a_core_module_importing_ingest_breaks_the_contract(tmp_path):
    result = _lint_copy_with(tmp_path, "kb_assistant/retrieval.py", "from ingest.pipeline import sync_sources")
    assert result.returncode != 0, result.stdout
    assert "kb_assistant.retrieval -> ingest.pipeline" in result.stdout


def test_two_sibling_modules_importing_each_other_break_the_contract(tmp_path):
    result = _lint_copy_with(tmp_path, "kb_assistant/schema.py", "from kb_assistant.assistant import Assistant")
    assert result.returncode != 0, result.stdout
    assert "No cycles are allowed in kb_assistant" in result.stdout
