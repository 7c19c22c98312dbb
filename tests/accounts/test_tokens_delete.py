"""API tokens (Bearer auth, revocation) and account deletion."""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import ApiToken, EmailToken, User
from app.services.secrets import hash_token
from tests.accounts.conftest import PASSWORD


def test_token_is_shown_once_authenticates_and_stops_working_when_revoked(app, client, user):
    created = client.post("/api/v1/tokens", json={"name": " laptop "})
    assert created.status_code == 201
    token = created.get_json()["token"]
    secret = token["secret"]
    assert secret.startswith("atl_") and token["name"] == "laptop" and secret.startswith(token["prefix"])
    with app.app_context():
        stored = db.session.scalar(select(ApiToken))
        assert stored.token_hash == hash_token(secret) and secret not in (stored.prefix, stored.token_hash)

    listed = client.get("/api/v1/tokens").get_json()["tokens"]
    assert [t["name"] for t in listed] == ["laptop"] and "secret" not in listed[0]

    script = app.test_client()  # no cookie
    bearer = {"Authorization": f"Bearer {secret}"}
    me = script.get("/api/v1/me", headers=bearer)
    assert me.status_code == 200 and me.get_json()["user"]["email"] == "ada@example.com"
    assert client.get("/api/v1/tokens").get_json()["tokens"][0]["last_used_at"] is not None
    assert script.get("/api/v1/me", headers={"Authorization": "Bearer atl_wrong"}).status_code == 401

    assert client.delete(f"/api/v1/tokens/{token['id']}").status_code == 204
    assert script.get("/api/v1/me", headers=bearer).status_code == 401
    assert client.delete(f"/api/v1/tokens/{token['id']}").status_code == 404


def test_token_needs_a_name_and_a_login(app, client, user):
    response = client.post("/api/v1/tokens", json={"name": "  "})
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "name"
    assert app.test_client().post("/api/v1/tokens", json={"name": "x"}).status_code == 401


def test_users_cannot_revoke_each_others_tokens(app, client, user, register, login):
    token_id = client.post("/api/v1/tokens", json={"name": "mine"}).get_json()["token"]["id"]
    register(email="eve@example.com")
    eve = app.test_client()
    login(email="eve@example.com", on=eve)
    assert eve.delete(f"/api/v1/tokens/{token_id}").status_code == 404
    assert eve.delete("/api/v1/tokens/not-a-uuid").status_code == 404
    assert len(client.get("/api/v1/tokens").get_json()["tokens"]) == 1


def test_delete_account_needs_the_password_and_removes_the_rows(app, client, user, login):
    secret = client.post("/api/v1/tokens", json={"name": "ci"}).get_json()["token"]["secret"]
    wrong = client.delete("/api/v1/me", json={"password": "not my password"})
    assert wrong.status_code == 403
    assert client.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 204
    assert client.get("/api/v1/me").status_code == 401
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert login().status_code == 401
    with app.app_context():
        for model in (User, ApiToken, EmailToken):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0


def test_delete_account_removes_image_bytes_too(app, client, user, settings_overrides):
    import io
    import os

    from PIL import Image as PILImage

    from app.services import media

    png = io.BytesIO()
    PILImage.new("RGB", (32, 24), (10, 120, 200)).save(png, "PNG")
    with app.app_context():
        owner = db.session.scalar(select(User))
        media.store_upload(owner, png.getvalue(), title="mine")
    stored = [os.path.join(d, f) for d, _, files in os.walk(settings_overrides["storage_local_dir"]) for f in files]
    assert stored
    assert client.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 204
    assert not any(os.path.exists(path) for path in stored)
