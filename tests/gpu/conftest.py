"""Real processes on loopback: GPU-role hosts (gunicorn wsgi:app, role gpu, the tiny model) and proxy.py.

Started once per test session; torch start-up is slow.
"""
from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time

import psycopg2
import pytest
import requests

from app.gpu_signing import sign

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "test-gpu-secret"


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A server process on a loopback port, with its log file."""

    def __init__(self, name: str, target: str, env: dict[str, str], log_dir, threads: int = 16):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(str(log_dir), f"{name}.log")
        command = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--threads", str(threads),
                   "--workers", "1", "--bind", f"127.0.0.1:{self.port}", "--timeout", "120",
                   "--graceful-timeout", "2", target]
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env}
        self.log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def wait_ready(self, path: str, timeout: float = 180) -> None:
        """Poll until `path` answers 200, or fail with the process's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                break
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not become ready:\n{open(self.log_path).read()[-4000:]}")

    def kill(self) -> None:
        """Kill gunicorn's master and worker at once, like a machine that dies (no graceful shutdown)."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        """Stop politely, then for sure."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self.log.close()


def base_env(tmp_dir, **settings) -> dict[str, str]:
    """ATELIER_* variables for a test process, isolated from any config.json in the checkout."""
    config = os.path.join(str(tmp_dir), "config.json")
    with open(config, "w", encoding="utf-8") as handle:
        json.dump({}, handle)
    env = {"ATELIER_CONFIG": config, "ATELIER_ENVIRONMENT": "testing", "ATELIER_LOG_JSON": "false",
           "ATELIER_GPU_SHARED_SECRET": SECRET, "ATELIER_INSTANCE_DIR": os.path.join(str(tmp_dir), "instance"),
           # Cron scripts lock under here, so parallel test runs never see each other's locks.
           "ATELIER_LOCK_DIR": str(tmp_dir)}
    for key, value in settings.items():
        env[f"ATELIER_{key.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
    return env


def start_gpu_host(name: str, tmp_factory, **settings) -> Process:
    """Start a GPU-role host (gunicorn wsgi:app) serving the tiny model unless told otherwise."""
    tmp = tmp_factory.mktemp(name)
    defaults = {"server_type": "gpu", "gpu_models": ["tiny"], "gpu_preload_models": ["tiny"],
                "gpu_batch_wait_ms": 100}
    return Process(name, "wsgi:app", base_env(tmp, **{**defaults, **settings}), tmp)


class Signed:
    """Sends signed JSON requests to a base URL (a host or the proxy)."""

    def __init__(self, base_url: str, secret: str = SECRET):
        self.base_url = base_url
        self.secret = secret
        self.session = requests.Session()

    def post(self, path: str, payload: dict, timeout: float = 180) -> requests.Response:
        body = json.dumps(payload).encode()
        headers = {**sign(self.secret, "POST", path, body), "Content-Type": "application/json"}
        return self.session.post(self.base_url + path, data=body, headers=headers, timeout=timeout)

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base_url + path, headers=sign(self.secret, "GET", path), timeout=30)

    def health(self) -> dict:
        return self.get("/gpu/v1/health").json()


def decode_png(data: str):
    """A base64 PNG as a numpy array of 8-bit channels."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")).astype("int16")


def png_base64(width: int, height: int, mode: str = "RGB", color=128) -> str:
    """A plain image as base64 PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="session")
def proxy_database_url():
    """A PostgreSQL database of the proxy's own: other tests empty the shared one between tests."""
    from tests.conftest import private_database

    with private_database("atelier_proxy") as url:
        yield url


@pytest.fixture(scope="session")
def pool(tmp_path_factory, proxy_database_url):
    """Three GPU hosts with tiny (two from config, one from the api_hosts table), a busy host that answers
    503 to every generation (queue limit 0), and proxy.py in front of them."""
    hosts = {name: start_gpu_host(name, tmp_path_factory) for name in ("host_a", "host_b", "host_c")}
    hosts["busy"] = start_gpu_host("busy", tmp_path_factory, gpu_queue_limit=0)
    proxy = None
    try:
        for host in hosts.values():
            host.wait_ready("/readyz")
        connection = psycopg2.connect(proxy_database_url)
        with connection, connection.cursor() as cursor:
            cursor.execute("INSERT INTO api_hosts (url, name, enabled, created_at) VALUES (%s, 'c', true, now())",
                           (hosts["host_c"].url,))
            cursor.execute("INSERT INTO api_hosts (url, name, enabled, created_at) "
                           "VALUES ('http://127.0.0.1:9', 'disabled', false, now())")
        connection.close()
        tmp = tmp_path_factory.mktemp("proxy")
        proxy = Process("proxy", "proxy:app", base_env(
            tmp, server_type="cpu", database_url=proxy_database_url,
            gpu_hosts=[hosts["host_a"].url, hosts["host_b"].url, hosts["busy"].url],
            proxy_health_interval_seconds=1, proxy_hosts_refresh_seconds=1, proxy_eject_seconds=2,
            gpu_request_timeout_seconds=60), tmp, threads=32)
        proxy.wait_ready("/healthz")
        yield {"proxy": proxy, **hosts}
    finally:
        for process in [proxy, *hosts.values()]:
            if process is not None:
                process.stop()
