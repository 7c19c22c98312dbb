"""Celery the Flask way: one Celery app per Flask app, tasks run inside the app context.

Production uses Redis as broker and result backend (redis_url). Locally, with no redis_url, kombu's SQLAlchemy
transport keeps the queue in a SQLite file in the instance folder, so `make run` needs no service at all.
"""
from __future__ import annotations

import os

from celery import Celery, Task
from flask import Flask
from kombu import Queue

QUEUES = ("default", "media")
# Long GPU-bound jobs get their own queue so a worker pool can be sized (and scaled) for them alone.
TASK_ROUTES = {"atelier.media.*": {"queue": "media"}}


def _sqlite_url(prefix: str, instance_dir: str, name: str) -> str:
    return f"{prefix}sqlite:///{os.path.abspath(os.path.join(instance_dir, name))}"


def celery_config(settings) -> dict:
    """The Celery settings derived from Atelier's config."""
    broker = settings.celery_broker_url or settings.redis_url or _sqlite_url("sqla+", settings.instance_dir,
                                                                             "celery.db")
    backend = settings.celery_result_backend or settings.redis_url or _sqlite_url(
        "db+", settings.instance_dir, "celery-results.db")
    transport_options: dict = {}
    if broker.startswith(("redis", "rediss", "sqs")):
        transport_options["visibility_timeout"] = settings.celery_visibility_timeout_seconds
    if broker.startswith(("redis", "rediss")):
        # Keys of this deployment only (tests run several deployments against one Redis).
        transport_options["global_keyprefix"] = f"{settings.redis_key_prefix}-celery:"
        # Sweep for a dead worker's unacknowledged messages a few times per visibility timeout (kombu's
        # default sweeps only every ~100 s).
        transport_options["unacked_restore_interval"] = max(1, min(10, settings.celery_visibility_timeout_seconds // 6))
        transport_options["unacked_restore_throttle"] = 1
    config = {
        "broker_url": broker,
        "result_backend": backend,
        "broker_transport_options": transport_options,
        "result_backend_transport_options": dict(transport_options) if backend.startswith("redis") else {},
        "broker_connection_retry_on_startup": True,
        "task_default_queue": "default",
        "task_queues": [Queue(name) for name in QUEUES],
        "task_routes": TASK_ROUTES,
        # A message is acknowledged only after its task finished; a worker that dies mid-task gives it back.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.celery_task_time_limit_seconds,
        "task_soft_time_limit": settings.celery_task_soft_time_limit_seconds,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_expires": 24 * 3600,
        "worker_hijack_root_logger": False,
    }
    if backend.startswith("redis"):
        config["redis_backend_health_check_interval"] = 30
    return config


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app bound to this Flask app and make it the default for @shared_task."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(celery_config(app.config["ATELIER"]))
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
