"""The credits and referrals JSON API with Bearer tokens, and the pages behind a login."""
from __future__ import annotations

from datetime import timedelta

from app.extensions import db
from app.models import ModelEntry, Referral, User
from app.services import credits
from tests.credits.conftest import T0


def test_credits_endpoint_shows_balance_held_and_next_expiry(app, client, make_user, bearer):
    uid = make_user()
    with app.app_context():
        credits.grant(uid, 5, expires_in_days=2)
        credits.grant(uid, 20, expires_in_days=30)
        credits.hold(uid, 3)
    body = client.get("/api/v1/credits", headers=bearer(uid)).get_json()
    assert (body["balance"], body["held"], body["expiring_amount"]) == (22, 3, 2)
    assert body["next_expiry"] is not None and [e["amount"] for e in body["expiring"]] == [2, 20]


def test_credits_api_needs_a_login(client):
    response = client.get("/api/v1/credits")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_ledger_pages_newest_first_with_a_cursor(app, client, make_user, bearer):
    uid = make_user()
    with app.app_context():
        credits.grant(uid, 10, memo="welcome", now=T0)
        for i in range(4):
            credits.spend(uid, 1, memo=f"image {i}", now=T0 + timedelta(minutes=i))
    headers = bearer(uid)
    first = client.get("/api/v1/credits/ledger?limit=3", headers=headers).get_json()
    assert [e["memo"] for e in first["entries"]] == ["image 3", "image 2", "image 1"]
    assert [e["change"] for e in first["entries"]] == [-1, -1, -1]
    second = client.get(f"/api/v1/credits/ledger?limit=3&cursor={first['next_cursor']}", headers=headers).get_json()
    assert [e["memo"] for e in second["entries"]] == ["image 0", "welcome"] and second["next_cursor"] is None
    assert second["entries"][1] | {"id": None, "created_at": None, "expires_at": None} == {
        "id": None, "kind": "grant", "amount": 10, "change": 10, "remaining": 6, "expires_at": None,
        "status": None, "hold_id": None, "memo": "welcome", "created_at": None}
    bad = client.get("/api/v1/credits/ledger?cursor=nonsense", headers=headers)
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "cursor"


def test_ledger_never_shows_another_users_entries(app, client, make_user, bearer):
    me, other = make_user(), make_user()
    with app.app_context():
        credits.grant(other, 99)
    assert client.get("/api/v1/credits/ledger", headers=bearer(me)).get_json()["entries"] == []


def test_quote_prices_images_audio_and_video_without_charging(app, client, make_user, bearer):
    uid = make_user()
    with app.app_context():
        credits.grant(uid, 10)
        db.session.add(ModelEntry(model_id="big-model", kind="image", price_multiplier=2.5))
        db.session.commit()
    headers = bearer(uid)

    def quote(body):
        return client.post("/api/v1/credits/quote", json=body, headers=headers)

    base = quote({"kind": "image", "model": "tiny", "width": 512, "height": 512, "steps": 20}).get_json()
    assert (base["cost"], base["balance"], base["affordable"]) == (4, 10, True)
    assert quote({"model": "tiny", "width": 1024, "height": 1024, "steps": 20, "images": 2}).get_json()["cost"] == 32
    assert quote({"model": "big-model", "width": 512, "height": 512, "steps": 20}).get_json()["cost"] == 10
    assert quote({"model": "tiny", "width": 64, "height": 64, "steps": 1}).get_json()["cost"] == 1  # minimum
    assert quote({"model": "tiny", "width": 512, "height": 768, "steps": 25}).get_json()["cost"] == 8  # 7.5 rounds up
    big = quote({"model": "big-model", "width": 1024, "height": 1024, "steps": 50, "images": 4}).get_json()
    assert big["affordable"] is False
    assert quote({"kind": "audio", "model": "tiny", "seconds": 10}).get_json()["cost"] == 10
    assert quote({"kind": "video", "model": "tiny", "seconds": 2.5}).get_json()["cost"] == 10
    for body, field in (({"model": "nope"}, "model"), ({"width": 10}, "width"), ({"steps": "20"}, "steps"),
                        ({"kind": "audio"}, "seconds"), ({"kind": "hologram"}, "kind")):
        response = quote(body)
        assert response.status_code == 422 and response.get_json()["error"]["field"] == field
    assert client.get("/api/v1/credits", headers=headers).get_json()["balance"] == 10


def test_referrals_endpoint_lists_link_people_and_rewards(app, client, make_user, bearer):
    referrer, friend = make_user(), make_user(email="friend@example.com", verified=False)
    with app.app_context():
        code = db.session.get(User, referrer).referral_code
        db.session.add(Referral(referrer_id=referrer, referred_id=friend, code_used=code))
        db.session.commit()
    body = client.get("/api/v1/referrals", headers=bearer(referrer)).get_json()
    assert body["code"] == code and body["link"] == f"http://atelier.test/r/{code}"
    assert body["rewards_earned"] == 0
    assert [(p["email"], p["verified"], p["credits_earned"]) for p in body["referred"]] == [
        ("f•••••@example.com", False, 0)]


def test_pages_need_a_login(client):
    for path in ("/credits", "/referrals"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
