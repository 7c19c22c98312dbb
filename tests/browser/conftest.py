"""Browser journey harness: the platform as a real gunicorn process, driven by headless Chromium (Playwright).

How to add a journey (later issues do this):

    import pytest
    from tests.browser.conftest import LiveServer

    @pytest.mark.browser
    def test_my_journey(live_server: LiveServer, page, check, screenshot):
        watched = check(page)                       # start collecting console errors and failed requests
        page.goto(live_server.url("/signup"))
        ...                                         # drive the page with Playwright's sync API
        screenshot(page, "after-signup")            # test-artifacts/<test name>/after-signup.png
        watched.assert_clean()                      # fails listing every console error / failed request

Fixtures:
- `live_server` (session): `gunicorn wsgi:app` in role cpu on a free 127.0.0.1 port, on this test session's
  PostgreSQL database (`pg_database_url`), real Redis with its own key prefix, its own instance, media and outbox
  folders. `live_server.url(path)`, `live_server.outbox(to)` (mail it wrote, oldest first),
  `live_server.last_link(to, path)` (the newest link to `path` mailed to `to`), `live_server.log()` (its output).
  Extra config for the process: add ATELIER_* variables to `LIVE_SERVER_ENV` (this module) from a conftest or
  module imported before the session's first browser test, or pass them as JSON in ATELIER_BROWSER_EXTRA_ENV.
- `browser` (session): Debian's /usr/bin/chromium, headless, never downloaded by Playwright.
- `page` (per test): a fresh browser context (no cookies), 1280x900; `mobile_page`: 375x740.
- `check(page)`: returns a PageWatch collecting console errors, page errors, failed requests and HTTP >= 500.
- `screenshot(page, name)`: saves a full-page PNG under test-artifacts/<test name>/ (gitignored). Every `page`
  also gets a final screenshot when the test ends, so a failure leaves a picture behind.
- `new_account(page)`: signs a fresh unique user up through the sign-up form; returns (email, password).

Tests here use unique emails; every table is emptied after each test that used the live server (the database is
shared with the rest of the session). Mark them @pytest.mark.browser.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
JOURNEY_PASSWORD = "journey passphrase 42"
# Extra ATELIER_* variables for the live server process (see the module docstring).
LIVE_SERVER_ENV: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """A running platform process and what it writes."""

    base_url: str
    process: subprocess.Popen
    folder: Path

    def url(self, path: str = "/") -> str:
        """Absolute URL of a path on the server."""
        return self.base_url + path

    @property
    def outbox_dir(self) -> Path:
        return self.folder / "outbox"

    def outbox(self, to: str | None = None) -> list[dict]:
        """Mail the server wrote to its outbox folder, oldest first."""
        paths = sorted(self.outbox_dir.glob("*.json"), key=os.path.getmtime)
        messages = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
        return [m for m in messages if to is None or m["to"] == to]

    def last_link(self, to: str, path: str, timeout: float = 10.0) -> str:
        """The newest link to `path` mailed to `to`, waiting a little for the mail to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            for message in reversed(self.outbox(to)):
                for link in re.findall(r"https?://\S+", message["text"]):
                    if link.startswith(self.url(path)):
                        return link
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {to} with a link to {path}; outbox: {self.outbox(to)}")
            time.sleep(0.1)

    def log(self) -> str:
        """Everything the server process printed so far."""
        return (self.folder / "server.log").read_text(encoding="utf-8", errors="replace")


