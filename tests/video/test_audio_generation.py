"""Text-to-music and continuation with the tiny MusicGen, on the GPU hosts through the proxy, by a real worker."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Transaction
from app.services import credits as ledger
from tests.video.conftest import make_wav, upload_wav, wait_for

pytestmark = pytest.mark.timeout(300)


def _wait(client, headers, clip_id):
    return wait_for(lambda: (lambda c: c["status"] in ("ready", "failed") and c)(
        client.get(f"/api/v1/audio/{clip_id}", headers=headers).get_json()), timeout=180, message="the clip")


def _held(app, user_id: int) -> int:
    """Credits still held (the worker settles right after it marks the clip)."""
    with app.app_context():
        return ledger.balance(user_id)["held"]


def _captures(app) -> list[int]:
    with app.app_context():
        return [t.amount for t in db.session.scalars(select(Transaction).where(Transaction.kind == "capture")
                                                     .order_by(Transaction.id))]


def test_generate_and_continue_music_charged_per_second_delivered(app, client, make_user, gpu_pool, start_worker,
                                                                   recorder):
    hook = recorder()
    user_id, headers = make_user(credits=20, webhook=hook.url)
    start_worker()
    queued = client.post("/api/v1/audio/generations", headers=headers,
                         json={"prompt": "lofi drums", "duration": 2, "seed": 7})
    assert queued.status_code == 202 and queued.get_json()["status"] == "queued"
    with app.app_context():
        assert ledger.balance(user_id)["held"] == 2
    clip = _wait(client, headers, queued.get_json()["id"])
    assert clip["status"] == "ready", clip["failure_reason"]
    assert clip["sample_rate"] == 32000 and clip["duration"] == pytest.approx(2.0, abs=0.1)
    assert len(clip["waveform"]) == 200
    assert client.get(clip["url"], headers=headers).data[:4] == b"RIFF"

    upload = upload_wav(client, headers, make_wav(1.0)).get_json()
    more = client.post("/api/v1/audio/generations", headers=headers,
                       json={"prompt": "more of it", "duration": 1, "continue_from": upload["id"]})
    assert more.status_code == 202
    continued = _wait(client, headers, more.get_json()["id"])
    assert continued["status"] == "ready" and continued["kind"] == "continuation"
    # The upload's second followed by one new second; only the new second is charged.
    assert continued["duration"] == pytest.approx(2.0, abs=0.1)
    wait_for(lambda: _held(app, user_id) == 0, timeout=10, message="the holds to settle")
    assert _captures(app) == [2, 1]
    with app.app_context():
        assert ledger.balance(user_id) == {**ledger.balance(user_id), "balance": 17, "held": 0}
        # Processing moved each hold's deadline past the default, to outlive the GPU request it started.
        timeout = timedelta(minutes=app.config["ATELIER"].hold_timeout_minutes)
        holds = db.session.scalars(select(Transaction).where(Transaction.kind == "hold")).all()
        assert len(holds) == 2 and all(h.expires_at > h.created_at + timeout for h in holds)
    wait_for(lambda: len(hook.received) == 2, timeout=10, message="two webhook posts")
    assert all("is ready" in r["json"]["content"] for r in hook.received)


def test_generation_the_gpu_refuses_fails_with_reason_and_releases(app, client, make_user, gpu_pool,
                                                                   start_worker, settings_overrides):
    user_id, headers = make_user(credits=20)
    start_worker(gpu_models=["tiny", "not-on-any-host"])
    with app.app_context():
        app.config["ATELIER"].gpu_models.append("not-on-any-host")
    queued = client.post("/api/v1/audio/generations", headers=headers,
                         json={"prompt": "x", "duration": 1, "model": "not-on-any-host"})
    assert queued.status_code == 202
    clip = _wait(client, headers, queued.get_json()["id"])
    assert clip["status"] == "failed" and "does not serve" in clip["failure_reason"]
    wait_for(lambda: _held(app, user_id) == 0, timeout=10, message="the hold to be released")
    with app.app_context():
        assert ledger.balance(user_id) == {**ledger.balance(user_id), "balance": 20, "held": 0}
