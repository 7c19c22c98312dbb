"""POST /api/v1/images/generations through the real proxy and GPU host: charge, store, fail cleanly."""
from __future__ import annotations

import pytest

from app.services import pricing

TINY = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 2}


def _cost(app, n=1, width=64, height=64, steps=2) -> int:
    with app.app_context():
        return pricing.image_cost("tiny", width, height, steps, n)


def test_generation_returns_stored_images_and_charges_their_price(app, client, make_user, balance):
    user_id, headers, _, _ = make_user(credit=100)
    response = client.post("/api/v1/images/generations", json={**TINY, "n": 2, "seed": 42}, headers=headers)
    assert response.status_code == 201, response.json
    body = response.json
    assert [image["seed"] for image in body["images"]] == [42, 43]
    first = body["images"][0]
    assert (first["width"], first["height"], first["kind"], first["model"]) == (64, 64, "txt2img", "tiny")
    assert first["prompt"] == "a red fox" and first["steps"] == 2 and first["parent"] is None
    assert body["credits_charged"] == _cost(app, n=2)
    assert balance(user_id) == (100 - _cost(app, n=2), 0)
    library = client.get("/api/v1/images", headers=headers).json["items"]
    assert {item["id"] for item in library} == {image["id"] for image in body["images"]}
    png = client.get(f"/api/v1/images/{first['id']}/file", headers=headers)
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")


def test_same_seed_gives_the_same_picture(client, make_user):
    _, headers, _, _ = make_user()
    hashes = [client.post("/api/v1/images/generations", json={**TINY, "seed": 7}, headers=headers)
              .json["images"][0]["content_hash"] for _ in range(2)]
    assert hashes[0] == hashes[1]


@pytest.mark.parametrize("change, field", [
    ({"prompt": None}, "prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"n": 5}, "n"),
    ({"n": 0}, "n"),
    ({"width": 65}, "width"),
    ({"height": 8}, "height"),
    ({"steps": 0}, "steps"),
    ({"steps": "many"}, "steps"),
    ({"guidance": "x"}, "guidance"),
    ({"seed": -1}, "seed"),
    ({"model": "sdxl-that-is-not-here"}, "model"),
    ({"scheduler": "no-such-sampler"}, "scheduler"),
    ({"width": 4096, "height": 4096}, "width"),
])
def test_bad_input_is_422_naming_the_field_and_charges_nothing(client, make_user, balance, change, field):
    user_id, headers, _, _ = make_user(credit=100)
    body = {k: v for k, v in {**TINY, **change}.items() if v is not None}
    response = client.post("/api/v1/images/generations", json=body, headers=headers)
    assert response.status_code == 422
    assert response.json["error"]["field"] == field
    assert balance(user_id) == (100, 0)


def test_unverified_user_gets_403_and_nothing_is_charged(client, make_user, balance, image_rows):
    user_id, headers, _, _ = make_user(credit=100, verified=False)
    response = client.post("/api/v1/images/generations", json=TINY, headers=headers)
    assert response.status_code == 403 and response.json["error"]["code"] == "email_not_verified"
    assert balance(user_id) == (100, 0) and image_rows(user_id) == 0


def test_short_balance_gets_402_and_no_image(app, client, make_user, balance, image_rows):
    user_id, headers, _, _ = make_user(credit=1)
    response = client.post("/api/v1/images/generations", json={**TINY, "width": 512, "height": 512, "steps": 20},
                           headers=headers)
    assert response.status_code == 402 and response.json["error"]["code"] == "insufficient_credits"
    assert balance(user_id) == (1, 0) and image_rows(user_id) == 0


def test_anonymous_gets_401(client):
    assert client.post("/api/v1/images/generations", json=TINY).status_code == 401


def test_metrics_count_generations_by_model_and_outcome_and_credits_spent(app, client, make_user):
    _, headers, _, _ = make_user()
    client.post("/api/v1/images/generations", json=TINY, headers=headers)
    client.post("/api/v1/images/generations", json={**TINY, "n": 9}, headers=headers)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'atelier_generations_total{model="tiny",operation="generations",outcome="succeeded"} 1.0' in text
    assert f'atelier_credits_spent_total{{kind="image"}} {float(_cost(app))}' in text
