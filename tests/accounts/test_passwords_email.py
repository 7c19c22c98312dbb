"""Password reset and change (sessions end), email change with re-verification."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.extensions import db
from app.models import EmailToken, utcnow
from tests.accounts.conftest import PASSWORD, token_from

NEW_PASSWORD = "a brand new passphrase"


def copy_of_session(app, client):
    """A second browser holding a copy of the client's session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def test_reset_request_answers_202_with_the_same_body_either_way(client, register, outbox):
    register()
    known = client.post("/api/v1/auth/password-reset", json={"email": "ADA@example.com "})
    unknown = client.post("/api/v1/auth/password-reset", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()
    assert len(outbox("ada@example.com")) == 2  # verification + reset
    assert outbox("nobody@example.com") == []
    assert "http://atelier.test/reset-password?token=" in outbox("ada@example.com")[1]["text"]


def test_reset_sets_the_password_once_and_ends_old_sessions(app, client, user, login, outbox):
    stolen = copy_of_session(app, client)
    assert stolen.get("/api/v1/me").status_code == 200
    client.post("/api/v1/auth/password-reset", json={"email": "ada@example.com"})
    token = token_from(outbox("ada@example.com")[-1])
    weak = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": "password1"})
    assert weak.status_code == 422 and weak.get_json()["error"]["field"] == "password"
    done = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 200
    assert stolen.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 401
    assert login().status_code == 401
    assert login(password=NEW_PASSWORD).status_code == 200
    again = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": "another passphrase"})
    assert again.status_code == 400 and again.get_json()["error"]["code"] == "invalid_token"


def test_expired_reset_token_is_refused(app, client, user, login, outbox):
    client.post("/api/v1/auth/password-reset", json={"email": "ada@example.com"})
    token = token_from(outbox("ada@example.com")[-1])
    with app.app_context():
        db.session.execute(update(EmailToken).where(EmailToken.purpose == "reset_password")
                           .values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    response = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "expired_token"
    assert login().status_code == 200  # the old password still works


def test_verification_token_cannot_reset_a_password(client, user, outbox):
    token = token_from(outbox("ada@example.com")[0])
    response = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 400


def test_change_password_keeps_this_session_and_ends_the_others(app, client, user, login):
    other = copy_of_session(app, client)
    wrong = client.post("/api/v1/auth/change-password", json={"current_password": "nope nope", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 403 and wrong.get_json()["error"]["field"] == "current_password"
    weak = client.post("/api/v1/auth/change-password", json={"current_password": PASSWORD, "new_password": "12345678"})
    assert weak.status_code == 422 and weak.get_json()["error"]["field"] == "new_password"
    response = client.post("/api/v1/auth/change-password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 200
    assert client.get("/api/v1/me").status_code == 200
    assert other.get("/api/v1/me").status_code == 401
    assert login(on=app.test_client(), password=NEW_PASSWORD).status_code == 200


def test_change_email_takes_effect_when_the_new_address_confirms(client, user, register, outbox):
    register(email="taken@example.com")
    wrong = client.post("/api/v1/auth/change-email", json={"password": "nope nope", "new_email": "new@example.com"})
    assert wrong.status_code == 403
    taken = client.post("/api/v1/auth/change-email", json={"password": PASSWORD, "new_email": "Taken@example.com"})
    assert taken.status_code == 409
    bad = client.post("/api/v1/auth/change-email", json={"password": PASSWORD, "new_email": "nope"})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "new_email"
    response = client.post("/api/v1/auth/change-email", json={"password": PASSWORD, "new_email": " New@Example.com"})
    assert response.status_code == 202
    assert client.get("/api/v1/me").get_json()["user"]["email"] == "ada@example.com"  # not yet
    mail = outbox("new@example.com")
    assert len(mail) == 1
    confirmed = client.post("/api/v1/auth/verify", json={"token": token_from(mail[0])})
    assert confirmed.status_code == 200
    me = client.get("/api/v1/me").get_json()["user"]
    assert me["email"] == "new@example.com" and me["verified"] is True


def test_change_email_to_an_address_taken_meanwhile_is_409(client, user, register, outbox):
    client.post("/api/v1/auth/change-email", json={"password": PASSWORD, "new_email": "new@example.com"})
    register(email="new@example.com")
    response = client.post("/api/v1/auth/verify", json={"token": token_from(outbox("new@example.com")[0])})
    assert response.status_code == 409
    assert client.get("/api/v1/me").get_json()["user"]["email"] == "ada@example.com"


def test_reset_mails_to_one_address_are_capped(client, register, outbox):
    register()
    answers = [client.post("/api/v1/auth/password-reset", json={"email": "ada@example.com"}).status_code
               for _ in range(6)]
    assert answers == [202] * 5 + [429]
    assert len(outbox("ada@example.com")) == 1 + 5
    # Another address is unaffected.
    assert client.post("/api/v1/auth/password-reset", json={"email": "bob@example.com"}).status_code == 202
