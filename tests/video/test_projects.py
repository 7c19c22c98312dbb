"""Video projects without a worker: validation, the audio-reactive schedule preview, batch queueing by the cron
command, cancel with partial capture, failures with release and notification, the redelivery cap."""
from __future__ import annotations

import os
import subprocess
import sys

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Transaction, VideoProject, utcnow
from app.services import credits as ledger
from app.services import video_render
from tests.gpu.conftest import ROOT, base_env
from tests.video.conftest import make_wav, upload_wav, wait_for


def _clip(client, headers, seconds=2.0, clicks=2) -> str:
    return upload_wav(client, headers, make_wav(seconds, clicks_per_second=clicks)).get_json()["id"]


def _create(client, headers, **body) -> dict:
    payload = {"width": 64, "height": 64, "steps": 2, "fps": 8,
               "prompts": [{"at": 0, "prompt": "fox", "seed": 1}, {"at": 2.0, "prompt": "sea", "seed": 2}], **body}
    return client.post("/api/v1/video-projects", headers=headers, json=payload)


def _balance(app, user_id):
    with app.app_context():
        return ledger.balance(user_id)


@pytest.mark.parametrize("change, field", [
    ({"prompts": [{"at": 1, "prompt": "late start", "seed": 1}]}, "prompts"),
    ({"prompts": [{"at": 0, "prompt": "a", "seed": 1}, {"at": 0, "prompt": "b", "seed": 2}]}, "prompts"),
    ({"prompts": [{"at": 0, "prompt": "a", "seed": 1}, {"at": 9, "prompt": "after the end", "seed": 2}]}, "prompts"),
    ({"prompts": [{"at": 0, "prompt": "", "seed": 1}]}, "prompts"),
    ({"width": 65}, "width"),
    ({"steps": 0}, "steps"),
    ({"smooth": 1.5}, "smooth"),
    ({"model": "nope"}, "model"),
])
def test_bad_projects_are_422_naming_the_field(app, client, make_user, change, field):
    _, headers = make_user()
    response = _create(client, headers, audio_id=_clip(client, headers), **change)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field
    with app.app_context():
        assert db.session.scalar(select(VideoProject)) is None


