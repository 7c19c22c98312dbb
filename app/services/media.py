"""The image library: storing images with thumbnails, listing, lineage, publishing and deleting."""
from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from flask import Flask, current_app
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import selectinload

from app.errors import ApiError
from app.extensions import db
from app.models import Image, User, utcnow
from app.models.media import IMAGE_KINDS
from app.services import images as imaging
from app.services import storage as storage_service
from app.services.storage import Storage, get_storage

log = logging.getLogger(__name__)


@dataclass
class ImageParams:
    """How an image came to be; what the generation endpoints pass to store_generated_image."""

    kind: str = "txt2img"
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    scheduler: str | None = None
    model_id: str | None = None
    strength: float | None = None
    parent: Image | None = None
    title: str | None = None


@dataclass(frozen=True)
class ImageFilters:
    """Filters of the library listing; None means 'any'."""

    liked: bool | None = None
    public: bool | None = None
    kind: str | None = None
    model: str | None = None


def init_app(app: Flask) -> None:
    """Bind the storage backend and make Pillow refuse images beyond the configured pixel limit."""
    storage_service.init_app(app)
    settings = app.config["ATELIER"]
    # Pillow warns at MAX_IMAGE_PIXELS and refuses at twice that; our own header check refuses at the limit.
    imaging.set_pixel_limit(max(settings.upload_max_pixels, 4096 * 4096))


def _settings():
    return current_app.config["ATELIER"]


def _owner_folder(user: User | None) -> str:
    return str(user.public_id) if user is not None else "templates"


def _store_row(user: User | None, encoded: imaging.EncodedImage, params: ImageParams, *,
               is_template: bool = False, commit: bool = True) -> Image:
    """Put the bytes and thumbnail, then the row; whatever fails, nothing is left half-written."""
    if params.kind not in IMAGE_KINDS:
        raise ValueError(f"unknown image kind {params.kind!r}")
    public_id = uuid.uuid4()
    folder = _owner_folder(user)
    key = f"images/{folder}/{public_id}.{encoded.extension}"
    thumbnail = imaging.make_thumbnail(encoded.data)
    thumbnail_key = f"thumbnails/{folder}/{public_id}.{thumbnail.extension}"
    storage = get_storage()
    stored: list[str] = []
    try:
        storage.put(key, encoded.data, encoded.mime_type)
        stored.append(key)
        storage.put(thumbnail_key, thumbnail.data, thumbnail.mime_type)
        stored.append(thumbnail_key)
        image = Image(
            public_id=public_id, user_id=user.id if user is not None else None, kind=params.kind,
            storage_key=key, thumbnail_key=thumbnail_key, mime_type=encoded.mime_type,
            byte_size=len(encoded.data), content_hash=encoded.content_hash, width=encoded.width,
            height=encoded.height, title=params.title, prompt=params.prompt,
            negative_prompt=params.negative_prompt, seed=params.seed, steps=params.steps,
            guidance=params.guidance, scheduler=params.scheduler, model_id=params.model_id,
            strength=params.strength, parent_id=params.parent.id if params.parent is not None else None,
            is_template=is_template,
        )
        db.session.add(image)
        if commit:
            db.session.commit()
        else:
            db.session.flush()
    except BaseException:
        db.session.rollback()
        _delete_keys(storage, stored)
        raise
    return image


def _delete_keys(storage: Storage, keys: Iterable[str | None]) -> None:
    for key in keys:
        if not key:
            continue
        try:
            storage.delete(key)
        except Exception:  # an orphaned object is harmless; a failed request is not
            log.exception("could not delete stored object %s", key)


def store_generated_image(user: User, png_bytes: bytes, params: ImageParams, *, commit: bool = True) -> Image:
    """Store a generated PNG with its thumbnail, hash, size and parameters; all or nothing.

    With commit=False the row is only flushed: a caller that then rolls back must call delete_image_files.
    """
    encoded = imaging.inspect_png(png_bytes, max(_settings().upload_max_pixels, 4096 * 4096))
    return _store_row(user, encoded, params, commit=commit)


def store_upload(user: User, data: bytes, title: str | None = None) -> Image:
    """Store a user's own PNG, JPEG or WebP (checked by content, metadata stripped) as an 'upload'."""
    settings = _settings()
    if len(data) > settings.upload_max_bytes:
        raise ApiError(413, f"The image is larger than {settings.upload_max_bytes} bytes.")
    encoded = imaging.sanitize_upload(data, settings.upload_max_pixels)
    return _store_row(user, encoded, ImageParams(kind="upload", title=title))


def store_template(data: bytes, title: str | None = None) -> Image:
    """Store an admin's starter image that belongs to no one and that anyone may open and edit from."""
    encoded = imaging.sanitize_upload(data, _settings().upload_max_pixels)
    return _store_row(None, encoded, ImageParams(kind="template", title=title), is_template=True)


def delete_template(public_id: str) -> None:
    """Remove a template image and its files; 404 when no template has this id."""
    image = db.session.scalar(
        select(Image).where(Image.public_id == _parse_public_id(public_id), Image.is_template.is_(True)))
    if image is None:
        raise ApiError(404, "No such template.")
    keys = (image.storage_key, image.thumbnail_key)
    db.session.delete(image)
    db.session.commit()
    _delete_keys(get_storage(), keys)


def delete_image_files(image: Image) -> None:
    """Remove an image's bytes and thumbnail from storage."""
    _delete_keys(get_storage(), (image.storage_key, image.thumbnail_key))


def can_view(image: Image, viewer: User | None) -> bool:
    """Owners see their images; everyone sees published images and templates."""
    if image.is_public or image.is_template:
        return True
    return viewer is not None and image.user_id is not None and image.user_id == viewer.id


