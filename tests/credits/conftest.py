"""Helpers for credit tests: users made from the models, Bearer tokens, an app context, threads with their own."""
from __future__ import annotations

import secrets
import threading
from datetime import datetime, timezone

import pytest

from app.extensions import db
from app.models import ApiToken, User
from app.services.secrets import hash_token

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def ctx(app):
    """Run the test body inside an app context (its own session)."""
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def make_user(app):
    """Create a user straight from the model; returns its integer id."""

    def make(email: str | None = None, verified: bool = True) -> int:
        with app.app_context():
            user = User(email=email or f"u{secrets.token_hex(4)}@example.com", password_hash="not-a-hash",
                        referral_code=secrets.token_urlsafe(9), is_verified=verified,
                        verified_at=T0 if verified else None)
            db.session.add(user)
            db.session.commit()
            return user.id

    return make


@pytest.fixture
def bearer(app):
    """Issue an API token for a user id; returns the Authorization header."""

    def issue(user_id: int) -> dict[str, str]:
        token = secrets.token_urlsafe(32)
        with app.app_context():
            db.session.add(ApiToken(user_id=user_id, name="test", token_hash=hash_token(token), prefix=token[:8]))
            db.session.commit()
        return {"Authorization": f"Bearer {token}"}

    return issue


def run_concurrently(app, count: int, work) -> list:
    """Run work(i) in `count` threads released together, each in its own app context (own session and
    connection); returns each call's result or the exception it raised."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def runner(i: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results[i] = work(i)
            except Exception as error:  # collected and asserted on by the test
                db.session.rollback()
                results[i] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results
