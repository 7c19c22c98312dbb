"""Asynchronous generation jobs (`Prefer: respond-async`): rows in `jobs`, run by an executor, signed webhooks.

The executor is an interface with one method, submit(job_id). ThreadExecutor (job_executor "thread", the default)
runs jobs on a small thread pool inside the web process; CeleryExecutor ("celery") sends a task that calls
run_job(job_id) in a worker (run_job re-reads the row and is safe to run twice: only a queued job starts).
A queued job holds no credits; it holds the price when it starts and captures or releases it when it ends.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import requests
from flask import Flask, current_app
from sqlalchemy import select, update

from app.errors import ApiError
from app.extensions import db
from app.models import GenerationJob, Image, User, utcnow
from app.services import generation, media, outbound

log = logging.getLogger(__name__)
FINISHED = ("succeeded", "failed", "cancelled")
WEBHOOK_TIMEOUT_S = 10


class Executor(Protocol):
    """Runs jobs somewhere else than the request that created them."""

    def submit(self, job_id: int) -> None: ...


class ThreadExecutor:
    """A thread pool in the web process; each job runs inside the app's context."""

    def __init__(self, app: Flask, workers: int):
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="atelier-job")

    def submit(self, job_id: int) -> None:
        """Queue the job to run on a pool thread."""
        self.pool.submit(self._run, job_id)

    def _run(self, job_id: int) -> None:
        with self.app.app_context():
            try:
                run_job(job_id)
            except Exception:  # a job failure is recorded on its row; this is a bug in run_job itself
                log.exception("job %s crashed", job_id)
            finally:
                db.session.remove()


class CeleryExecutor:
    """Sends each job to a Celery worker (task atelier.generation.run_job on the default queue)."""

    def submit(self, job_id: int) -> None:
        """Queue the job for a worker."""
        from app.tasks.generation import run_generation_job

        run_generation_job.delay(job_id)


def executor() -> Executor:
    """This app's executor (created on first use): job_executor "thread" (default) or "celery"."""
    app = current_app._get_current_object()
    if "job_executor" not in app.extensions:
        settings = app.config["ATELIER"]
        app.extensions["job_executor"] = (CeleryExecutor() if settings.job_executor == "celery"
                                          else ThreadExecutor(app, settings.job_workers))
    return app.extensions["job_executor"]


def create_job(user: User, operation: str, data: dict, image_id: str | None = None,
               webhook_url: str | None = None, request_id: str | None = None) -> GenerationJob:
    """Validate and price the request now (422/402/403 answer at once), then queue it; holds nothing yet."""
    webhook_url = outbound.check_url(webhook_url, "webhook_url")
    data = dict(data)
    data.pop("webhook_url", None)
    if operation == "edits" and data.get("mask") is not None:
        # Bytes never go into rows: a mask sent inline becomes an upload in the library, referenced by id.
        mask = media.store_upload(user, generation.decode_base64_image(data.pop("mask"), "mask"), "mask")
        data["mask_id"] = str(mask.public_id)
    plan = generation.plan(user, operation, data, image_id)
    generation.check_affordable(user, plan)
    data["seed"] = plan.seed  # the seed the result will have, fixed now so a rerun gives the same images
    job = GenerationJob(user_id=user.id, operation=operation, state="queued", webhook_url=webhook_url,
                        params={"data": data, "image_id": image_id}, request_id=request_id)
    db.session.add(job)
    db.session.commit()
    executor().submit(job.id)
    return job


def find_job(user: User, public_id: str) -> GenerationJob:
    """The user's job; 404 for anyone else's."""
    try:
        parsed = uuid.UUID(str(public_id))
    except ValueError:
        raise ApiError(404, "No such job.") from None
    job = db.session.scalar(select(GenerationJob).where(GenerationJob.public_id == parsed,
                                                        GenerationJob.user_id == user.id))
    if job is None:
        raise ApiError(404, "No such job.")
    return job


