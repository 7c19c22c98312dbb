"""Atelier: the application factory. The role (cpu, gpu or all) comes from config and decides what loads."""
from __future__ import annotations

import os
from typing import Any, Mapping

from flask import Flask

from app.config import Settings, load_settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app for the configured role; nothing connects or loads a model before this is called."""
    settings = load_settings(config)
    os.makedirs(settings.instance_dir, exist_ok=True)
    app = Flask(__name__, instance_path=os.path.abspath(settings.instance_dir))
    app.config.update(
        ATELIER=settings,
        SECRET_KEY=settings.secret_key,
        TESTING=settings.environment == "testing",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.is_production,
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["readiness_checks"] = {}

    from app import observability
    from app.errors import register_error_handlers
    from app.routes.health import bp as health_bp

    observability.init_app(app)
    register_error_handlers(app)
    app.register_blueprint(health_bp)

    if settings.serves_cpu:
        _init_cpu_role(app, settings)
    if settings.serves_gpu:
        # Imported here so a cpu-role process never loads torch or diffusers.
        from app import gpu

        gpu.init_app(app)

    from app.cli import register_cli

    register_cli(app)
    return app


def _init_cpu_role(app: Flask, settings: Settings) -> None:
    """Database, sessions, CSRF, rate limits, mail and every cpu-role blueprint."""
    from app import routes, services
    from app.celery_app import celery_init_app
    from app.extensions import csrf, db, limiter, login_manager

    app.config.update(
        SQLALCHEMY_DATABASE_URI=_database_uri(settings),
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_KEY_PREFIX=f"{settings.redis_key_prefix}-limits",
        WTF_CSRF_TIME_LIMIT=None,
    )
    db.init_app(app)
    if settings.database_url.startswith("sqlite"):
        _enforce_sqlite_foreign_keys(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    services.init_app(app)
    celery_init_app(app)
    routes.register_blueprints(app)


def _enforce_sqlite_foreign_keys(app: Flask) -> None:
    """SQLite ignores foreign keys unless asked per connection; without this ON DELETE CASCADE does nothing."""
    from sqlalchemy import event

    from app.extensions import db

    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    with app.app_context():
        event.listen(db.engine, "connect", on_connect)


def _database_uri(settings: Settings) -> str:
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        # Relative SQLite paths are relative to where the process starts; make the folder exist.
        path = os.path.abspath(url[len("sqlite:///"):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return "sqlite:///" + path
    return url


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        # Threads of one process share the file; wait for a lock instead of failing at once.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
