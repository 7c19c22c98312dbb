"""The Idempotency-Key decorator every generating POST wears: a retry gets the first response, charged once."""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import Response, current_app, request
from flask_login import current_user

from app.models import User
from app.services import idempotency

HEADER = "Idempotency-Key"


def _current() -> User | None:
    return current_user if current_user.is_authenticated else None


def _request_fingerprint() -> str:
    """Method, path and body; multipart bodies by their fields and file contents (boundaries differ per send)."""
    if request.mimetype == "multipart/form-data":
        parts: list[bytes | str] = [request.method, request.full_path]
        for name in sorted(request.form):
            parts += [name, "\x01".join(request.form.getlist(name))]
        for name in sorted(request.files):
            for upload in request.files.getlist(name):
                parts += [name, upload.stream.read()]
                upload.stream.seek(0)
        return idempotency.fingerprint(*parts)
    return idempotency.fingerprint(request.method, request.full_path, request.get_data(cache=True))


def idempotent(user_of: Callable[[], User | None] = _current) -> Callable:
    """Store the first 2xx response to (user, key, route) and replay it; a failed request gives the key up."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            key = request.headers.get(HEADER)
            user = user_of() if key is not None else None
            if user is None:  # no key, or not authenticated (the view answers 401)
                return view(*args, **kwargs)
            user_id, route = user.id, f"{request.method} {request.path}"
            stored = idempotency.begin(user_id, key, route, _request_fingerprint())
            if stored is not None:
                response = Response(stored.body, status=stored.status_code, content_type=stored.content_type)
                response.headers["Idempotent-Replayed"] = "true"
                return response
            try:
                response = current_app.make_response(view(*args, **kwargs))
            except BaseException:
                idempotency.abandon(user_id, key, route)
                raise
            if 200 <= response.status_code < 300:
                idempotency.finish(user_id, key, route, response.status_code, response.get_data(as_text=True),
                                   response.content_type)
            else:
                idempotency.abandon(user_id, key, route)
            return response

        return wrapper

    return decorate
