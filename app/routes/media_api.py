"""The image library API: my images, uploads, publishing, lineage, the public gallery, templates, media bytes."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from flask_login import current_user

from app.auth import api_login_required
from app.errors import ApiError
from app.models import Image, User
from app.models.media import IMAGE_KINDS
from app.routes.api_common import json_body, page_args, read_upload
from app.services import media
from app.services.storage import LocalStorage, get_storage

bp = Blueprint("media_api", __name__, url_prefix="/api/v1")

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def viewer() -> User | None:
    """The signed-in user, or None for anonymous visitors."""
    return current_user if current_user.is_authenticated else None


def image_json(image: Image, viewer_user: User | None = None, *, detail: bool = False) -> dict:
    """One image as clients see it; with detail, its visible children too."""
    url, thumbnail_url = media.file_urls(image)
    parent = image.parent if image.parent is not None and media.can_view(image.parent, viewer_user) else None
    body = {
        "id": str(image.public_id),
        "kind": image.kind,
        "title": image.title,
        "width": image.width,
        "height": image.height,
        "mime_type": image.mime_type,
        "byte_size": image.byte_size,
        "content_hash": image.content_hash,
        "prompt": image.prompt,
        "negative_prompt": image.negative_prompt,
        "seed": image.seed,
        "steps": image.steps,
        "guidance": image.guidance,
        "scheduler": image.scheduler,
        "model": image.model_id,
        "strength": image.strength,
        "liked": image.is_liked,
        "public": image.is_public,
        "template": image.is_template,
        "mine": viewer_user is not None and image.user_id == viewer_user.id,
        "created_at": image.created_at.isoformat(),
        "published_at": image.published_at.isoformat() if image.published_at else None,
        "url": url,
        "thumbnail_url": thumbnail_url,
        "parent": {"id": str(parent.public_id), "kind": parent.kind} if parent is not None else None,
    }
    if detail:
        body["children"] = [{"id": str(child.public_id), "kind": child.kind}
                            for child in media.visible_children(image, viewer_user)]
    return body


def _page_json(rows: list[Image], next_cursor: str | None) -> dict:
    user = viewer()
    return {"items": [image_json(row, user) for row in rows], "next_cursor": next_cursor}


def _bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ApiError(422, f"'{name}' must be true or false.", field=name)


@bp.get("/images")
@api_login_required
def list_images():
    """My images, newest first."""
    limit, cursor = page_args()
    kind = request.args.get("kind") or None
    if kind is not None and kind not in IMAGE_KINDS:
        raise ApiError(422, f"'kind' must be one of {', '.join(IMAGE_KINDS)}.", field="kind")
    filters = media.ImageFilters(liked=_bool_arg("liked"), public=_bool_arg("public"), kind=kind,
                                 model=request.args.get("model") or None)
    return _page_json(*media.list_images(current_user, filters, limit, cursor))


@bp.post("/images/uploads")
@api_login_required
def upload_image():
    """Upload one of my own images (multipart field 'image') to edit from."""
    data, _filename = read_upload("image", current_app.config["ATELIER"].upload_max_bytes, "image")
    title = (request.form.get("title") or "").strip()[:200] or None
    return image_json(media.store_upload(current_user, data, title), current_user, detail=True), 201


@bp.get("/images/<public_id>")
def get_image(public_id: str):
    """One image with its lineage; others' private images are 404."""
    user = viewer()
    return image_json(media.find_visible_image(public_id, user), user, detail=True)


@bp.patch("/images/<public_id>")
@api_login_required
def update_image(public_id: str):
    """Change title, liked or public on my image."""
    data = json_body()
    unknown = set(data) - {"title", "liked", "public"}
    if unknown:
        raise ApiError(422, f"Unknown field '{sorted(unknown)[0]}'; send title, liked or public.",
                       field=sorted(unknown)[0])
    changes = {}
    if "title" in data:
        title = data["title"]
        if title is not None and not isinstance(title, str):
            raise ApiError(422, "'title' must be a string or null.", field="title")
        if title is not None and len(title.strip()) > 200:
            raise ApiError(422, "'title' must be at most 200 characters.", field="title")
        changes["title"] = (title or "").strip() or None
    for name in ("liked", "public"):
        if name in data:
            if not isinstance(data[name], bool):
                raise ApiError(422, f"'{name}' must be true or false.", field=name)
            changes[name] = data[name]
    return image_json(media.update_image(current_user, public_id, changes), current_user, detail=True)


@bp.delete("/images/<public_id>")
@api_login_required
def delete_image(public_id: str):
    """Delete my image with its bytes and thumbnail."""
    media.delete_image(current_user, public_id)
    return "", 204


def _file_response(data: bytes, mime_type: str, public: bool) -> Response:
    response = Response(data, mimetype=mime_type)
    response.headers["Cache-Control"] = "public, max-age=3600" if public else "private, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/images/<public_id>/file")
def image_file(public_id: str):
    """The image's bytes, for its owner or anyone when published."""
    image = media.find_visible_image(public_id, viewer())
    return _file_response(*media.read_file(image), public=image.is_public or image.is_template)


@bp.get("/images/<public_id>/thumbnail")
def image_thumbnail(public_id: str):
    """The image's thumbnail, for its owner or anyone when published."""
    image = media.find_visible_image(public_id, viewer())
    return _file_response(*media.read_file(image, thumbnail=True), public=image.is_public or image.is_template)


@bp.get("/gallery")
def gallery():
    """Everyone's published images, most recently published first."""
    limit, cursor = page_args()
    return _page_json(*media.list_gallery(limit, cursor))


@bp.get("/templates")
def templates():
    """Starter images anyone can open and edit from."""
    limit, cursor = page_args()
    return _page_json(*media.list_templates(limit, cursor))


@bp.get("/media/<path:key>")
def signed_media(key: str):
    """Local storage only: serve a private file behind its signed, expiring URL."""
    storage = get_storage()
    if not isinstance(storage, LocalStorage) or not storage.verify(
            key, request.args.get("expires"), request.args.get("signature")):
        raise ApiError(404, "This link is invalid or has expired.")
    try:
        data = storage.get(key)
    except FileNotFoundError:
        raise ApiError(404, "This file no longer exists.") from None
    mime_type = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "mp4": "video/mp4",
                 "mp3": "audio/mpeg", "wav": "audio/wav"}.get(key.rsplit(".", 1)[-1], "application/octet-stream")
    return _file_response(data, mime_type, public=False)
