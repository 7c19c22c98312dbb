"""The one JSON error shape, {"error": {"code", "message"}}, and the handlers that produce it."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Statuses and the code name clients see for them when a handler gives none.
DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    402: "insufficient_credits",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


class ApiError(Exception):
    """An error a service raises to answer a client with a status, a code and a message."""

    def __init__(self, status: int, message: str, code: str | None = None, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or DEFAULT_CODES.get(status, "error")
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_response(status: int, message: str, code: str | None = None, field: str | None = None,
                   headers: dict[str, str] | None = None):
    """Build the JSON error response every API route answers with."""
    body: dict = {"code": code or DEFAULT_CODES.get(status, "error"), "message": message}
    if field:
        body["field"] = field
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def wants_json() -> bool:
    """API paths and clients that ask for JSON get JSON errors; browsers get pages."""
    path = request.path
    if path.startswith(("/api/", "/v1/", "/sdapi/", "/gpu/", "/healthz", "/readyz")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def register_error_handlers(app: Flask) -> None:
    """Route every error through one handler so the shape never varies."""

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError):
        return error_response(error.status, error.message, error.code, error.field, error.headers)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        headers = {}
        if error.code == 429:
            retry_after = _retry_after(error)
            if retry_after:
                headers["Retry-After"] = retry_after
        if wants_json():
            message = error.description or error.name
            if error.code == 429:
                message = f"Too many requests: {error.description}. Try again later."
            response = error_response(error.code or 500, message, headers=headers)
            if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
                response.headers["Allow"] = ", ".join(error.valid_methods)
            return response
        return _error_page(error.code or 500, error.name, error.description, headers)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        _rollback_session(app)
        if wants_json():
            return error_response(500, "Something went wrong on our side; nothing was charged.")
        return _error_page(500, "Server error", "Something went wrong on our side.", {})


def _retry_after(error: HTTPException) -> str | None:
    response = error.get_response()
    value = response.headers.get("Retry-After")
    if value:
        return value
    limit = getattr(error, "limit", None)
    if limit is not None:
        try:
            return str(int(limit.limit.get_expiry()))
        except Exception:  # the limiter's internals differ between versions
            return None
    return None


def _rollback_session(app: Flask) -> None:
    if "sqlalchemy" in app.extensions:
        from app.extensions import db

        db.session.rollback()


def _error_page(status: int, title: str, message: str | None, headers: dict[str, str]):
    try:
        body = render_template("error.html", status=status, title=title, message=message)
    except Exception:  # a gpu-role process has no templates worth rendering
        body = f"<h1>{status} {title}</h1><p>{message or ''}</p>"
    return body, status, headers
