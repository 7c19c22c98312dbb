"""Pages for generating and browsing images: generate, library (with filters), one image, the public gallery."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user, login_required

from app.models.media import IMAGE_KINDS
from app.routes.api_common import page_args
from app.routes.media_api import image_json
from app.services import media

bp = Blueprint("generate_pages", __name__)

SCHEDULERS = ("ddim", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "unipc", "pndm", "lms")
SIZES = (64, 128, 256, 384, 512, 640, 768, 1024)


def _flag(name: str) -> bool | None:
    value = request.args.get(name, "")
    return True if value == "true" else False if value == "false" else None


@bp.get("/generate")
@login_required
def generate_page():
    """The prompt form with its price, progress while waiting, and the results in place."""
    settings = current_app.config["ATELIER"]
    return render_template("generate/generate.html", models=settings.gpu_models, schedulers=SCHEDULERS,
                           sizes=[s for s in SIZES if s * s <= settings.gpu_max_pixels],
                           max_n=min(settings.generation_max_images, settings.gpu_max_images),
                           max_steps=settings.gpu_max_steps, max_guidance=settings.gpu_max_guidance)


@bp.get("/library")
@login_required
def library_page():
    """My images, newest first, filtered by liked, public, kind and model."""
    limit, cursor = page_args(default_limit=24)
    kind = request.args.get("kind") or None
    filters = media.ImageFilters(liked=_flag("liked"), public=_flag("public"),
                                 kind=kind if kind in IMAGE_KINDS else None, model=request.args.get("model") or None)
    rows, next_cursor = media.list_images(current_user, filters, limit, cursor)
    return render_template("generate/library.html", images=[image_json(r, current_user) for r in rows],
                           next_cursor=next_cursor, kinds=IMAGE_KINDS, args=request.args,
                           models=current_app.config["ATELIER"].gpu_models)


@bp.get("/images/<public_id>")
def image_page(public_id: str):
    """One image: download, like, publish, share, delete, variations, edit, upscale, lineage."""
    viewer = current_user if current_user.is_authenticated else None
    image = media.find_visible_image(public_id, viewer)
    body = image_json(image, viewer, detail=True)
    parent = image.parent if body["parent"] else None
    lineage = {"parent": image_json(parent, viewer) if parent is not None else None,
               "children": [image_json(child, viewer) for child in media.visible_children(image, viewer)]}
    return render_template("generate/image.html", image=body, lineage=lineage)


@bp.get("/gallery")
def gallery_page():
    """Everyone's published images."""
    limit, cursor = page_args(default_limit=24)
    rows, next_cursor = media.list_gallery(limit, cursor)
    viewer = current_user if current_user.is_authenticated else None
    return render_template("generate/gallery.html", images=[image_json(r, viewer) for r in rows],
                           next_cursor=next_cursor)
