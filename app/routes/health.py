"""Liveness and readiness, on every role."""
from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify({"status": "ok", "role": current_app.config["ATELIER"].server_type})


@bp.get("/readyz")
def readyz():
    """Every dependency of this role answers (database and Redis for cpu; pipelines for gpu)."""
    checks = {}
    for name, check in current_app.extensions["readiness_checks"].items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; say which and why
            checks[name] = f"failed: {exc.__class__.__name__}: {exc}"[:300]
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks,
            "role": current_app.config["ATELIER"].server_type}
    return jsonify(body), 200 if ready else 503