def _parse_public_id(public_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(public_id))
    except ValueError:
        raise ApiError(404, "No such image.") from None


def find_visible_image(public_id: str, viewer: User | None) -> Image:
    """The image if this viewer may see it; 404 otherwise, so private images do not reveal they exist."""
    image = db.session.scalar(select(Image).where(Image.public_id == _parse_public_id(public_id)))
    if image is None or not can_view(image, viewer):
        raise ApiError(404, "No such image.")
    return image


def find_own_image(user: User, public_id: str) -> Image:
    """The user's own image; 404 for anyone else's, private or not."""
    image = db.session.scalar(
        select(Image).where(Image.public_id == _parse_public_id(public_id), Image.user_id == user.id))
    if image is None:
        raise ApiError(404, "No such image.")
    return image


def visible_children(image: Image, viewer: User | None) -> list[Image]:
    """Images made from this one that the viewer may see, newest first."""
    query = select(Image).where(Image.parent_id == image.id)
    visible = or_(Image.is_public.is_(True), Image.is_template.is_(True))
    if viewer is not None:
        visible = or_(visible, Image.user_id == viewer.id)
    return list(db.session.scalars(query.where(visible).order_by(Image.created_at.desc(), Image.id.desc())))


def update_image(user: User, public_id: str, changes: dict[str, Any]) -> Image:
    """Change title, liked or public on one's own image; publishing stamps published_at."""
    image = find_own_image(user, public_id)
    if "title" in changes:
        image.title = changes["title"]
    if "liked" in changes:
        image.is_liked = changes["liked"]
    if "public" in changes and changes["public"] != image.is_public:
        image.is_public = changes["public"]
        image.published_at = utcnow() if image.is_public else None
    db.session.commit()
    return image


def delete_image(user: User, public_id: str) -> None:
    """Delete one's own image row, then its bytes and thumbnail."""
    image = find_own_image(user, public_id)
    keys = (image.storage_key, image.thumbnail_key)
    db.session.delete(image)
    db.session.commit()
    # After the commit: a failed storage delete leaves an orphan object, never a row pointing at nothing.
    _delete_keys(get_storage(), keys)


def delete_all_images(user: User) -> int:
    """Delete every image of a user (for account deletion), rows first, then bytes; returns how many."""
    rows = list(db.session.execute(select(Image.storage_key, Image.thumbnail_key).where(Image.user_id == user.id)))
    db.session.execute(delete(Image).where(Image.user_id == user.id))
    db.session.commit()
    _delete_keys(get_storage(), [key for row in rows for key in row])
    return len(rows)


def encode_cursor(moment: datetime, row_id: int) -> str:
    """An opaque cursor over (timestamp, id)."""
    raw = json.dumps([moment.isoformat(), row_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Read a cursor back; 422 when it was not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, row_id = json.loads(raw)
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None or not isinstance(row_id, int):
            raise ValueError
        return parsed, row_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(422, "'cursor' is not a valid cursor.", field="cursor") from None


def _page(query, order_column, limit: int, cursor: str | None) -> tuple[list[Image], str | None]:
    """Newest first by (order_column, id), keyset-paginated."""
    if cursor:
        moment, row_id = decode_cursor(cursor)
        query = query.where(or_(order_column < moment, and_(order_column == moment, Image.id < row_id)))
    query = query.order_by(order_column.desc(), Image.id.desc()).limit(limit + 1)
    rows = list(db.session.scalars(query.options(selectinload(Image.parent))))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, order_column.key), last.id)
    return rows, next_cursor


def list_images(user: User, filters: ImageFilters, limit: int, cursor: str | None) -> tuple[list[Image], str | None]:
    """The user's library, newest first."""
    query = select(Image).where(Image.user_id == user.id)
    if filters.liked is not None:
        query = query.where(Image.is_liked.is_(filters.liked))
    if filters.public is not None:
        query = query.where(Image.is_public.is_(filters.public))
    if filters.kind is not None:
        query = query.where(Image.kind == filters.kind)
    if filters.model is not None:
        query = query.where(Image.model_id == filters.model)
    return _page(query, Image.created_at, limit, cursor)


def list_gallery(limit: int, cursor: str | None) -> tuple[list[Image], str | None]:
    """Everyone's published images, most recently published first."""
    query = select(Image).where(Image.is_public.is_(True), Image.published_at.is_not(None))
    return _page(query, Image.published_at, limit, cursor)


def list_templates(limit: int, cursor: str | None) -> tuple[list[Image], str | None]:
    """The admins' starter images, newest first."""
    return _page(select(Image).where(Image.is_template.is_(True)), Image.created_at, limit, cursor)


def read_file(image: Image, thumbnail: bool = False) -> tuple[bytes, str]:
    """The bytes and mime type of an image or its thumbnail."""
    key = image.thumbnail_key if thumbnail else image.storage_key
    if not key:
        raise ApiError(404, "This image has no stored file.")
    try:
        data = get_storage().get(key)
    except FileNotFoundError:
        raise ApiError(404, "This image's file is missing from storage.") from None
    return data, ("image/webp" if thumbnail and key.endswith(".webp") else image.mime_type or "image/png")


def file_urls(image: Image) -> tuple[str, str]:
    """URLs for the image and its thumbnail: stable ones when published, short-lived signed ones otherwise."""
    storage = get_storage()
    if image.is_public or image.is_template:
        base = _settings().base_url.rstrip("/")
        url = storage.public_url(image.storage_key) if image.storage_key else None
        thumb = storage.public_url(image.thumbnail_key) if image.thumbnail_key else None
        return (url or f"{base}/api/v1/images/{image.public_id}/file",
                thumb or f"{base}/api/v1/images/{image.public_id}/thumbnail")
    return storage.signed_url(image.storage_key), storage.signed_url(image.thumbnail_key)
