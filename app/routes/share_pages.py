"""The public page behind a share link, /s/<token>, and the bytes it shows."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template

from app.services import links

bp = Blueprint("share_pages", __name__)


@bp.get("/s/<token>")
def shared_item(token: str):
    """Show the shared item with Open Graph tags and count the view; a revoked link is 404."""
    shared = links.view_shared(token)
    base = current_app.config["ATELIER"].base_url.rstrip("/")
    item = shared.item
    has_preview = bool(getattr(item, "thumbnail_key", None) or getattr(item, "poster_key", None))
    title = item.title or getattr(item, "prompt", None) or f"A shared {shared.kind}"
    return render_template(
        "share.html", shared=shared, item=item, title=title[:200],
        page_url=f"{base}/s/{token}", file_url=f"{base}/s/{token}/file",
        preview_url=f"{base}/s/{token}/preview" if has_preview else None)


@bp.get("/s/<token>/file")
def shared_file(token: str):
    """The shared item's bytes, while the link is live."""
    return _bytes(*links.shared_file(token))


@bp.get("/s/<token>/preview")
def shared_preview(token: str):
    """The shared item's thumbnail or poster, stable for link previews (og:image)."""
    return _bytes(*links.shared_file(token, preview=True))


def _bytes(data: bytes, mime_type: str) -> Response:
    response = Response(data, mimetype=mime_type)
    # Short public caching: a revoked link should stop working soon even behind a CDN.
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
