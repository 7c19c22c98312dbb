"""The OpenAI Images API (/v1/images/generations, /edits, /variations) over Atelier's generation service.

Authenticate with an Atelier API token as the Bearer key. Errors use OpenAI's shape:
{"error": {"message", "type", "param", "code"}}. OpenAI model names (dall-e-2, dall-e-3, gpt-image-*) map to the
default model; any model id Atelier serves can be named directly.
"""
from __future__ import annotations

import base64
import time

from flask import Blueprint, current_app, g, jsonify, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from app.auth import authenticated_by_token
from app.errors import ApiError
from app.models import Image, User
from app.routes.api_common import json_body
from app.routes.idempotent import idempotent
from app.routes.media_api import image_json
from app.services import generation, media

bp = Blueprint("openai_api", __name__, url_prefix="/v1")
DEFAULT_SIZE = "512x512"


def _token_user() -> User | None:
    return current_user if current_user.is_authenticated and authenticated_by_token() else None


def _require_user() -> User:
    user = _token_user()
    if user is None:
        raise ApiError(401, "Incorrect API key provided. Send an Atelier API token as 'Authorization: Bearer <token>'.",
                       code="invalid_api_key")
    return user


def _error_type(status: int) -> str:
    if status == 402:
        return "insufficient_quota"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


@bp.errorhandler(ApiError)
def openai_error(error: ApiError):
    """Errors in OpenAI's shape, so the official clients raise their usual exceptions."""
    response = jsonify({"error": {"message": error.message, "type": _error_type(error.status),
                                  "param": error.field, "code": error.code}})
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


@bp.errorhandler(HTTPException)
def openai_http_error(error: HTTPException):
    """Werkzeug's errors (413, 400 on a broken form) in the same shape."""
    return openai_error(ApiError(error.code or 500, error.description or error.name))


def _size(data: dict) -> dict:
    raw = data.get("size") or DEFAULT_SIZE
    if raw == "auto":
        raw = DEFAULT_SIZE
    try:
        width, height = (int(part) for part in str(raw).lower().split("x"))
    except ValueError:
        raise ApiError(422, f"Invalid size {raw!r}: use WIDTHxHEIGHT, for example 512x512.", field="size") from None
    return {"width": width, "height": height}


def _model(data: dict) -> str | None:
    model = data.get("model")
    if not isinstance(model, str) or not model or model.startswith(("dall-e", "gpt-image", "chatgpt-image")):
        return None  # the deployment's default model
    return model


def _common(data: dict) -> dict:
    out = {"prompt": data.get("prompt"), "model": _model(data)}
    if data.get("n") is not None:
        try:
            out["n"] = int(data["n"])
        except (TypeError, ValueError):
            raise ApiError(422, "'n' must be a whole number.", field="n") from None
    return out


def _response_format(data: dict) -> str:
    value = data.get("response_format") or "url"
    if value not in ("url", "b64_json"):
        raise ApiError(422, "'response_format' must be 'url' or 'b64_json'.", field="response_format")
    return value


def _answer(images: list[Image], fmt: str, prompt: str | None):
    data = []
    for image in images:
        item: dict = {"revised_prompt": prompt}
        if fmt == "b64_json":
            item["b64_json"] = base64.b64encode(media.read_file(image)[0]).decode()
        else:
            item["url"] = image_json(image)["url"]
        data.append(item)
    first = images[0]
    return jsonify({"created": int(time.time()), "data": data, "output_format": "png",
                    "size": f"{first.width}x{first.height}"})


def _form() -> dict:
    return {name: value for name, value in request.form.items()}


def _upload(user: User, *names: str) -> Image:
    for name in names:
        file = request.files.get(name)
        if file is not None:
            return media.store_upload(user, file.read(), "openai upload")
    raise ApiError(422, "Send the source image as the multipart field 'image'.", field="image")


def _run_with_upload(user: User, upload: Image, run):
    try:
        return run()
    except BaseException:
        media.delete_image(user, str(upload.public_id))  # the upload was only this failed request's source
        raise


@bp.post("/images/generations")
@idempotent(_token_user)
def generations():
    """Create images from a prompt."""
    user = _require_user()
    data = json_body()
    fmt = _response_format(data)
    plan = generation.plan_generation(user, {**_common(data), **_size(data), "steps": data.get("steps", 20)})
    return _answer(generation.execute(user, plan, request_id=g.get("request_id")), fmt, plan.prompt)


@bp.post("/images/edits")
@idempotent(_token_user)
def edits():
    """Edit an uploaded image: inpaint where the mask is transparent, or image to image without a mask."""
    user = _require_user()
    data = _form()
    fmt = _response_format(data)
    size = _size(data) if data.get("size") not in (None, "", "auto") else {}
    mask = request.files.get("mask")
    mask_bytes = mask.read() if mask is not None else None
    upload = _upload(user, "image", "image[]")

    def run():
        plan = generation.plan_edit(user, {**_common(data), **size, "steps": 20}, upload=upload,
                                    mask_bytes=mask_bytes)
        return _answer(generation.execute(user, plan, request_id=g.get("request_id")), fmt, plan.prompt)

    return _run_with_upload(user, upload, run)


@bp.post("/images/variations")
@idempotent(_token_user)
def variations():
    """Variations of an uploaded image."""
    user = _require_user()
    data = _form()
    fmt = _response_format(data)
    upload = _upload(user, "image")

    def run():
        plan = generation.plan_variation(user, str(upload.public_id), {**_common(data), "steps": 20})
        return _answer(generation.execute(user, plan, request_id=g.get("request_id")), fmt, plan.prompt)

    return _run_with_upload(user, upload, run)


@bp.get("/models")
def models():
    """The image models this deployment serves, in OpenAI's list shape."""
    _require_user()
    settings = current_app.config["ATELIER"]
    return jsonify({"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "atelier"}
                                               for m in settings.gpu_models]})
