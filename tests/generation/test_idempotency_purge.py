"""`flask maintenance purge-idempotency` and its cron script: old stored responses go, recent ones still replay."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.extensions import db
from app.models import IdempotentResponse, utcnow
from tests.credits.test_cronjobs import cron

TINY = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 2}


def _keys(app) -> set[str]:
    with app.app_context():
        keys = set(db.session.scalars(select(IdempotentResponse.key)))
        db.session.remove()
        return keys


def _age(app, key: str, hours: float) -> None:
    with app.app_context():
        db.session.execute(update(IdempotentResponse).where(IdempotentResponse.key == key)
                           .values(created_at=utcnow() - timedelta(hours=hours)))
        db.session.commit()


def test_purge_removes_old_responses_and_a_recent_retry_still_replays(app, client, runner, make_user, balance,
                                                                      image_rows):
    user_id, headers, _, _ = make_user(credit=100)

    def send(key: str):
        return client.post("/api/v1/images/generations", json=TINY, headers={**headers, "Idempotency-Key": key})

    old, recent = send("old-order"), send("recent-order")
    assert old.status_code == recent.status_code == 201
    _age(app, "old-order", 30)
    _age(app, "recent-order", 2)

    result = runner.invoke(args=["maintenance", "purge-idempotency"])
    assert result.exit_code == 0, result.output
    assert "purged 1 stored idempotent responses older than 24 hours" in result.output
    assert _keys(app) == {"recent-order"}

    replay = send("recent-order")
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json == recent.json and image_rows(user_id) == 2  # nothing generated or charged again
    assert balance(user_id)[0] == 100 - 2 * recent.json["credits_charged"]

    narrower = runner.invoke(args=["maintenance", "purge-idempotency", "--older-than-hours", "1"])
    assert "purged 1 " in narrower.output and _keys(app) == set()
    refused = runner.invoke(args=["maintenance", "purge-idempotency", "--older-than-hours", "0"])
    assert refused.exit_code == 2 and "older-than-hours" in refused.output


def test_the_cron_script_purges_under_its_lock(app, client, make_user, settings_overrides, tmp_path):
    _, headers, _, _ = make_user(credit=100)
    for key in ("a", "b"):
        client.post("/api/v1/images/generations", json=TINY, headers={**headers, "Idempotency-Key": key})
    _age(app, "a", 25)
    first = cron("purge_idempotency.py", settings_overrides, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "purged 1 stored idempotent responses older than 24 hours" in first.stdout
    assert _keys(app) == {"b"}
    again = cron("purge_idempotency.py", settings_overrides, tmp_path)
    assert again.returncode == 0 and "purged 0 " in again.stdout
