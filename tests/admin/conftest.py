"""Admin page fixtures: accounts made with the users service, logged in through the real log-in form."""
from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.services import accounts

PASSWORD = "admin pages passphrase"


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def make_account(app):
    """Create an account through the users service (as `flask users create` does); returns its public id."""

    def make(email: str, admin: bool = False, verified: bool = True) -> str:
        with app.app_context():
            user = accounts.register(email, PASSWORD, is_admin=admin, verified=verified)
            public_id = str(user.public_id)
            db.session.remove()
            return public_id

    return make


def log_in(client, email: str) -> None:
    """Log in through the /login form."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def admin_client(app, client, make_account):
    """The test client, logged in as a verified admin."""
    make_account("boss@example.com", admin=True)
    log_in(client, "boss@example.com")
    return client


@pytest.fixture
def post_form(admin_client):
    """POST a form on an admin page with the CSRF token read from `page`."""

    def post(path: str, data: dict, page: str = "/admin/users", **kwargs):
        token = csrf_from(admin_client.get(page).get_data(as_text=True))
        return admin_client.post(path, data={**data, "csrf_token": token}, **kwargs)

    return post
