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
