"""Generation API: text to image, edits, variations, upscaling (sync or `Prefer: respond-async`), and jobs."""
from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, g, request
from flask_login import current_user

from app.auth import api_login_required
from app.errors import ApiError
from app.models import GenerationJob, Image
from app.routes.api_common import json_body, require_csrf_for_cookie_clients
from app.routes.idempotent import idempotent
from app.routes.media_api import image_json
from app.services import generation, jobs, media

bp = Blueprint("generation_api", __name__, url_prefix="/api/v1")

INT_FIELDS = ("n", "steps", "seed", "width", "height", "noise_level")
FLOAT_FIELDS = ("guidance", "strength", "image_guidance")


def wants_async() -> bool:
    """True when the client sent `Prefer: respond-async`."""
    return any(p.strip().lower() == "respond-async" for p in request.headers.get("Prefer", "").split(","))


def form_fields() -> dict[str, Any]:
    """A multipart form as the JSON body it stands for: numbers parsed, 422 naming a field that is not one."""
    data: dict[str, Any] = {}
    for name, value in request.form.items():
        if name in INT_FIELDS or name in FLOAT_FIELDS:
            try:
                data[name] = int(value) if name in INT_FIELDS else float(value)
            except ValueError:
                raise ApiError(422, f"'{name}' must be a number.", field=name) from None
        else:
            data[name] = value
    return data


def optional_json() -> dict[str, Any]:
    """The JSON body, or {} when there is none."""
    if not request.get_data(cache=True) and not request.is_json:
        return {}
    return json_body()


def images_response(images: list[Image], cost: int):
    """201 with the image records."""
    return {"images": [image_json(image, current_user, detail=True) for image in images],
            "credits_charged": cost}, 201


def job_json(job: GenerationJob) -> dict:
    """A job as clients see it; succeeded jobs carry their images."""
    body = {
        "id": str(job.public_id), "operation": job.operation, "state": job.state,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "webhook_url": job.webhook_url, "error": job.error, "result": None,
    }
    if job.state == "succeeded":
        body["result"] = {"images": [image_json(image, current_user, detail=True)
                                     for image in jobs.result_images(job)]}
    return body


def _run(operation: str, data: dict, image_id: str | None = None, upload: Image | None = None,
         mask_bytes: bytes | None = None):
    if wants_async():
        if mask_bytes is not None:
            data = {**data, "mask": base64.b64encode(mask_bytes).decode()}
        if upload is not None:
            data = {**data, "image_id": str(upload.public_id)}
        job = jobs.create_job(current_user, operation, data, image_id, data.get("webhook_url"), g.get("request_id"))
        return job_json(job), 202, {"Location": f"/api/v1/jobs/{job.public_id}"}
    if operation == "edits":
        plan = generation.plan_edit(current_user, data, upload=upload, mask_bytes=mask_bytes)
    else:
        plan = generation.plan(current_user, operation, data, image_id)
    images = generation.execute(current_user, plan, request_id=g.get("request_id"))
    return images_response(images, plan.cost)


@bp.post("/images/generations")
@api_login_required
@idempotent()
def create_generation():
    """Text to image: n images (up to generation_max_images) for a prompt."""
    return _run("generations", json_body())


@bp.post("/images/edits")
@api_login_required
@idempotent()
def create_edit():
    """Edit an image (img2img, inpaint with a mask, instruct): a library image, a template, or an upload here."""
    if request.mimetype != "multipart/form-data":
        return _run("edits", json_body())
    require_csrf_for_cookie_clients()
    data = form_fields()
    image_file, mask_file = request.files.get("image"), request.files.get("mask")
    mask_bytes = mask_file.read() if mask_file is not None else None
    if image_file is None:
        return _run("edits", data, mask_bytes=mask_bytes)
    upload = media.store_upload(current_user, image_file.read(), (data.get("title") or None))
    try:
        return _run("edits", data, upload=upload, mask_bytes=mask_bytes)
    except BaseException:
        if not wants_async():  # the upload was only the source of this failed edit
            media.delete_image(current_user, str(upload.public_id))
        raise


@bp.post("/images/<image_id>/variations")
@api_login_required
@idempotent()
def create_variations(image_id: str):
    """New takes on an image (image to image from it, its own prompt unless another is given)."""
    return _run("variations", optional_json(), image_id=image_id)


@bp.post("/images/<image_id>/upscale")
@api_login_required
@idempotent()
def create_upscale(image_id: str):
    """The image at four times its width and height."""
    return _run("upscale", optional_json(), image_id=image_id)


@bp.get("/jobs/<job_id>")
@api_login_required
def get_job(job_id: str):
    """A job's state (queued, running, succeeded, failed, cancelled) and result."""
    return job_json(jobs.find_job(current_user, job_id))


@bp.post("/jobs/<job_id>/cancel")
@api_login_required
@idempotent()
def cancel_job(job_id: str):
    """Cancel a queued job, or stop a running one (its credits come back when it ends)."""
    return job_json(jobs.cancel_job(current_user, job_id))