def test_schedule_follows_the_clicks_and_smooth_blends_to_linear(client, make_user):
    _, headers = make_user()
    project = _create(client, headers, audio_id=_clip(client, headers, 2.0, clicks=2), smooth=0.0).get_json()
    curve = client.get(f"/api/v1/video-projects/{project['id']}/schedule", headers=headers).get_json()
    points = curve["points"]
    assert curve["frames"] == 16 and curve["fps"] == 8
    ts = [p["t"] for p in points]
    assert ts[0] == 0 and ts == sorted(ts) and ts[-1] < 1
    steps = [b - a for a, b in zip(ts, ts[1:])]
    # Clicks at 0 s and 0.5 s, 1.0 s, 1.5 s: the frames during a click move much further than the quiet ones.
    quiet = sorted(s for i, s in enumerate(steps) if i % 4)
    assert all(steps[i] > 5 * quiet[len(quiet) // 2] for i in (0, 4, 8, 12)), steps
    linear = client.get(f"/api/v1/video-projects/{project['id']}/schedule?smooth=1", headers=headers).get_json()
    assert [p["t"] for p in linear["points"]] == pytest.approx([i / 16 for i in range(16)], abs=1e-6)
    assert client.get(f"/api/v1/video-projects/{project['id']}/schedule?smooth=x",
                      headers=headers).status_code == 422


def test_batch_render_waits_for_the_cron_command_and_cancel_charges_only_delivered_frames(
        app, client, make_user, settings_overrides, tmp_path):
    user_id, headers = make_user(credits=50)
    project = _create(client, headers, audio_id=_clip(client, headers)).get_json()
    queued = client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    assert queued.status_code == 202 and queued.get_json()["status"] == "queued"
    assert _balance(app, user_id)["held"] == 8
    assert client.patch(f"/api/v1/video-projects/{project['id']}", headers=headers,
                        json={"steps": 3}).get_json()["error"]["code"] == "project_busy"
    assert client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers,
                       json={}).status_code == 409

    # The cron script, for real, in its own process: it sends the waiting project to the queue once.
    (tmp_path / "cron").mkdir()
    env = {**os.environ, **base_env(tmp_path / "cron", **settings_overrides)}
    run = subprocess.run([sys.executable, "cronjobs/render_videos.py"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and "enqueued 1 video project" in run.stdout, run.stderr[-2000:]
    again = subprocess.run([sys.executable, "cronjobs/render_videos.py"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
    assert "enqueued 0 video project" in again.stdout

    # Pretend a render delivered 8 of its 16 frames, then the user cancels: half the quote is charged.
    with app.app_context():
        row = db.session.scalar(select(VideoProject))
        row.status, row.frames_done, row.credits_used = "rendering", 8, 4
        db.session.commit()
    cancelled = client.post(f"/api/v1/video-projects/{project['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert _balance(app, user_id) == {**_balance(app, user_id), "balance": 46, "held": 0}
    assert client.post(f"/api/v1/video-projects/{project['id']}/cancel", headers=headers).status_code == 200
    assert _balance(app, user_id)["balance"] == 46


def test_render_without_enough_credits_is_402_and_stays_a_draft(client, make_user):
    _, headers = make_user(credits=3)
    project = _create(client, headers, audio_id=_clip(client, headers)).get_json()
    response = client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={})
    assert response.status_code == 402
    assert client.get(f"/api/v1/video-projects/{project['id']}", headers=headers).get_json()["status"] == "draft"


def test_poison_render_ends_failed_with_credits_released_and_owner_told(app, client, make_user, outbox):
    user_id, headers = make_user(credits=50)
    project = _create(client, headers, audio_id=_clip(client, headers)).get_json()
    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    with app.app_context():
        row = db.session.scalar(select(VideoProject))
        row.render_attempts = 3  # three runs died without finishing (celery_max_redeliveries is 3)
        db.session.commit()
        assert video_render.render_step(row.id) == "stopped"
    state = client.get(f"/api/v1/video-projects/{project['id']}", headers=headers).get_json()
    assert state["status"] == "failed" and "died 3 times" in state["failure_reason"]
    assert _balance(app, user_id) == {**_balance(app, user_id), "balance": 50, "held": 0}
    mails = outbox()
    assert len(mails) == 1 and "failed" in mails[0]["subject"]


def test_unreachable_gpu_pool_is_retried_with_backoff_then_fails_and_releases(app, client, make_user,
                                                                              start_worker):
    user_id, headers = make_user(credits=50)
    project = _create(client, headers, audio_id=_clip(client, headers)).get_json()
    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    with app.app_context():
        project_id = db.session.scalar(select(VideoProject.id))
    worker = start_worker(proxy_url="http://127.0.0.1:9", celery_gpu_retries=2,
                          celery_gpu_retry_backoff_max_seconds=1)
    with app.app_context():
        from app.services import videos

        videos.enqueue(project_id)
    state = wait_for(lambda: (lambda s: s["status"] == "failed" and s)(
        client.get(f"/api/v1/video-projects/{project['id']}", headers=headers).get_json()), timeout=90,
        message="the render to give up")
    assert "GPU pool stayed unavailable" in state["failure_reason"]
    assert worker.output().count("Retry in") >= 2
    assert _balance(app, user_id) == {**_balance(app, user_id), "balance": 50, "held": 0}
    with app.app_context():
        hold = db.session.scalar(select(Transaction).where(Transaction.kind == "hold"))
        assert hold.status == "released"


def test_a_batch_render_that_waits_past_the_hold_timeout_captures_its_own_hold(app, client, make_user, gpu_pool):
    user_id, headers = make_user(credits=50)
    project = _create(client, headers, audio_id=_clip(client, headers)).get_json()
    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    with app.app_context():
        row = db.session.scalar(select(VideoProject))
        timeout = timedelta(minutes=app.config["ATELIER"].hold_timeout_minutes)
        # The sweeper runs long after a hold's timeout while the project still waits for the batch.
        assert ledger.sweep_stale_holds(now=utcnow() + 3 * timeout) == 0
        # The batch window is almost over when the render starts: its heartbeat moves the deadline on.
        db.session.execute(update(Transaction).where(Transaction.id == row.hold_id)
                           .values(expires_at=utcnow() + timedelta(seconds=30)))
        db.session.commit()
        started = utcnow()
        assert video_render.render_step(row.id) == "done"
        hold = db.session.get(Transaction, row.hold_id)
        assert hold.status == "captured" and hold.expires_at >= started + timeout
        settled = db.session.scalars(select(Transaction).where(Transaction.hold_id == hold.id)).all()
        assert [(t.kind, t.amount) for t in settled] == [("capture", 8)]
        assert db.session.scalar(select(Transaction).where(Transaction.kind == "spend")) is None
        assert (ledger.balance(user_id)["balance"], ledger.balance(user_id)["held"]) == (42, 0)
        assert ledger.audit().ok


def test_a_hold_released_after_its_deadline_is_charged_once_and_never_beyond_the_balance(app, client, make_user):
    user_id, headers = make_user(credits=50)
    project = _create(client, headers, audio_id=_clip(client, headers)).get_json()
    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    with app.app_context():
        from app.services import videos

        row = db.session.scalar(select(VideoProject))
        # Nothing sent the batch or renewed the hold for longer than its window: the sweeper releases it.
        assert ledger.sweep_stale_holds(now=utcnow() + videos.BATCH_HOLD_WINDOW + timedelta(minutes=1)) == 1
        ledger.spend(user_id, 45)  # the user spent the released credits meanwhile: 5 are left of 8
        row.status = "ready"
        db.session.commit()
        videos.settle(row)
        videos.settle(row)
        assert ledger.balance(user_id)["balance"] == 0
        spends = db.session.scalars(select(Transaction).where(Transaction.kind == "spend")
                                    .order_by(Transaction.id)).all()
        assert [s.amount for s in spends] == [45, 5]
        ledger.grant(user_id, 20)
        videos.settle(row)  # a late repeat charges nothing more
        assert ledger.balance(user_id)["balance"] == 20 and ledger.audit().ok


def test_the_cron_that_sends_a_batch_render_renews_its_hold_until_a_worker_picks_it_up(app, client, make_user):
    user_id, headers = make_user(credits=50)
    project = _create(client, headers, audio_id=_clip(client, headers)).get_json()
    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    with app.app_context():
        from app.services import videos

        row = db.session.scalar(select(VideoProject))
        db.session.execute(update(Transaction).where(Transaction.id == row.hold_id)
                           .values(expires_at=utcnow() + timedelta(seconds=30)))
        db.session.commit()
        sent = utcnow()
        assert videos.enqueue_due() == [row.id]
        timeout = timedelta(minutes=app.config["ATELIER"].hold_timeout_minutes)
        assert ledger.sweep_stale_holds(now=sent + timeout - timedelta(minutes=1)) == 0
        assert db.session.get(Transaction, row.hold_id).status == "active"
