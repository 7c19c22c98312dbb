"""The GPU role: pipelines, batching and the internal GPU API. Imported only when the role includes gpu."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Build this host's engine, register the GPU API and the `pipelines` readiness check, start preloading."""
    from app.gpu.api import bp
    from app.gpu.audio import bp as audio_bp
    from app.gpu.registry import Engine

    engine = Engine(app.config["ATELIER"])
    app.extensions["gpu_engine"] = engine
    app.extensions["readiness_checks"]["pipelines"] = engine.check_ready
    if "csrf" in app.extensions:  # role all: signed JSON, not forms, so form CSRF does not apply
        app.extensions["csrf"].exempt(bp)
        app.extensions["csrf"].exempt(audio_bp)
    app.register_blueprint(bp)
    app.register_blueprint(audio_bp)
    engine.start()
