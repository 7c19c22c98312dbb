"""Business logic as plain functions over the session and models; shared by routes, tasks and the CLI."""
from __future__ import annotations

from flask import Flask
from sqlalchemy import text


def init_app(app: Flask) -> None:
    """Bind the cpu-role services and register what /readyz checks."""
    from app.extensions import db
    from app.services import mailer

    settings = app.config["ATELIER"]
    checks = app.extensions["readiness_checks"]

    def database_answers() -> None:
        db.session.execute(text("SELECT 1"))

    checks["database"] = database_answers
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        app.extensions["redis"] = client
        checks["redis"] = client.ping
    mailer.init_app(app)
    from app.services import referrals  # referral and reward signal receivers
    referrals.init_app(app)
    from app.services import media  # storage backend and image limits
    media.init_app(app)
