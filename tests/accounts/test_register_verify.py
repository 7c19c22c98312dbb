"""Sign-up and email verification through the JSON API."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app import signals
from app.errors import ApiError
from app.extensions import db
from app.models import EmailToken, User, utcnow
from tests.accounts.conftest import PASSWORD, token_from


def test_register_creates_unverified_account_and_emails_a_link(app, register, outbox):
    response = register(email="  Ada@Example.COM ")
    assert response.status_code == 201
    body = response.get_json()["user"]
    assert body["email"] == "ada@example.com"
    assert body["verified"] is False and body["admin"] is False
    assert len(body["referral_code"]) >= 10
    mails = outbox("ada@example.com")
    assert len(mails) == 1
    assert "http://atelier.test/verify?token=" in mails[0]["text"]
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        stored = db.session.scalar(select(EmailToken))
        assert stored.token_hash != token_from(mails[0])  # only the hash is kept


def test_referral_codes_differ_between_users(register):
    first = register(email="a@example.com").get_json()["user"]["referral_code"]
    second = register(email="b@example.com").get_json()["user"]["referral_code"]
    assert first != second


@pytest.mark.parametrize("password", ["short1!", "password123", "Qwerty123", "iloveyou2020"])
def test_weak_passwords_are_refused_with_422(register, password, app):
    response = register(password=password)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "password"
    with app.app_context():
        assert db.session.scalar(select(User)) is None


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", None, 42])
def test_bad_emails_are_refused_with_422(register, email):
    response = register(email=email)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "email"


def test_duplicate_email_is_409_whatever_the_case(register):
    assert register(email="ada@example.com").status_code == 201
    response = register(email=" ADA@example.com")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "email_taken"


def test_register_needs_a_json_body(client):
    response = client.post("/api/v1/auth/register", data={"email": "a@example.com", "password": PASSWORD})
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_signal_receiver_error_rolls_the_registration_back(app, register, outbox):
    seen = []

    def veto(user, referral_code=None, **_):
        seen.append((user.email, user.id is not None))
        if user.email.startswith("veto"):
            raise ApiError(422, "Refused by a receiver.", field="referral_code")

    signals.user_registered.connect(veto)
    try:
        response = register(email="veto@example.com")
        assert response.status_code == 422
        assert response.get_json()["error"]["field"] == "referral_code"
        with app.app_context():
            assert db.session.scalar(select(User)) is None
        assert outbox() == []
        assert register().status_code == 201
    finally:
        signals.user_registered.disconnect(veto)
    assert seen == [("veto@example.com", True), ("ada@example.com", True)]


def test_verify_marks_account_verified_and_token_works_once(client, user, outbox):
    verified = []
    receiver = lambda sender, **_: verified.append(sender.email)  # noqa: E731
    signals.user_verified.connect(receiver)
    try:
        token = token_from(outbox("ada@example.com")[0])
        response = client.post("/api/v1/auth/verify", json={"token": token})
        assert response.status_code == 200
        assert response.get_json()["user"]["verified"] is True
        assert client.get("/api/v1/me").get_json()["user"]["verified"] is True
        again = client.post("/api/v1/auth/verify", json={"token": token})
        assert again.status_code == 400
        assert again.get_json()["error"]["code"] == "invalid_token"
    finally:
        signals.user_verified.disconnect(receiver)
    assert verified == ["ada@example.com"]


def test_expired_verification_token_is_refused(app, client, user, outbox):
    token = token_from(outbox("ada@example.com")[0])
    with app.app_context():
        db.session.execute(update(EmailToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    response = client.post("/api/v1/auth/verify", json={"token": token})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "expired_token"
    assert client.get("/api/v1/me").get_json()["user"]["verified"] is False


def test_unknown_or_missing_token_is_refused(client):
    assert client.post("/api/v1/auth/verify", json={"token": "made-up"}).status_code == 400
    assert client.post("/api/v1/auth/verify", json={}).status_code == 422


def test_resend_verification_replaces_the_old_link(client, user, outbox):
    first = token_from(outbox("ada@example.com")[0])
    assert client.post("/api/v1/auth/resend-verification").status_code == 202
    second = token_from(outbox("ada@example.com")[1])
    assert client.post("/api/v1/auth/verify", json={"token": first}).status_code == 400
    assert client.post("/api/v1/auth/verify", json={"token": second}).status_code == 200
    assert client.post("/api/v1/auth/resend-verification").status_code == 409
