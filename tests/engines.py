"""Real engines for tests, started by the test run itself: a PostgreSQL cluster from Debian's postgresql server
binaries, initialised into a temporary directory, and a Chroma server (`chroma run`), both on 127.0.0.1 only.

``KB_TEST_POSTGRES_URL`` points the tests at a server you run instead. Without either, the Postgres tests are
skipped on a developer's machine and fail under CI (``CI=true``): a test that skips because an engine is missing
does not count there.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class EngineMissing(RuntimeError):
    """The engine's binaries are not on this machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bindir() -> Path:
    """The directory holding initdb and pg_ctl: Debian's /usr/lib/postgresql/<major>/bin (newest), else PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise EngineMissing(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql-15, "
        "or set KB_TEST_POSTGRES_URL to a server of yours"
    )


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster; yields its SQLAlchemy URL (database ``kbtest``, user ``kb``).

    As root the server refuses to start, so the cluster then belongs to the ``postgres`` user."""
    bindir = postgres_bindir()
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="kb-test-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": True}
    try:
        subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "kb"], **quiet)
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
            **quiet,
        )
        try:
            subprocess.run(
                [*run_as, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "kb", "kbtest"], **quiet
            )
            yield f"postgresql+psycopg://kb@127.0.0.1:{port}/kbtest"
        finally:
            subprocess.run(
                [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def chroma_server(path: Path) -> Iterator[str]:
    """A real `chroma run` storing into ``path``; yields its URL (for ``KB_CHROMA_URL``)."""
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"chroma run exited with {proc.returncode}") from None
                time.sleep(0.2)
        else:
            raise RuntimeError("chroma server did not start within 30 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
