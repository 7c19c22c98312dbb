"""GPU failures (a host that dies mid-request, stalls or crashes) release the hold and leave no image behind."""
from __future__ import annotations

import pytest

from tests.generation.conftest import FaultyHost, wait_available

TINY = {"width": 64, "height": 64, "steps": 2}


@pytest.fixture
def settings_overrides(settings_overrides, faulty_stack):
    """This module's app talks to the proxy in front of the faulty host."""
    settings_overrides["proxy_url"] = faulty_stack["proxy"].url
    return settings_overrides


@pytest.fixture(autouse=True)
def host_available(faulty_stack):
    """Each test starts with the faulty host back in the proxy's rotation."""
    wait_available(faulty_stack["proxy"])


@pytest.mark.parametrize("prompt, status", [("drop", 503), ("stall", 504), ("crash", 502)])
def test_gpu_failure_answers_5xx_releases_the_hold_and_stores_nothing(client, make_user, balance, image_rows,
                                                                      prompt, status):
    user_id, headers, _, _ = make_user(credit=50)
    response = client.post("/api/v1/images/generations", json={**TINY, "prompt": prompt}, headers=headers)
    assert response.status_code == status, response.json
    assert response.json["error"]["message"]
    assert balance(user_id) == (50, 0)
    assert image_rows(user_id) == 0
    ledger = client.get("/api/v1/credits/ledger", headers=headers).json["entries"]
    assert [entry["kind"] for entry in ledger] == ["release", "hold", "grant"]


def test_a_failed_request_can_be_retried_with_the_same_idempotency_key(client, make_user, balance):
    user_id, headers, _, _ = make_user(credit=50)
    key_headers = {**headers, "Idempotency-Key": "retry-after-failure"}
    assert client.post("/api/v1/images/generations", json={**TINY, "prompt": "crash"},
                       headers=key_headers).status_code == 502
    assert balance(user_id) == (50, 0)


def test_the_request_id_travels_from_the_web_process_through_the_proxy_to_the_gpu_host(client, make_user):
    _, headers, _, _ = make_user()
    response = client.post("/api/v1/images/generations", json={**TINY, "prompt": "trace me"},
                           headers={**headers, "X-Request-Id": "trace-gen-123"})
    assert response.status_code == 201
    assert response.headers["X-Request-Id"] == "trace-gen-123"
    seen = [r for r in FaultyHost.requests_seen if r["body"].get("prompt") == "trace me"]
    assert seen and seen[-1]["headers"].get("X-Request-Id") == "trace-gen-123"


def test_a_storage_failure_after_the_gpu_answered_releases_the_hold_and_leaves_no_file(
        app, client, make_user, balance, image_rows, settings_overrides):
    import os

    from app.extensions import db
    from app.models import User

    user_id, headers, _, _ = make_user(credit=50)
    with app.app_context():
        folder = str(db.session.get(User, user_id).public_id)
    media_dir = settings_overrides["storage_local_dir"]
    # A file where the user's thumbnail folder must go: the image bytes store, the thumbnail cannot.
    os.makedirs(os.path.join(media_dir, "thumbnails"), exist_ok=True)
    open(os.path.join(media_dir, "thumbnails", folder), "w").close()
    response = client.post("/api/v1/images/generations", json={**TINY, "prompt": "fine", "n": 2}, headers=headers)
    assert response.status_code == 500
    assert "nothing was charged" in response.json["error"]["message"]
    assert balance(user_id) == (50, 0) and image_rows(user_id) == 0
    assert os.listdir(os.path.join(media_dir, "images", folder)) == []
