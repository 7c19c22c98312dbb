"""Server-rendered pages through the test client: CSRF, redirects, errors beside fields."""
from __future__ import annotations

import re

import pytest

from tests.accounts.conftest import PASSWORD


def csrf(client, path: str) -> str:
    """The CSRF token of the form on a page."""
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def test_forms_without_a_csrf_token_are_refused_with_a_page(client, register):
    register()
    response = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert "text/html" in response.content_type and "CSRF" in response.get_data(as_text=True)
    assert client.get("/api/v1/me").status_code == 401


def test_login_page_logs_in_and_follows_only_local_next(client, register):
    register()
    token = csrf(client, "/login")
    response = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token,
                                           "next": "https://evil.example/steal"})
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert client.get("/api/v1/me").status_code == 200


def test_login_page_shows_the_error_and_keeps_the_email(client, register):
    register()
    page = client.post("/login", data={"email": "ada@example.com", "password": "wrong password",
                                       "csrf_token": csrf(client, "/login")}).get_data(as_text=True)
    assert "The email or password is not right." in page and 'value="ada@example.com"' in page


def test_signup_prefills_the_referral_code_and_shows_field_errors(client):
    assert 'value="FRIEND1"' in client.get("/signup?ref=FRIEND1").get_data(as_text=True)
    page = client.post("/signup", data={"email": "ada@example.com", "password": "short",
                                        "csrf_token": csrf(client, "/signup")})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="password-error"' in html and 'aria-invalid="true"' in html


def test_account_page_needs_a_login(client):
    response = client.get("/account")
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]


def test_unknown_page_is_an_html_404_page(client):
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404 and "<html" in response.get_data(as_text=True)


def test_verify_link_shows_a_button_and_does_not_spend_the_token_on_get(client, user, outbox):
    from tests.accounts.conftest import token_from

    token = token_from(outbox("ada@example.com")[0])
    page = client.get(f"/verify?token={token}").get_data(as_text=True)
    assert "Confirm my email address" in page
    assert client.get("/api/v1/me").get_json()["user"]["verified"] is False
    client.post("/verify", data={"token": token, "csrf_token": csrf(client, f"/verify?token={token}")})
    assert client.get("/api/v1/me").get_json()["user"]["verified"] is True


@pytest.fixture
def two_tries(settings_overrides):
    """Allow two failed log-ins per account (set before the app is built)."""
    settings_overrides.update(login_rate_limit_per_account="2 per 5 minutes")


def test_failed_page_logins_count_towards_the_account_limit(two_tries, client, register, login):
    register()
    token = csrf(client, "/login")
    for _ in range(2):
        page = client.post("/login", data={"email": "ada@example.com", "password": "wrong password",
                                           "csrf_token": token})
        assert page.status_code == 200 and "not right" in page.get_data(as_text=True)
    blocked = login()
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
