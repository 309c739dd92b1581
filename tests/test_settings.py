from __future__ import annotations

import pytest

from kb_assistant.settings import Settings, SettingsError, check_kb_name, load_settings

pytestmark = pytest.mark.unit


def test_defaults_work_on_one_machine_with_no_network():
    s = Settings()
    assert str(s.data_dir) == "data"
    assert s.chroma_url is None and s.llm_base_url is None and not s.llm_enabled


def test_environment_variables_switch_to_real_servers(monkeypatch, tmp_path):
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KB_CHROMA_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("KB_LLM_BASE_URL", "http://127.0.0.1:9000/v1")
    monkeypatch.setenv("KB_LLM_MODEL", "qwen2.5")
    s = load_settings()
    assert s.data_dir == tmp_path and s.chroma_url == "http://127.0.0.1:8000"
    assert s.llm_enabled and s.llm_model == "qwen2.5"


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("KB_TOP_K=7\n", encoding="utf-8")
    assert load_settings().top_k == 7


def test_a_bad_setting_names_its_environment_variable(monkeypatch):
    monkeypatch.setenv("KB_LLM_BASE_URL", "localhost:9000")
    monkeypatch.setenv("KB_CONFIDENCE_THRESHOLD", "1.5")
    monkeypatch.setenv("KB_EMBEDDING_DEVICE", "gpu0")
    with pytest.raises(SettingsError) as err:
        load_settings()
    for name in ("KB_LLM_BASE_URL", "KB_CONFIDENCE_THRESHOLD", "KB_EMBEDDING_DEVICE"):
        assert name in str(err.value)


@pytest.mark.parametrize("bad", ["", "-x", "has space", "a" * 70, "中文"])
def test_knowledge_base_names_are_checked(bad):
    with pytest.raises(SettingsError, match="invalid knowledge-base name"):
        check_kb_name(bad)
