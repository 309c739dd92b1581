"""The compose "scale" profile's reverse proxy, run here: docker/nginx.conf in front of `kb serve` replicas on
127.0.0.1, with Debian's nginx (``apt-get install nginx-light``).

The container config is used as it is, but for what only a container network has: the replicas' service name
(``replica:7860``, re-resolved through Docker's DNS with ``resolve``, which nginx gained in 1.27.3) becomes the local
addresses, and the listen port, pid, logs and temp files move into a work dir.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

DOCKER_CONF = Path(__file__).resolve().parent.parent / "docker" / "nginx.conf"


class ProxyMissing(RuntimeError):
    """nginx is not installed here."""


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if not found:
        raise ProxyMissing("nginx not found: apt-get install -y nginx-light (the scale profile's reverse proxy)")
    return found


def local_conf(upstreams: list[str], port: int, work: Path, conf: str | None = None) -> str:
    """docker/nginx.conf for ``upstreams`` (host:port each) listening on 127.0.0.1:``port``."""
    text = DOCKER_CONF.read_text(encoding="utf-8") if conf is None else conf
    servers = "\n".join(f"    server {u};" for u in upstreams)
    text, n = re.subn(r"^\s*server replica:7860 resolve;$", servers, text, flags=re.M)
    if n == 0:
        raise ValueError(f"{DOCKER_CONF}: no 'server replica:7860 resolve;' line to point at the local replicas")
    text = re.sub(r"^\s*resolver .*;$", "", text, flags=re.M)  # Docker's DNS: not here
    text = re.sub(r"listen 8080;", f"listen 127.0.0.1:{port};", text)
    local = f"pid {work}/nginx.pid;\nerror_log {work}/error.log warn;\n"
    temps = "".join(
        f"  {name}_temp_path {work}/{name};\n" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", f"http {{\n  access_log off;\n{temps}", 1)
    return local + text


@contextlib.contextmanager
def nginx_proxy(upstreams: list[str], port: int, work: Path) -> Iterator[str]:
    """nginx in front of ``upstreams`` on 127.0.0.1:``port``; yields its base URL, stops it on exit."""
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(local_conf(upstreams, port, work), encoding="utf-8")
    nginx = nginx_binary()
    check = subprocess.run([nginx, "-t", "-p", str(work), "-c", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx refused {conf}: {check.stderr.strip()}")
    proc = subprocess.Popen(
        [nginx, "-p", str(work), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {(work / 'error.log').read_text()[-500:]}") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()  # nginx's fast shutdown; its workers go with it
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
