"""API tokens: created with a secret shown once, listed without it, revoked by public id."""
from __future__ import annotations

import uuid

from sqlalchemy import select

from app.errors import ApiError
from app.extensions import db
from app.models import ApiToken, User
from app.services.secrets import hash_token, new_token

TOKEN_PREFIX = "atl_"  # lets people (and secret scanners) recognise an Atelier token
MAX_TOKENS_PER_USER = 50
MAX_NAME_LENGTH = 100


def create_token(user: User, name: object) -> tuple[ApiToken, str]:
    """Create a token for the user; returns the row and the secret, which is never stored or shown again."""
    if not isinstance(name, str) or not name.strip():
        raise ApiError(422, "Give the token a name, so you can tell it apart later.", field="name")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise ApiError(422, f"Use a name of at most {MAX_NAME_LENGTH} characters.", field="name")
    if len(list_tokens(user)) >= MAX_TOKENS_PER_USER:
        raise ApiError(409, f"You already have {MAX_TOKENS_PER_USER} tokens; revoke one first.", code="too_many_tokens")
    secret = TOKEN_PREFIX + new_token()
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(secret), prefix=secret[:12])
    db.session.add(token)
    db.session.commit()
    return token, secret


def list_tokens(user: User) -> list[ApiToken]:
    """The user's tokens, newest first."""
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    ))


def revoke_token(user: User, public_id: object) -> None:
    """Delete one of the user's tokens; 404 when the id is not one of theirs."""
    try:
        parsed = uuid.UUID(str(public_id))
    except ValueError:
        raise ApiError(404, "No such token.") from None
    token = db.session.scalar(select(ApiToken).where(ApiToken.public_id == parsed, ApiToken.user_id == user.id))
    if token is None:
        raise ApiError(404, "No such token.")
    db.session.delete(token)
    db.session.commit()


def serialize_token(token: ApiToken) -> dict:
    """The JSON view of a token, without its secret."""
    return {
        "id": str(token.public_id),
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at.isoformat() if token.created_at else None,
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
    }
