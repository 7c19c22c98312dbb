"""Sign-ups are throttled per client IP (API and page share one count): 429 with Retry-After, a form error."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import User
from tests.accounts.conftest import PASSWORD


@pytest.fixture
def three_signups(settings_overrides):
    settings_overrides.update(register_rate_limit_per_ip="3 per hour")
    return settings_overrides


def _users(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(User))
        db.session.remove()
        return count


def _signup_page(client, email: str, **environ):
    form = client.get("/signup", environ_base=environ).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    return client.post("/signup", data={"email": email, "password": PASSWORD, "csrf_token": token},
                       environ_base=environ)


def test_api_signups_past_the_limit_get_429_with_retry_after(three_signups, app, client, register, outbox):
    assert register(email="weak@example.com", password="x").status_code == 422  # a rejected form does not count
    assert register(email="a@example.com").status_code == 201
    assert register(email="b@example.com").status_code == 201
    assert register(email="a@example.com").status_code == 409  # probing a taken address counts
    blocked = register(email="c@example.com")
    assert blocked.status_code == 429
    assert blocked.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(blocked.headers["Retry-After"]) <= 3600
    assert _users(app) == 2 and outbox(to="c@example.com") == []
    # Another client address is counted on its own.
    elsewhere = client.post("/api/v1/auth/register", json={"email": "d@example.com", "password": PASSWORD},
                            environ_base={"REMOTE_ADDR": "203.0.113.8"})
    assert elsewhere.status_code == 201 and _users(app) == 3


def test_the_page_shows_a_form_error_and_shares_the_api_count(three_signups, app, client, register):
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        assert register(email=email).status_code == 201
    page = _signup_page(client, "d@example.com")
    assert page.status_code == 429 and 0 < int(page.headers["Retry-After"]) <= 3600
    text = page.get_data(as_text=True)
    assert "Too many sign-ups from this address" in text and 'value="d@example.com"' in text
    assert _users(app) == 3
    # Someone behind another address still signs up through the page.
    other = _signup_page(client, "e@example.com", REMOTE_ADDR="203.0.113.7")
    assert other.status_code == 302 and _users(app) == 4
