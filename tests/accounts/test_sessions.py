"""Logging in and out, /me, throttling, and the JSON 404."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import User
from tests.accounts.conftest import PASSWORD


def test_login_sets_an_httponly_lax_session_cookie_and_records_the_time(app, client, register, login):
    register()
    response = login(email="  ADA@example.com ")
    assert response.status_code == 200
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # testing runs over plain http; production sets Secure
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    body = me.get_json()["user"]
    assert set(body) >= {"id", "email", "verified", "admin", "referral_code", "created_at"}
    assert body["last_login_at"] is not None
    with app.app_context():
        assert db.session.scalar(select(User.last_login_at)) is not None


def test_production_cookies_are_secure(settings_overrides):
    from app import create_app

    production = create_app({**settings_overrides, "environment": "production", "secret_key": "k" * 32,
                             "gpu_shared_secret": "s" * 32})
    assert production.config["SESSION_COOKIE_SECURE"] is True


def test_wrong_password_and_unknown_email_answer_the_same_401(register, login):
    register()
    wrong = login(password="not the password")
    unknown = login(email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["error"]["code"] == "invalid_credentials"


def test_unverified_users_can_log_in(user):
    assert user["verified"] is False


def test_logout_ends_the_session(client, user):
    assert client.post("/api/v1/auth/logout").status_code == 204
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_me_without_a_session_is_json_401(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.is_json


def test_unknown_api_route_is_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.fixture
def strict_limits(settings_overrides):
    settings_overrides.update(login_rate_limit_per_account="3 per 5 minutes", login_rate_limit_per_ip="5 per 5 minutes")
    return settings_overrides


def test_failed_logins_per_account_are_throttled_with_retry_after(strict_limits, register, login):
    register()
    for _ in range(3):
        assert login(email="Ada@example.com", password="wrong password").status_code == 401
    blocked = login()  # even the right password waits now
    assert blocked.status_code == 429
    assert blocked.get_json()["error"]["code"] == "rate_limited"
    assert int(blocked.headers["Retry-After"]) > 0
    # Another account from the same IP is still allowed (the IP limit is higher).
    register(email="bob@example.com")
    assert login(email="bob@example.com").status_code == 200


def test_failed_logins_per_ip_are_throttled(strict_limits, register, login):
    register()
    for number in range(5):
        assert login(email=f"guess{number}@example.com", password="wrong password").status_code == 401
    blocked = login()
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers


def test_successful_logins_do_not_count(strict_limits, register, login):
    register()
    for _ in range(6):
        assert login().status_code == 200


def test_login_page_shares_the_account_limit(strict_limits, client, register, login):
    register()
    for _ in range(3):
        assert login(password="wrong password").status_code == 401
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    page = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token})
    assert page.status_code == 429
    assert "Retry-After" in page.headers
    assert b"<html" in page.data  # a page, not JSON, for the browser
