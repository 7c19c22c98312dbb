"""Helpers every JSON API route uses: reading the body, paging, and the CSRF rule for cookie clients."""
from __future__ import annotations

from typing import Any

from flask import request

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
