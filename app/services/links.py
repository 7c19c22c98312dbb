"""Share links: a random token that lets anyone view one image, audio clip or video until it is revoked."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update

from app.errors import ApiError
from app.extensions import db
from app.models import Audio, Image, Link, User, Video, utcnow
from app.services.secrets import new_token

# Request field → (model, Link column, kind name).
TARGETS = {
    "image_id": (Image, "image_id", "image"),
    "audio_id": (Audio, "audio_id", "audio"),
    "video_id": (Video, "video_id", "video"),
}


@dataclass(frozen=True)
class SharedItem:
    """A link with the one item it points at."""

    link: Link
    kind: str
    item: Image | Audio | Video


def create_link(user: User, field: str, public_id: str) -> Link:
    """Create a share link to one of the user's own items; someone else's item is 404."""
    model, column, kind = TARGETS[field]
    try:
        parsed = uuid.UUID(str(public_id))
    except ValueError:
        raise ApiError(404, f"No such {kind}.") from None
    item = db.session.scalar(select(model).where(model.public_id == parsed, model.user_id == user.id))
    if item is None:
        raise ApiError(404, f"No such {kind}.")
    link = Link(token=new_token(24), user_id=user.id, **{column: item.id})
    db.session.add(link)
    db.session.commit()
    return link


def list_links(user: User) -> list[SharedItem]:
    """The user's links that still work, newest first (one query per kind of item, not one per link)."""
    links = list(db.session.scalars(
        select(Link).where(Link.user_id == user.id, Link.revoked_at.is_(None))
        .order_by(Link.created_at.desc(), Link.id.desc())))
    loaded: dict[str, dict[int, Image | Audio | Video]] = {}
    for model, column, _ in TARGETS.values():
        ids = {getattr(link, column) for link in links} - {None}
        if ids:
            loaded[column] = {row.id: row for row in db.session.scalars(select(model).where(model.id.in_(ids)))}
    shared = []
    for link in links:
        _, column, kind, item_id = _target(link)
        shared.append(SharedItem(link, kind, loaded[column][item_id]))
    return shared


def revoke_link(user: User, token: str) -> None:
    """Revoke one of the user's links; its page answers 404 from now on."""
    link = db.session.scalar(select(Link).where(Link.token == token, Link.user_id == user.id,
                                                Link.revoked_at.is_(None)))
    if link is None:
        raise ApiError(404, "No such link.")
    link.revoked_at = utcnow()
    db.session.commit()


def _target(link: Link) -> tuple[type, str, str, int]:
    for model, column, kind in TARGETS.values():
        item_id = getattr(link, column)
        if item_id is not None:
            return model, column, kind, item_id
    raise ValueError(f"link {link.id} points at nothing")


def _with_item(link: Link) -> SharedItem:
    model, _, kind, item_id = _target(link)
    return SharedItem(link, kind, db.session.get(model, item_id))


def find_shared(token: str) -> SharedItem:
    """The live link behind a token, without counting a view; 404 when unknown or revoked."""
    link = db.session.scalar(select(Link).where(Link.token == token, Link.revoked_at.is_(None)))
    if link is None:
        raise ApiError(404, "This link does not exist or was revoked.")
    return _with_item(link)


def view_shared(token: str) -> SharedItem:
    """Count one view of a live link (one atomic UPDATE, safe under concurrent visits) and return it."""
    result = db.session.execute(
        update(Link).where(Link.token == token, Link.revoked_at.is_(None))
        .values(views=Link.views + 1).execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:
        raise ApiError(404, "This link does not exist or was revoked.")
    return find_shared(token)


def shared_file(token: str, preview: bool = False) -> tuple[bytes, str]:
    """The bytes behind a live link: the item itself, or its preview (image thumbnail, video poster)."""
    from app.services.storage import get_storage

    shared = find_shared(token)
    item = shared.item
    if preview:
        key = getattr(item, "thumbnail_key", None) or getattr(item, "poster_key", None)
        mime_type = "image/webp" if key and key.endswith(".webp") else "image/png"
    else:
        key, mime_type = item.storage_key, item.mime_type or "application/octet-stream"
    if not key:
        raise ApiError(404, "Nothing to show for this link.")
    try:
        return get_storage().get(key), mime_type
    except FileNotFoundError:
        raise ApiError(404, "This file no longer exists.") from None
