"""Start GPU hosts and the proxy as real processes on free loopback ports (shared by the bench scripts)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SECRET = "bench-secret"

from app.gpu_signing import sign  # noqa: E402

PG_ADMIN_DSN = os.environ.get("ATELIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def throwaway_database():
    """A fresh PostgreSQL database migrated to head, dropped afterwards; yields its URL."""
    import psycopg2

    from app.services import migrations

    name = f"atelier_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG_ADMIN_DSN)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_DSN.rpartition('/')[0]}/{name}"
    try:
        migrations.upgrade(url)
        yield url
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def free_port() -> int:
    """A free loopback port picked by the OS."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn running `target` with ATELIER_* settings; stop() ends it."""

    def __init__(self, target: str, threads: int = 32, **settings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tmp = tempfile.mkdtemp(prefix="atelier-bench-")
        config = os.path.join(tmp, "config.json")
        with open(config, "w", encoding="utf-8") as handle:
            json.dump({}, handle)
        env = {**os.environ, "ATELIER_CONFIG": config, "ATELIER_ENVIRONMENT": "testing", "ATELIER_LOG_JSON": "false",
               "ATELIER_GPU_SHARED_SECRET": SECRET, "ATELIER_INSTANCE_DIR": tmp, "HF_HUB_OFFLINE": "1"}
        for key, value in settings.items():
            env[f"ATELIER_{key.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
        self.log_path = os.path.join(tmp, "server.log")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--threads", str(threads), "--workers", "1",
             "--bind", f"127.0.0.1:{self.port}", "--timeout", "300", target],
            cwd=ROOT, env=env, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, path: str = "/readyz", timeout: float = 180) -> "Server":
        """Block until `path` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(open(self.log_path).read()[-3000:])

    def stop(self) -> None:
        """End the server and its worker."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)


def signed_post(session: requests.Session, base: str, path: str, payload: dict) -> requests.Response:
    """POST a signed JSON body."""
    body = json.dumps(payload).encode()
    headers = {**sign(SECRET, "POST", path, body), "Content-Type": "application/json"}
    response = session.post(base + path, data=body, headers=headers, timeout=600)
    response.raise_for_status()
    return response


def signed_get(session: requests.Session, base: str, path: str) -> requests.Response:
    """GET with a signature."""
    response = session.get(base + path, headers=sign(SECRET, "GET", path), timeout=60)
    response.raise_for_status()
    return response
