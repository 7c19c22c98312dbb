"""Celery tasks (@shared_task): they take ids, re-read rows, and are safe to run twice."""
from app.tasks import media  # noqa: F401
from app.tasks import generation  # noqa: F401
