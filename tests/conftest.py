"""Fixtures: a fresh PostgreSQL database per test session (migrated by alembic), an app per test, clean tables."""
from __future__ import annotations

import glob
import threading
import json
import os
import uuid
from contextlib import contextmanager

import psycopg2
import pytest
from sqlalchemy import text

from app import create_app
from app.models import Base
from app.services import migrations

PG_ADMIN_DSN = os.environ.get("ATELIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ATELIER_TEST_REDIS", "redis://127.0.0.1:6379/0")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-dev-shm-usage"]


def _admin_connection():
    connection = psycopg2.connect(PG_ADMIN_DSN)
    connection.autocommit = True
    return connection


@contextmanager
def private_database(prefix: str):
    """A fresh PostgreSQL database migrated to head, dropped on exit (parallel runs never share one)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _admin_connection()
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_DSN.rpartition('/')[0]}/{name}"
    try:
        migrations.upgrade(url)
        yield url
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def pg_database_url():
    """A PostgreSQL database of this test session's own, migrated to head, dropped afterwards."""
    with private_database("atelier_test") as url:
        yield url


@pytest.fixture(scope="session")
def redis_prefix():
    """A key prefix of this session's own, so parallel runs never share rate-limit counters."""
    return f"atelier-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings_overrides(pg_database_url, redis_prefix, tmp_path):
    """The config every test app starts from; tests may extend it before asking for `app`."""
    return {
        "environment": "testing",
        "server_type": "cpu",
        "database_url": pg_database_url,
        "redis_url": REDIS_URL,
        "redis_key_prefix": f"{redis_prefix}-{uuid.uuid4().hex[:6]}",
        "instance_dir": str(tmp_path / "instance"),
        "mail_outbox_dir": str(tmp_path / "outbox"),
        "storage_local_dir": str(tmp_path / "media"),
        "base_url": "http://atelier.test",
        "log_json": False,
    }


@pytest.fixture
def app(settings_overrides):
    """A cpu-role app on the session's PostgreSQL database; every table is emptied after the test."""
    application = create_app(settings_overrides)
    yield application
    from app.extensions import db

    with application.app_context():
        db.session.remove()
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner for the app's flask commands."""
    return app.test_cli_runner()


@pytest.fixture
def outbox(settings_overrides):
    """Read the mail the app wrote to its local outbox, oldest first."""

    def read(to: str | None = None) -> list[dict]:
        paths = sorted(glob.glob(os.path.join(settings_overrides["mail_outbox_dir"], "*.json")), key=os.path.getmtime)
        messages = [json.load(open(path, encoding="utf-8")) for path in paths]
        return [m for m in messages if to is None or m["to"] == to]

    return read


@pytest.fixture(scope="session")
def playwright_instance():
    """Playwright's sync API, started once per session: two sync instances cannot live in one thread."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance):
    """Headless Debian chromium (Playwright never downloads a browser here)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium)")
    chromium = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def app_url(app):
    """The test app served over real HTTP on a free local port, in this process; base_url follows it."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["ATELIER"].base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app.config["ATELIER"].base_url
    server.shutdown()
    thread.join()


def sign_up_in_browser(page, base_url: str, email: str, password: str) -> None:
    """Create an account through the sign-up form and wait for the account page."""
    page.goto(f"{base_url}/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{base_url}/account")
