"""Asynchronous generation (`Prefer: respond-async`): jobs, their states, cancelling, signed webhooks."""
from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import GenerationJob, Transaction
from app.services import jobs, pricing
from tests.generation.conftest import wait_available

TINY = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 2}
ASYNC = {"Prefer": "respond-async"}


class Recorder(BaseHTTPRequestHandler):
    """A webhook receiver that records what it gets."""

    received: list[dict] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.received.append({"headers": dict(self.headers), "body": body, "path": self.path})
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def webhook():
    """A local HTTP server receiving webhooks; yields its URL."""
    Recorder.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/atelier"
    server.shutdown()


def wait_for(predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def _final(client, headers, job_id):
    def done():
        body = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json
        return body if body["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done)


def test_async_generation_runs_in_the_background_and_signs_its_webhook(app, client, make_user, balance, webhook):
    user_id, headers, _, _ = make_user(credit=100)
    response = client.post("/api/v1/images/generations", json={**TINY, "n": 2, "webhook_url": webhook},
                           headers={**headers, **ASYNC})
    assert response.status_code == 202, response.json
    job = response.json
    assert job["state"] in ("queued", "running", "succeeded")
    assert response.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    final = _final(client, headers, job["id"])
    assert final["state"] == "succeeded" and len(final["result"]["images"]) == 2
    with app.app_context():
        cost = pricing.image_cost("tiny", 64, 64, 2, 2)
        # The hold taken when the job started stays safe from the sweeper for the whole GPU request.
        hold = db.session.get(Transaction, db.session.scalar(
            select(GenerationJob.hold_id).where(GenerationJob.public_id == uuid.UUID(job["id"]))))
        settings = app.config["ATELIER"]
        assert hold.status == "captured" and hold.expires_at >= hold.created_at + timedelta(
            minutes=settings.hold_timeout_minutes, seconds=settings.gpu_request_timeout_seconds - 5)
    assert balance(user_id) == (100 - cost, 0)
    library = client.get("/api/v1/images", headers=headers).json["items"]
    assert {i["id"] for i in library} == {i["id"] for i in final["result"]["images"]}
    hook = wait_for(lambda: Recorder.received)[0]
    assert hook["path"] == "/hooks/atelier"
    payload = json.loads(hook["body"])
    assert payload["id"] == job["id"] and payload["state"] == "succeeded" and len(payload["image_ids"]) == 2
    with app.app_context():
        expected = jobs.sign_webhook(jobs.webhook_secret(), hook["headers"]["X-Atelier-Timestamp"], hook["body"])
    assert hook["headers"]["X-Atelier-Signature"] == expected
    assert hook["headers"]["X-Atelier-Event"] == "job.succeeded"


class ManualExecutor:
    """An executor that runs nothing until the test says so."""

    def __init__(self):
        self.submitted: list[int] = []

    def submit(self, job_id: int) -> None:
        self.submitted.append(job_id)


def test_a_cancelled_queued_job_never_runs_and_holds_nothing(app, client, make_user, balance, image_rows, webhook):
    app.extensions["job_executor"] = executor = ManualExecutor()
    user_id, headers, _, _ = make_user(credit=100)
    job = client.post("/api/v1/images/generations", json={**TINY, "webhook_url": webhook},
                      headers={**headers, **ASYNC}).json
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json["state"] == "queued"
    assert balance(user_id) == (100, 0)
    cancelled = client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json["state"] == "cancelled"
    with app.app_context():
        jobs.run_job(executor.submitted[0])  # the queue delivers it anyway
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json["state"] == "cancelled"
    assert balance(user_id) == (100, 0) and image_rows(user_id) == 0
    ledger = client.get("/api/v1/credits/ledger", headers=headers).json["entries"]
    assert [e["kind"] for e in ledger] == ["grant"]
    assert json.loads(wait_for(lambda: Recorder.received)[0]["body"])["state"] == "cancelled"


def test_validation_and_balance_are_checked_before_queueing(client, make_user):
    _, headers, _, _ = make_user(credit=1)
    bad = client.post("/api/v1/images/generations", json={**TINY, "n": 99}, headers={**headers, **ASYNC})
    assert bad.status_code == 422 and bad.json["error"]["field"] == "n"
    bad_hook = client.post("/api/v1/images/generations", json={**TINY, "webhook_url": "ftp://x"},
                           headers={**headers, **ASYNC})
    assert bad_hook.status_code == 422 and bad_hook.json["error"]["field"] == "webhook_url"
    poor = client.post("/api/v1/images/generations", json={**TINY, "width": 512, "height": 512, "steps": 50},
                       headers={**headers, **ASYNC})
    assert poor.status_code == 402


def test_jobs_are_private(client, make_user):
    _, headers, _, _ = make_user()
    _, other, _, _ = make_user()
    job = client.post("/api/v1/images/generations", json=TINY, headers={**headers, **ASYNC}).json
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=other).status_code == 404
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=other).status_code == 404
    assert client.get("/api/v1/jobs/not-a-uuid", headers=headers).status_code == 404
    _final(client, headers, job["id"])


class TestAgainstTheFaultyHost:
    """Running jobs that are cancelled or fail on the GPU."""

    @pytest.fixture
    def settings_overrides(self, settings_overrides, faulty_stack):
        settings_overrides["proxy_url"] = faulty_stack["proxy"].url
        wait_available(faulty_stack["proxy"])
        return settings_overrides

    def test_cancelling_a_running_job_releases_its_hold_when_it_ends(self, client, make_user, balance, image_rows):
        user_id, headers, _, _ = make_user(credit=100)
        job = client.post("/api/v1/images/generations", json={**TINY, "prompt": "slow:2"},
                          headers={**headers, **ASYNC}).json
        wait_for(lambda: client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json["state"] == "running")
        wait_for(lambda: balance(user_id)[1] > 0)  # the hold is taken once it runs
        assert client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers).json["state"] == "running"
        final = _final(client, headers, job["id"])
        assert final["state"] == "cancelled" and final["result"] is None
        assert balance(user_id) == (100, 0) and image_rows(user_id) == 0

    def test_a_gpu_failure_fails_the_job_and_charges_nothing(self, client, make_user, balance, image_rows):
        user_id, headers, _, _ = make_user(credit=100)
        job = client.post("/api/v1/images/generations", json={**TINY, "prompt": "crash"},
                          headers={**headers, **ASYNC}).json
        final = _final(client, headers, job["id"])
        assert final["state"] == "failed" and final["error"]["status"] == 502
        assert balance(user_id) == (100, 0) and image_rows(user_id) == 0
        finished = client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
        assert finished.status_code == 409
