"""Thin blueprints: parse and validate, call a service, serialize. Registered for the cpu role."""
from __future__ import annotations

from importlib import import_module

from flask import Flask

# Each module exposes `bp`; API blueprints (JSON only, CSRF-safe by content type) are exempt from form CSRF.
API_BLUEPRINTS: tuple[str, ...] = (
    "app.routes.credits_api",
    "app.routes.referrals_api",
    "app.routes.auth_api",
    "app.routes.media_api",
    "app.routes.links_api",
    "app.routes.audio_api",
    "app.routes.videos_api",
    "app.routes.generation_api",
    "app.routes.openai_api",
    "app.routes.sdapi",
    "app.routes.openapi_doc",
)
PAGE_BLUEPRINTS: tuple[str, ...] = (
    "app.routes.credit_pages",
    "app.routes.pages",
    "app.routes.share_pages",
    "app.routes.generate_pages",
    "app.routes.media_job_pages",
    "app.routes.admin_pages",
)


def register_blueprints(app: Flask) -> None:
    """Register every cpu-role blueprint."""
    from app import auth
    from app.extensions import csrf

    auth.init_app(app)
    for module_name in API_BLUEPRINTS:
        blueprint = import_module(module_name).bp
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    for module_name in PAGE_BLUEPRINTS:
        app.register_blueprint(import_module(module_name).bp)
