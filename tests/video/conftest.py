"""Real processes for media jobs: two GPU hosts (tiny, one torch thread each) behind proxy.py, Celery workers
on real Redis, local HTTP servers standing in for Discord and SendGrid, and test audio made with numpy."""
from __future__ import annotations

import io
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
import wave
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from app.extensions import db
from app.models import ApiToken, User
from app.services.secrets import hash_token
from tests.gpu.conftest import ROOT, SECRET, Process, Signed, base_env, start_gpu_host

# Short broker and lease timings so a killed worker's render is picked up again within seconds.
FAST_JOBS = {
    "gpu_shared_secret": SECRET,
    "webhook_allow_private_addresses": True,  # the tests' webhook receivers listen on 127.0.0.1
    "celery_visibility_timeout_seconds": 16,
    "celery_task_time_limit_seconds": 14,
    "celery_task_soft_time_limit_seconds": 12,
    "video_render_slice_seconds": 3,
    "video_render_lease_seconds": 3,
    "video_chunk_frames": 2,
    "video_render_concurrency": 2,
    "celery_gpu_retries": 6,
    "celery_gpu_retry_backoff_max_seconds": 2,
    "price_per_video_second": 4,
    "price_per_audio_second": 1,
}


def make_wav(seconds: float = 2.0, rate: int = 22050, clicks_per_second: int = 2) -> bytes:
    """A sine with loud clicks (the percussive part), as 16-bit WAV."""
    t = np.arange(int(seconds * rate)) / rate
    signal_ = 0.2 * np.sin(2 * np.pi * 220 * t)
    for start in np.arange(0, seconds, 1 / clicks_per_second):
        i = int(start * rate)
        signal_[i:i + 200] += np.random.default_rng(i).uniform(-0.8, 0.8, len(signal_[i:i + 200]))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(signal_, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="session")
def video_proxy_database_url():
    """A PostgreSQL database of these proxies' own (an empty api_hosts table)."""
    from tests.conftest import private_database

    with private_database("atelier_vproxy") as url:
        yield url


def start_proxy(name: str, tmp_factory, database_url: str, hosts: list[Process]) -> Process:
    """proxy.py over the given hosts, with fast health checks."""
    tmp = tmp_factory.mktemp(name)
    proxy = Process(name, "proxy:app", base_env(
        tmp, server_type="cpu", database_url=database_url, gpu_hosts=[h.url for h in hosts],
        proxy_health_interval_seconds=1, proxy_hosts_refresh_seconds=1, proxy_eject_seconds=2,
        gpu_request_timeout_seconds=60), tmp, threads=32)
    proxy.wait_ready("/healthz")
    return proxy


@pytest.fixture(scope="session")
def gpu_pool(tmp_path_factory, video_proxy_database_url):
    """Two tiny GPU hosts (one torch thread each) and a proxy in front of them."""
    hosts = [start_gpu_host(f"video_host_{i}", tmp_path_factory, gpu_batch_wait_ms=2) for i in range(2)]
    proxy = None
    try:
        for host in hosts:
            host.wait_ready("/readyz")
        proxy = start_proxy("video_proxy", tmp_path_factory, video_proxy_database_url, hosts)
        yield {"proxy": proxy, "hosts": hosts}
    finally:
        for process in [proxy, *hosts]:
            if process is not None:
                process.stop()


def requests_served(hosts: list[Process]) -> int:
    """Generation requests the hosts have run (an interpolation chunk is one)."""
    return sum(Signed(h.url).health()["batches_served"] for h in hosts)


class Recorder:
    """A local HTTP server that records every POST it receives (a stand-in for Discord or SendGrid)."""

    def __init__(self, status: int = 204):
        self.received: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.received.append({"path": self.path, "headers": dict(self.headers),
                                          "json": json.loads(body or b"null")})
                self.send_response(status if not self.path.startswith("/v3/mail") else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def recorder():
    """Start recorders on demand; all are shut down after the test."""
    started: list[Recorder] = []

    def start(status: int = 204) -> Recorder:
        started.append(Recorder(status))
        return started[-1]

    yield start
    for item in started:
        item.close()


class Worker:
    """A real Celery worker process (prefork, one child) consuming the default and media queues."""

    def __init__(self, env: dict[str, str], log_path: str):
        self.log_path = log_path
        self.env = env
        self.log = open(log_path, "ab")
        command = [sys.executable, "-m", "celery", "-A", "app.celery_worker", "worker", "-Q", "default,media",
                   "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO", "--without-gossip",
                   "--without-mingle", "--without-heartbeat", "-n", f"w{uuid.uuid4().hex[:6]}@%h"]
        self.popen = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the worker and its pool child at once, like a machine that dies."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        """Warm shutdown, then for sure."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def output(self) -> str:
        """The worker's log so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()


@pytest.fixture
def settings_overrides(settings_overrides, request):
    """The test app and its workers share the database, Redis prefix, storage, outbox and (when the test uses
    the GPU pool) the proxy."""
    overrides = {**settings_overrides, **FAST_JOBS}
    if "gpu_pool" in request.fixturenames:
        overrides["proxy_url"] = request.getfixturevalue("gpu_pool")["proxy"].url
    return overrides


@pytest.fixture
def start_worker(settings_overrides, tmp_path):
    """Start a Celery worker with the test app's settings (plus extra ones); stopped after the test."""
    workers: list[Worker] = []

    def start(**extra) -> Worker:
        settings = {**settings_overrides, **extra}
        (tmp_path / f"worker{len(workers)}").mkdir(exist_ok=True)
        env = {**os.environ, **base_env(tmp_path / f"worker{len(workers)}", **settings), "OMP_NUM_THREADS": "1"}
        workers.append(Worker(env, str(tmp_path / f"worker{len(workers)}.log")))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def make_user(app):
    """A verified user with credits and an API token; returns (user id, Authorization header)."""

    def make(credits: int = 1000, webhook: str | None = None) -> tuple[int, dict[str, str]]:
        from app.services import credits as ledger

        token = secrets.token_urlsafe(32)
        with app.app_context():
            user = User(email=f"v{secrets.token_hex(4)}@example.com", password_hash="x",
                        referral_code=secrets.token_urlsafe(9), is_verified=True,
                        verified_at=datetime.now(timezone.utc), notification_webhook_url=webhook)
            db.session.add(user)
            db.session.commit()
            db.session.add(ApiToken(user_id=user.id, name="test", token_hash=hash_token(token), prefix=token[:8]))
            db.session.commit()
            if credits:
                ledger.grant(user.id, credits, memo="test credits")
            return user.id, {"Authorization": f"Bearer {token}"}

    return make


def upload_wav(client, headers, data: bytes, name: str = "song.wav") -> dict:
    """Upload audio through the API; returns the response."""
    return client.post("/api/v1/audio/uploads", headers=headers,
                       data={"audio": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def wait_for(predicate, timeout: float = 120, interval: float = 0.1, message: str = "condition"):
    """Poll until predicate() is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")