def result_images(job: GenerationJob) -> list[Image]:
    """The images a succeeded job made (those still in the library)."""
    ids = [uuid.UUID(i) for i in (job.result or {}).get("image_ids", [])]
    if not ids:
        return []
    rows = {row.public_id: row for row in db.session.scalars(select(Image).where(Image.public_id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def cancel_job(user: User, public_id: str) -> GenerationJob:
    """Cancel a queued job (it never runs) or ask a running one to stop (its hold is released when it ends)."""
    job = find_job(user, public_id)
    now = utcnow()
    cancelled = db.session.execute(
        update(GenerationJob).where(GenerationJob.id == job.id, GenerationJob.state == "queued")
        .values(state="cancelled", cancel_requested=True, finished_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if not cancelled:
        db.session.execute(
            update(GenerationJob).where(GenerationJob.id == job.id, GenerationJob.state == "running")
            .values(cancel_requested=True).execution_options(synchronize_session=False))
    db.session.commit()
    db.session.refresh(job)
    if cancelled:
        _notify(job)
    elif job.state in FINISHED and job.state != "cancelled":
        raise ApiError(409, f"This job has already {job.state}.", code="job_finished")
    return job


def _cancel_requested(job_id: int) -> bool:
    db.session.rollback()  # read what other requests committed since
    return bool(db.session.scalar(select(GenerationJob.cancel_requested).where(GenerationJob.id == job_id)))


def run_job(job_id: int) -> None:
    """Run one queued job to its end (safe to call twice: only a queued job starts)."""
    started = db.session.execute(
        update(GenerationJob).where(GenerationJob.id == job_id, GenerationJob.state == "queued")
        .values(state="running", started_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if not started:
        return
    job = db.session.get(GenerationJob, job_id)
    user = db.session.get(User, job.user_id)
    state, result, error = "failed", None, None

    def remember_hold(hold_id: int) -> None:
        db.session.execute(update(GenerationJob).where(GenerationJob.id == job_id).values(hold_id=hold_id))
        db.session.commit()

    try:
        plan = generation.plan(user, job.operation, job.params["data"], job.params.get("image_id"))
        images = generation.execute(user, plan, request_id=job.request_id, on_hold=remember_hold,
                                    cancelled=lambda: _cancel_requested(job_id))
        state, result = "succeeded", {"image_ids": [str(image.public_id) for image in images]}
    except generation.GenerationCancelled:
        state = "cancelled"
    except ApiError as exc:
        error = {"status": exc.status, "code": exc.code, "message": exc.message}
    except Exception:
        log.exception("job %s failed", job_id)
        error = {"status": 500, "code": "internal_error", "message": "The job failed on our side; nothing was charged."}
    db.session.rollback()
    db.session.execute(update(GenerationJob).where(GenerationJob.id == job_id).values(
        state=state, result=result, error=error, finished_at=utcnow()))
    db.session.commit()
    _notify(db.session.get(GenerationJob, job_id))


def webhook_secret() -> str:
    """The key that signs webhooks: webhook_secret, or one derived from secret_key."""
    settings = current_app.config["ATELIER"]
    if settings.webhook_secret:
        return settings.webhook_secret
    return hmac.new(settings.secret_key.encode(), b"atelier-webhooks", hashlib.sha256).hexdigest()


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 over TIMESTAMP + "." + BODY."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_payload(job: GenerationJob) -> dict:
    """What a webhook says about a finished job."""
    base = current_app.config["ATELIER"].base_url.rstrip("/")
    return {"id": str(job.public_id), "state": job.state, "operation": job.operation,
            "url": f"{base}/api/v1/jobs/{job.public_id}",
            "image_ids": (job.result or {}).get("image_ids", []), "error": job.error,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}


def _notify(job: GenerationJob) -> None:
    """POST the signed webhook, with one retry; a receiver that fails does not change the job."""
    if not job.webhook_url:
        return
    body = json.dumps(webhook_payload(job)).encode()
    for attempt in range(2):
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": "Atelier-Webhooks/1",
                   "X-Atelier-Event": f"job.{job.state}", "X-Atelier-Timestamp": stamp,
                   "X-Atelier-Signature": sign_webhook(webhook_secret(), stamp, body)}
        try:
            response = outbound.post(job.webhook_url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT_S)
            if response.status_code < 500:
                return
        except outbound.UnsafeURL as exc:  # retrying cannot make the address acceptable
            log.warning("webhook for job %s refused: %s", job.public_id, exc)
            return
        except requests.RequestException as exc:
            log.warning("webhook for job %s failed: %s", job.public_id, exc)
        time.sleep(1 + attempt)
