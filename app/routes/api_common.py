"""Helpers every JSON API route uses: reading the body, paging, and the CSRF rule for cookie clients."""
from __future__ import annotations

from typing import Any

from flask import request
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError

from app.auth import authenticated_by_token
from app.errors import ApiError


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400/415 that says what is wrong.

    Requiring a JSON content type is what makes cookie-authenticated API calls safe from CSRF:
    a cross-site HTML form cannot send application/json without a CORS preflight, which we never allow.
    """
    if not request.is_json:
        raise ApiError(415, "Send the request body as JSON with 'Content-Type: application/json'.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return data


def require_string(data: dict[str, Any], name: str, *, max_length: int = 1000, required: bool = True) -> str | None:
    """A string field, trimmed; 422 naming the field when it is missing or not a string."""
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(422, f"'{name}' is required.", field=name)
        return None
    if not isinstance(value, str):
        raise ApiError(422, f"'{name}' must be a string.", field=name)
    value = value.strip()
    if required and not value:
        raise ApiError(422, f"'{name}' must not be empty.", field=name)
    if len(value) > max_length:
        raise ApiError(422, f"'{name}' must be at most {max_length} characters.", field=name)
    return value


def page_args(default_limit: int = 20, max_limit: int = 100) -> tuple[int, str | None]:
    """The `limit` and `cursor` query arguments, checked."""
    raw = request.args.get("limit", str(default_limit))
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(422, "'limit' must be a whole number.", field="limit") from None
    if not 1 <= limit <= max_limit:
        raise ApiError(422, f"'limit' must be between 1 and {max_limit}.", field="limit")
    return limit, request.args.get("cursor") or None


def require_csrf_for_cookie_clients() -> None:
    """Multipart bodies can be sent by cross-site forms, so cookie sessions must prove the CSRF token."""
    if authenticated_by_token():
        return
    try:
        validate_csrf(request.headers.get("X-CSRFToken") or request.form.get("csrf_token"))
    except ValidationError:
        raise ApiError(403, "Send the page's CSRF token in the X-CSRFToken header, or use an API token.",
                       code="csrf_failed") from None


def read_upload(field: str, limit: int, what: str) -> tuple[bytes, str | None]:
    """The bytes and file name of one multipart file, refusing bodies over `limit` (413) before reading them all."""
    require_csrf_for_cookie_clients()
    # Multipart framing adds a little; a body far beyond the limit (chunked ones too) is refused while reading.
    request.max_content_length = limit + 64 * 1024
    if request.content_length is not None and request.content_length > request.max_content_length:
        raise ApiError(413, f"The {what} is larger than {limit} bytes.")
    upload = request.files.get(field)
    if upload is None:
        raise ApiError(422, f"Send the {what} as the multipart field '{field}'.", field=field)
    return upload.stream.read(limit + 1), upload.filename
