"""Real processes for the generation tests: ONE GPU host (tiny) and ONE proxy per session, plus a misbehaving
GPU host (an HTTP server in this process that drops, stalls or fails requests) behind a second proxy."""
from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from PIL import Image as PILImage

from app.extensions import db
from app.models import ApiToken, User
from app.services import credits
from app.services.secrets import hash_token
from tests.gpu.conftest import SECRET, Process, base_env, start_gpu_host

NO_DATABASE = "sqlite:////nonexistent/atelier-none.db"


def _start_proxy(name: str, tmp_path_factory, hosts: list[str], **settings) -> Process:
    tmp = tmp_path_factory.mktemp(name)
    proxy = Process(name, "proxy:app", base_env(
        tmp, server_type="cpu", database_url=NO_DATABASE, gpu_hosts=hosts, proxy_health_interval_seconds=1,
        **settings), tmp, threads=16)
    proxy.wait_ready("/healthz")
    return proxy


def wait_available(proxy: Process, timeout: float = 20) -> None:
    """Until the proxy has an available host again (after an ejection)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hosts = requests.get(proxy.url + "/healthz", timeout=5).json()["hosts"]
        if any(h["available"] for h in hosts):
            return
        time.sleep(0.2)
    raise AssertionError(f"no host came back: {hosts}")


@pytest.fixture(scope="session")
def gpu_stack(tmp_path_factory):
    """One GPU host serving tiny and proxy.py in front of it."""
    host = start_gpu_host("gen_gpu", tmp_path_factory, gpu_batch_wait_ms=5)
    proxy = None
    try:
        host.wait_ready("/readyz")
        proxy = _start_proxy("gen_proxy", tmp_path_factory, [host.url], gpu_request_timeout_seconds=120)
        yield {"host": host, "proxy": proxy}
    finally:
        for process in (proxy, host):
            if process is not None:
                process.stop()


def _png(width: int, height: int) -> str:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), (10, 120, 200)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


class FaultyHost(BaseHTTPRequestHandler):
    """A GPU host that is healthy to the proxy, then misbehaves by prompt: drop, crash, stall, slow:<s>."""

    requests_seen: list[dict] = []

    def log_message(self, *args):  # quiet
        pass

    def _json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._json(200, {"ready": True, "loaded_models": ["tiny"], "queue_depth": 0})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        FaultyHost.requests_seen.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        prompt = body.get("prompt", "")
        if prompt.startswith("drop"):  # the machine dies mid-request: the connection ends without an answer
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if prompt.startswith("crash"):
            self._json(500, {"error": {"code": "internal_error", "message": "CUDA error: device-side assert"}})
            return
        if prompt.startswith("stall"):
            time.sleep(6)
        if prompt.startswith("slow:"):
            time.sleep(float(prompt.split(":")[1]))
        n = body.get("n", 1)
        self._json(200, {"task": self.path.rsplit("/", 1)[-1], "model": body.get("model"), "width": 64,
                         "height": 64, "images": [{"seed": (body.get("seed") or 0) + i, "png_base64": _png(64, 64)}
                                                  for i in range(n)]})


@pytest.fixture(scope="session")
def faulty_stack(tmp_path_factory):
    """The faulty host (in this process) behind a proxy of its own with a 3 s GPU timeout."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FaultyHost)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    proxy = _start_proxy("faulty_proxy", tmp_path_factory, [url], gpu_request_timeout_seconds=3,
                         proxy_eject_seconds=1)
    try:
        yield {"host_url": url, "proxy": proxy}
    finally:
        proxy.stop()
        server.shutdown()


def pytest_configure(config):
    config.addinivalue_line("markers", "settings(**overrides): config the test's app starts with")


@pytest.fixture
def settings_overrides(settings_overrides, request, gpu_stack):
    """The shared overrides, the session's proxy, and those of the test's `settings` marker."""
    settings_overrides.update(proxy_url=gpu_stack["proxy"].url, gpu_shared_secret=SECRET, job_workers=2,
                              gpu_request_timeout_seconds=120, webhook_allow_private_addresses=True)
    marker = request.node.get_closest_marker("settings")
    if marker is not None:
        settings_overrides.update(marker.kwargs)
    return settings_overrides


@pytest.fixture
def make_user(app):
    """Create a user with an API token and credits; returns (user_id, headers, token, email)."""

    def create(credit: int = 1000, verified: bool = True, email: str | None = None):
        token = f"tok-{uuid.uuid4().hex}"
        email = email or f"{uuid.uuid4().hex[:8]}@example.com"
        with app.app_context():
            user = User(email=email, password_hash="x", referral_code=uuid.uuid4().hex[:12], is_verified=verified)
            db.session.add(user)
            db.session.flush()
            db.session.add(ApiToken(user_id=user.id, name="tests", token_hash=hash_token(token), prefix=token[:8]))
            db.session.commit()
            user_id = user.id
            if credit:
                credits.grant(user_id, credit)
        return user_id, {"Authorization": f"Bearer {token}"}, token, email

    return create


@pytest.fixture
def balance(app):
    """The user's spendable and held credits."""

    def read(user_id: int) -> tuple[int, int]:
        with app.app_context():
            summary = credits.balance(user_id)
            db.session.remove()
            return summary["balance"], summary["held"]

    return read


@pytest.fixture
def image_rows(app):
    """How many image rows a user has."""

    def count(user_id: int) -> int:
        from sqlalchemy import func, select

        from app.models import Image

        with app.app_context():
            value = db.session.scalar(select(func.count()).select_from(Image).where(Image.user_id == user_id))
            db.session.remove()
            return value

    return count


@pytest.fixture
def live_url(app):
    """The test's app served over real HTTP on a free loopback port (for the openai client and concurrency)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
