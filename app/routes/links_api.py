"""Share links API: create a link to one of my items, list my links, revoke one."""
from __future__ import annotations

from flask import Blueprint, current_app
from flask_login import current_user

from app.auth import api_login_required
from app.errors import ApiError
from app.routes.api_common import json_body, require_string
from app.services import links
from app.services.links import SharedItem

bp = Blueprint("links_api", __name__, url_prefix="/api/v1")


def link_json(shared: SharedItem) -> dict:
    """One share link as clients see it."""
    link = shared.link
    base = current_app.config["ATELIER"].base_url.rstrip("/")
    return {
        "token": link.token,
        "url": f"{base}/s/{link.token}",
        "kind": shared.kind,
        "item_id": str(shared.item.public_id),
        "views": link.views,
        "created_at": link.created_at.isoformat(),
    }


@bp.post("/links")
@api_login_required
def create_link():
    """Create a share link to my image, audio or video: send exactly one of image_id, audio_id, video_id."""
    data = json_body()
    given = [field for field in links.TARGETS if data.get(field) is not None]
    if len(given) != 1:
        raise ApiError(422, "Send exactly one of image_id, audio_id or video_id.")
    field = given[0]
    link = links.create_link(current_user, field, require_string(data, field, max_length=64))
    return link_json(links.find_shared(link.token)), 201


@bp.get("/links")
@api_login_required
def list_links():
    """My live share links, newest first."""
    return {"items": [link_json(shared) for shared in links.list_links(current_user)]}


@bp.delete("/links/<token>")
@api_login_required
def revoke_link(token: str):
    """Revoke my link; its page answers 404 afterwards."""
    links.revoke_link(current_user, token)
    return "", 204
