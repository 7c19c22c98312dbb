"""Idempotent POSTs: the first response to (user, Idempotency-Key, route) is stored and replayed to retries."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app.errors import ApiError
from app.extensions import db
from app.models import IdempotentResponse, utcnow

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredResponse:
    """A response to replay."""

    status_code: int
    body: str
    content_type: str


def fingerprint(*parts: bytes | str) -> str:
    """A hash of what identifies a request (method, path, body)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def check_key(key: str) -> str:
    """422 for a key that is empty or too long."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(422, f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable characters.",
                       field="Idempotency-Key")
    return key


def begin(user_id: int, key: str, route: str, print_: str) -> StoredResponse | None:
    """Claim the key for this request (None: go ahead) or return the stored first response.

    409 when the key was used with a different request, or when the first request is still running.
    """
    db.session.add(IdempotentResponse(user_id=user_id, key=check_key(key), route=route, fingerprint=print_))
    try:
        db.session.commit()
        return None
    except IntegrityError:
        db.session.rollback()
    row = db.session.scalar(select(IdempotentResponse).where(
        IdempotentResponse.user_id == user_id, IdempotentResponse.key == key, IdempotentResponse.route == route))
    if row is None:  # the first request failed and gave the key up in between; let this one run
        return begin(user_id, key, route, print_)
    if row.fingerprint != print_:
        raise ApiError(409, "This Idempotency-Key was already used with a different request.",
                       code="idempotency_conflict")
    if row.status_code is None:
        raise ApiError(409, "A request with this Idempotency-Key is still running; retry when it has finished.",
                       code="idempotency_in_progress", headers={"Retry-After": "2"})
    return StoredResponse(row.status_code, row.body or "", row.content_type or "application/json")


def finish(user_id: int, key: str, route: str, status_code: int, body: str, content_type: str) -> None:
    """Store the response a retry will get."""
    db.session.execute(update(IdempotentResponse).where(
        IdempotentResponse.user_id == user_id, IdempotentResponse.key == key, IdempotentResponse.route == route
    ).values(status_code=status_code, body=body, content_type=content_type))
    db.session.commit()


def abandon(user_id: int, key: str, route: str) -> None:
    """Give the key up after a failed request (nothing was charged), so a retry runs again."""
    db.session.rollback()
    db.session.execute(delete(IdempotentResponse).where(
        IdempotentResponse.user_id == user_id, IdempotentResponse.key == key, IdempotentResponse.route == route))
    db.session.commit()


def purge(older_than_hours: int = 24, now: datetime | None = None) -> int:
    """Delete stored responses created more than OLDER_THAN_HOURS ago; retries after that run as new requests."""
    if older_than_hours < 1:  # a younger row may belong to a request still running, which would then run twice
        raise ValueError("older_than_hours must be at least 1")
    cutoff = (now or utcnow()) - timedelta(hours=older_than_hours)
    result = db.session.execute(delete(IdempotentResponse).where(IdempotentResponse.created_at < cutoff))
    db.session.commit()
    return result.rowcount
