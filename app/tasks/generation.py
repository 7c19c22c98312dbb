"""Asynchronous image generation jobs on the default queue (used when job_executor is "celery")."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="atelier.generation.run_job", acks_late=True)
def run_generation_job(job_id: int) -> str:
    """Run one queued generation job; a second delivery finds it no longer queued and does nothing."""
    from app.extensions import db
    from app.models import GenerationJob
    from app.services import jobs

    jobs.run_job(job_id)
    job = db.session.get(GenerationJob, job_id)
    return job.state if job is not None else "gone"
