"""Long media jobs on the `media` queue: rendering video projects and generating audio.

Each task takes a row id, re-reads the row, and is safe to run twice: a render resumes from the first missing
chunk under the project's lease; settlement and notification happen once whatever the number of runs.
"""
from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app

log = logging.getLogger(__name__)


def _backoff(retries: int) -> int:
    return min(current_app.config["ATELIER"].celery_gpu_retry_backoff_max_seconds, 2 ** (retries + 1))


# A run killed at the hard time limit goes back to the queue (acks_on_timeout=False) and the next run resumes;
# the project's attempts cap stops a job that always runs out of time.
@shared_task(bind=True, name="atelier.media.render_video", max_retries=None, acks_on_timeout=False)
def render_video(self, project_id: int) -> str:
    """Render (part of) a video project; continues in a fresh task when its time slice ends."""
    from app.services import video_render

    settings = current_app.config["ATELIER"]
    try:
        outcome = video_render.render_step(project_id)
    except video_render.PoolUnavailable as exc:
        if self.request.retries >= settings.celery_gpu_retries:
            video_render.fail(project_id, f"the GPU pool stayed unavailable: {exc}")
            return "failed"
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc)
    except SoftTimeLimitExceeded:
        # Stored chunks stay and the next run resumes after them; a run cut short without progress still counts
        # towards the cap, so a job that never fits in the limits ends as failed.
        video_render.release_lease(project_id, ended_on_purpose=False)
        render_video.apply_async((project_id,), countdown=1)
        return "continue"
    if outcome == "continue":
        render_video.apply_async((project_id,))
    elif outcome == "busy":
        # Another run holds the lease (a duplicate message, or a dead worker's lease not yet run out).
        if self.request.retries < settings.celery_gpu_retries:
            raise self.retry(countdown=max(1, settings.video_render_lease_seconds // 2))
    return outcome


@shared_task(bind=True, name="atelier.media.generate_audio", max_retries=None, acks_on_timeout=False)
def generate_audio(self, audio_id: int) -> str:
    """Generate one audio clip on the GPU pool."""
    from app.services import audio

    settings = current_app.config["ATELIER"]
    try:
        return audio.generate(audio_id)
    except audio.PoolUnavailable as exc:
        if self.request.retries >= settings.celery_gpu_retries:
            audio.fail(audio_id, f"the GPU pool stayed unavailable: {exc}")
            return "failed"
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc)


@shared_task(name="atelier.enqueue_video_renders")
def enqueue_video_renders() -> list[int]:
    """Queue the projects waiting for the batch (what the cron job runs)."""
    from app.services import videos

    return videos.enqueue_due()
