"""The `kb` command, run as a user would (a real subprocess where start-up cost matters)."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from kb_assistant.cli import app


def test_kb_help_lists_the_commands_without_loading_heavy_libraries():
    code = (
        "import sys; from typer.testing import CliRunner; from kb_assistant.cli import app; "
        "r = CliRunner().invoke(app, ['--help']); print(r.output); "
        "print('HEAVY', sorted(m for m in ('torch', 'chromadb', 'gradio', 'unstructured', 'sentence_transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for command in ("ingest", "ask", "serve"):
        assert command in out
    assert "HEAVY []" in out


def test_kb_ask_json_prints_the_answer_model(sample_data_dir, monkeypatch):
    monkeypatch.setenv("KB_DATA_DIR", str(sample_data_dir))
    result = CliRunner().invoke(app, ["ask", "How many days of sick leave do I get?", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["answered"] is True and answer["citations"][0]["source"] == "leave-policy.md"


def test_kb_ask_on_an_empty_data_dir_ingests_the_sample_kb_first_and_says_so(tmp_path, monkeypatch, embeddings):
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "fresh"))
    result = CliRunner().invoke(app, ["ask", "公司几点上班？"])
    assert result.exit_code == 0, result.output
    assert "ingesting the bundled sample KB 'default'" in result.stderr
    assert "10:00" in result.stdout and "员工手册-考勤与工时.md" in result.stdout


def test_kb_ingest_a_missing_path_fails_with_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "d"))
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "nope" in result.output and "no such file or folder" in result.output