def _wait_ready(server: LiveServer, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the live server exited with {server.process.returncode}:\n{server.log()[-4000:]}")
        try:
            with urllib.request.urlopen(server.url("/readyz"), timeout=2) as response:
                if response.status == 200:
                    return
        except Exception as exc:  # not up yet
            last = str(exc)
        time.sleep(0.25)
    raise RuntimeError(f"the live server was not ready after {timeout}s ({last}):\n{server.log()[-4000:]}")


@pytest.fixture(scope="session")
def live_server(pg_database_url, redis_prefix, tmp_path_factory):
    """The platform as a separate gunicorn process (role cpu) on the session's database; stopped at the end."""
    from tests.conftest import REDIS_URL

    folder = tmp_path_factory.mktemp("live-server")
    port = _free_port()
    env = {
        **os.environ,
        "ATELIER_ENVIRONMENT": "testing",
        "ATELIER_SERVER_TYPE": "cpu",
        "ATELIER_SECRET_KEY": uuid.uuid4().hex * 2,
        "ATELIER_DATABASE_URL": pg_database_url,
        "ATELIER_REDIS_URL": REDIS_URL,
        "ATELIER_REDIS_KEY_PREFIX": f"{redis_prefix}-live",
        "ATELIER_BASE_URL": f"http://127.0.0.1:{port}",
        "ATELIER_INSTANCE_DIR": str(folder / "instance"),
        "ATELIER_MAIL_OUTBOX_DIR": str(folder / "outbox"),
        "ATELIER_STORAGE_LOCAL_DIR": str(folder / "media"),
        "ATELIER_LOG_JSON": "false",
        # Every journey logs in from 127.0.0.1; the per-IP limit has its own test in tests/accounts.
        "ATELIER_LOGIN_RATE_LIMIT_PER_IP": "1000 per 5 minutes",
        **LIVE_SERVER_ENV,
        **json.loads(os.environ.get("ATELIER_BROWSER_EXTRA_ENV", "{}")),
    }
    env.pop("ATELIER_CONFIG", None)
    log = open(folder / "server.log", "w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
         "--timeout", "60", "wsgi:app"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = LiveServer(base_url=f"http://127.0.0.1:{port}", process=process, folder=folder)
    try:
        _wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


@pytest.fixture(autouse=True)
def _empty_tables_after_journey(request, pg_database_url):
    """Leave the shared database empty, as the `app` fixture does, for the tests that run after this one."""
    yield
    if "live_server" not in request.fixturenames:
        return
    from sqlalchemy import create_engine, text

    from app.config import normalize_database_url
    from app.models import Base

    engine = create_engine(normalize_database_url(pg_database_url))
    try:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


# `playwright_instance` and `browser` live in tests/conftest.py, shared by every browser test of the session.


def _artifact_dir(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def screenshot(request):
    """screenshot(page, name): a full-page PNG under test-artifacts/<test name>/<name>.png."""
    folder = _artifact_dir(request)

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def _new_page(browser, request, viewport: dict):
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    try:
        page.screenshot(path=str(_artifact_dir(request) / "final.png"), full_page=True)
    except Exception:  # the page may already be gone; the test's own error matters more
        pass
    context.close()


@pytest.fixture
def page(browser, request):
    """A fresh desktop-sized page with no cookies."""
    yield from _new_page(browser, request, {"width": 1280, "height": 900})


@pytest.fixture
def mobile_page(browser, request):
    """A fresh 375px-wide page."""
    yield from _new_page(browser, request, {"width": 375, "height": 740})


class PageWatch:
    """Console errors, uncaught page errors, failed requests and 5xx answers seen on one page."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        self.client_errors: list[str] = []  # 4xx answers: context for a console error, not a problem by themselves
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _failed(self, request) -> None:
        # ERR_ABORTED is Chromium cancelling a page's pending loads because the test navigated on: not a fault.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"failed: {request.method} {request.url} {request.failure}")

    def _response(self, response) -> None:
        if response.status >= 500:
            self.problems.append(f"{response.status}: {response.request.method} {response.url}")
        elif response.status >= 400:
            self.client_errors.append(f"{response.status}: {response.request.method} {response.url}")

    def assert_clean(self) -> None:
        """Fail listing every problem seen so far."""
        assert not self.problems, "problems on the page:\n" + "\n".join(
            self.problems + [f"(answered {line})" for line in self.client_errors])


@pytest.fixture
def check():
    """check(page) -> PageWatch; call .assert_clean() at the end of the journey."""
    return PageWatch


@pytest.fixture
def new_account(live_server):
    """new_account(page): sign a fresh user up through the form (logged in afterwards); returns (email, password)."""

    def sign_up(page, email: str | None = None, password: str = JOURNEY_PASSWORD) -> tuple[str, str]:
        email = email or f"journey-{uuid.uuid4().hex[:10]}@example.com"
        page.goto(live_server.url("/signup"))
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Sign up").click()
        page.wait_for_url(live_server.url("/account"))
        return email, password

    return sign_up
