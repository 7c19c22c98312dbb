"""Who is asking: session cookies (Flask-Login) and Bearer API tokens, and the guards routes use."""
from __future__ import annotations

import uuid
from functools import wraps
from typing import Callable

from flask import Flask, g, request
from flask_login import current_user
from sqlalchemy import select

from app.errors import ApiError
from app.extensions import db, login_manager
from app.models import ApiToken, User, utcnow
from app.services.secrets import hash_token


@login_manager.user_loader
def load_user_from_session(session_id: str) -> User | None:
    """Load the session's user only while its epoch matches, so a password reset ends old sessions."""
    public_id, _, epoch = session_id.partition(":")
    try:
        parsed = uuid.UUID(public_id)
        epoch_number = int(epoch)
    except ValueError:
        return None
    user = db.session.scalar(select(User).where(User.public_id == parsed))
    if user is None or user.session_epoch != epoch_number:
        return None
    return user


@login_manager.request_loader
def load_user_from_bearer(req) -> User | None:
    """Authenticate `Authorization: Bearer <token>` against the stored hash of an API token."""
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip())))
    if api_token is None:
        return None
    api_token.last_used_at = utcnow()
    db.session.commit()
    g.api_token_id = api_token.id
    return api_token.user


@login_manager.unauthorized_handler
def unauthorized():
    """API clients get the JSON 401; browsers go to the log-in page."""
    from flask import redirect, url_for

    from app.errors import wants_json

    if wants_json():
        raise ApiError(401, "Log in or send an API token as 'Authorization: Bearer <token>'.")
    return redirect(url_for("pages.login", next=request.full_path))


def authenticated_by_token() -> bool:
    """True when this request was authenticated by an API token rather than a cookie."""
    return g.get("api_token_id") is not None


def api_login_required(view: Callable) -> Callable:
    """Require a logged-in user or a valid API token; answer JSON 401 otherwise."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            raise ApiError(401, "Log in or send an API token as 'Authorization: Bearer <token>'.")
        return view(*args, **kwargs)

    return wrapper


def admin_required(view: Callable) -> Callable:
    """Require an admin; 403 for everyone else."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_admin:
            raise ApiError(403, "This needs an administrator.")
        return view(*args, **kwargs)

    return wrapper


def init_app(app: Flask) -> None:
    """Flask-Login settings; the loaders above are registered on import."""
    login_manager.login_view = "pages.login"
    login_manager.session_protection = "basic"
