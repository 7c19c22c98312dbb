"""Helpers for account tests: sign up, read links from the outbox, log in."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

PASSWORD = "correct horse battery"


def token_from(message: dict) -> str:
    """The token of the first link in an email."""
    link = re.search(r"https?://\S+", message["text"]).group(0)
    return parse_qs(urlsplit(link).query)["token"][0]


@pytest.fixture
def register(client):
    """POST /auth/register and return the response."""

    def do(email: str = "ada@example.com", password: str = PASSWORD, **extra):
        return client.post("/api/v1/auth/register", json={"email": email, "password": password, **extra})

    return do


@pytest.fixture
def login(client):
    """POST /auth/login and return the response."""

    def do(email: str = "ada@example.com", password: str = PASSWORD, on=None):
        return (on or client).post("/api/v1/auth/login", json={"email": email, "password": password})

    return do


@pytest.fixture
def user(register, login):
    """A registered, logged-in (unverified) user; returns the /me JSON."""
    response = register()
    assert response.status_code == 201, response.get_json()
    assert login().status_code == 200
    return response.get_json()["user"]
