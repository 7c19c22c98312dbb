"""The AUTOMATIC1111 web UI API (/sdapi/v1) over Atelier's generation service, so A1111 clients work unchanged.

Authenticate with HTTP Basic (email and an API token) or `Authorization: Bearer <token>`. Every request is
charged and stored in the library like the native API. Unlike A1111, there is no global lock or shared
"current model": each request names its model (override_settings.sd_model_checkpoint) or gets the default,
so concurrent requests from different users neither block nor interrupt each other.
"""
from __future__ import annotations

import base64
import io
import json
import threading
import time
from datetime import datetime, timezone

from flask import Blueprint, current_app, g, jsonify, request
from flask_login import current_user
from PIL import Image as PILImage
from PIL import ImageOps
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from app.auth import authenticated_by_token
from app.errors import ApiError
from app.extensions import db
from app.models import ApiToken, Image, User
from app.routes.api_common import json_body
from app.routes.idempotent import idempotent
from app.services import a1111_options, generation, media
from app.services.accounts import find_user_by_email
from app.services.secrets import hash_token

bp = Blueprint("sdapi", __name__, url_prefix="/sdapi/v1")

# A1111 sampler names → the scheduler names the GPU hosts know.
SAMPLERS = {"DDIM": "ddim", "Euler": "euler", "Euler a": "euler_a", "DPM++ 2M": "dpmpp_2m",
            "DPM++ 2M Karras": "dpmpp_2m_karras", "UniPC": "unipc", "PLMS": "pndm", "LMS": "lms"}
ALIASES = {"DDIM": ["ddim"], "Euler": ["k_euler"], "Euler a": ["k_euler_a"], "DPM++ 2M": ["k_dpmpp_2m"],
           "DPM++ 2M Karras": ["k_dpmpp_2m_ka"], "UniPC": ["unipc"], "PLMS": ["plms"], "LMS": ["k_lms"]}
_progress_lock = threading.Lock()
_in_flight: dict[int, dict] = {}  # user id → what this process is generating for them now


def _user() -> User | None:
    if current_user.is_authenticated and authenticated_by_token():
        return current_user
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or not auth.password:
        return None
    user = find_user_by_email(auth.username)
    if user is None:
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(auth.password),
                                                     ApiToken.user_id == user.id))
    return user if token is not None else None


def _require_user() -> User:
    user = _user()
    if user is None:
        raise ApiError(401, "Send HTTP Basic credentials (email and an API token) or a Bearer API token.",
                       headers={"WWW-Authenticate": 'Basic realm="atelier"'})
    return user


@bp.errorhandler(ApiError)
def sdapi_error(error: ApiError):
    """A1111 (FastAPI) style errors: {"error", "detail"}, plus the field when one is wrong."""
    body = {"error": error.code, "detail": error.message, "body": "", "errors": error.message}
    if error.field:
        body["field"] = error.field
    response = jsonify(body)
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


@bp.errorhandler(HTTPException)
def sdapi_http_error(error: HTTPException):
    """Werkzeug's errors in the same shape."""
    return sdapi_error(ApiError(error.code or 500, error.description or error.name))


def _sampler(data: dict) -> str | None:
    name = data.get("sampler_name") or data.get("sampler_index")
    if not name:
        return None
    if not isinstance(name, str):
        raise ApiError(422, "'sampler_name' must be a string.", field="sampler_name")
    if isinstance(data.get("scheduler"), str) and data["scheduler"].lower() == "karras" and "karras" not in name.lower():
        name = f"{name} Karras"
    return SAMPLERS.get(name, name)


def _model(data: dict, user: User) -> str | None:
    override = data.get("override_settings") or {}
    model = a1111_options.checkpoint_name(override.get("sd_model_checkpoint") if isinstance(override, dict) else None)
    return model or a1111_options.chosen_model(user)


def _count(data: dict) -> int:
    batch, iterations = data.get("batch_size", 1), data.get("n_iter", 1)
    for name, value in (("batch_size", batch), ("n_iter", iterations)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ApiError(422, f"'{name}' must be a whole number of at least 1.", field=name)
    return batch * iterations


def _native(data: dict, user: User, with_size: bool = True) -> dict:
    """A1111 fields → the native request (the user's chosen model when the request names none)."""
    seed = data.get("seed", -1)
    native = {"prompt": data.get("prompt", ""), "negative_prompt": data.get("negative_prompt") or None,
              "steps": data.get("steps", 20), "guidance": data.get("cfg_scale", 7.0), "scheduler": _sampler(data),
              "seed": None if seed in (-1, None) else seed, "n": _count(data), "model": _model(data, user)}
    if with_size:
        native.update(width=data.get("width", 512), height=data.get("height", 512))
    return native


def _track(user_id: int, steps: int):
    with _progress_lock:
        running = _in_flight.setdefault(user_id, {"count": 0})
        running.update(count=running["count"] + 1, started=time.time(), steps=steps,
                       timestamp=datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"))


def _untrack(user_id: int) -> None:
    with _progress_lock:
        running = _in_flight.get(user_id)
        if running is not None:
            running["count"] -= 1
            if running["count"] <= 0:
                del _in_flight[user_id]


def _answer(data: dict, images: list[Image], plan: generation.Plan):
    encoded = [base64.b64encode(media.read_file(image)[0]).decode() for image in images]
    seeds = [image.seed for image in images]
    info = {
        "prompt": plan.prompt, "all_prompts": [plan.prompt] * len(images),
        "negative_prompt": plan.negative_prompt or "", "all_negative_prompts": [plan.negative_prompt or ""] * len(images),
        "seed": seeds[0], "all_seeds": seeds, "subseed": -1, "all_subseeds": [-1] * len(images),
        "width": images[0].width, "height": images[0].height, "sampler_name": data.get("sampler_name") or "DDIM",
        "cfg_scale": plan.guidance, "steps": plan.steps, "batch_size": len(images), "sd_model_name": plan.model,
        "sd_model_hash": None, "denoising_strength": plan.strength, "clip_skip": 1,
        "infotexts": [f"{plan.prompt}\nSteps: {plan.steps}, Sampler: {data.get('sampler_name') or 'DDIM'}, "
                      f"CFG scale: {plan.guidance}, Seed: {seed}, Size: {images[0].width}x{images[0].height}, "
                      f"Model: {plan.model}" for seed in seeds],
        "atelier_image_ids": [str(image.public_id) for image in images],
    }
    parameters = {key: value for key, value in data.items() if key not in ("init_images", "mask")}
    return jsonify({"images": encoded, "parameters": parameters, "info": json.dumps(info)})


def _run(user: User, data: dict, make_plan):
    user_id = user.id
    plan = make_plan()
    _track(user_id, plan.steps)
    try:
        images = generation.execute(user, plan, request_id=g.get("request_id"))
    finally:
        _untrack(user_id)
    return _answer(data, images, plan)


@bp.post("/txt2img")
@idempotent(_user)
def txt2img():
    """Text to image with A1111's request and response fields."""
    user = _require_user()
    data = json_body()
    return _run(user, data, lambda: generation.plan_generation(user, _native(data, user)))


def _decode(value, field_name: str) -> bytes:
    return generation.decode_base64_image(value, field_name)


@bp.post("/img2img")
@idempotent(_user)
def img2img():
    """Image to image (init_images[0]) or inpainting (mask; white is repainted unless inpainting_mask_invert)."""
    user = _require_user()
    data = json_body()
    init_images = data.get("init_images")
    if not isinstance(init_images, list) or not init_images:
        raise ApiError(422, "'init_images' must be a list with one base64 image.", field="init_images")
    mask_bytes = None
    if data.get("mask"):
        mask_bytes = _decode(data["mask"], "mask")
        if data.get("inpainting_mask_invert"):
            mask = ImageOps.invert(PILImage.open(io.BytesIO(mask_bytes)).convert("L"))
            out = io.BytesIO()
            mask.save(out, "PNG")
            mask_bytes = out.getvalue()
    native = {**_native(data, user, with_size=False), "strength": data.get("denoising_strength", 0.75)}
    if "width" in data or "height" in data:
        native.update(width=data.get("width", 512), height=data.get("height", 512))
    native["mode"] = "inpaint" if mask_bytes is not None else "img2img"
    if not native["prompt"]:
        native["prompt"] = " "
    upload = media.store_upload(user, _decode(init_images[0], "init_images"), "a1111 init image")
    try:
        return _run(user, data, lambda: generation.plan_edit(user, native, upload=upload, mask_bytes=mask_bytes))
    except BaseException:
        media.delete_image(user, str(upload.public_id))
        raise


@bp.get("/sd-models")
def sd_models():
    """The models this deployment serves, as A1111 lists checkpoints."""
    _require_user()
    return jsonify([{"title": m, "model_name": m, "hash": None, "sha256": None, "filename": m, "config": None}
                    for m in current_app.config["ATELIER"].gpu_models])


@bp.get("/samplers")
def samplers():
    """The samplers (schedulers) the GPU hosts know, by their A1111 names."""
    _require_user()
    return jsonify([{"name": name, "aliases": ALIASES[name], "options": {}} for name in SAMPLERS])


@bp.get("/options")
def options():
    """A1111's options as far as they mean something here; sd_model_checkpoint is the caller's own."""
    user = _require_user()
    return jsonify({"sd_model_checkpoint": a1111_options.current_model(user), "samples_format": "png",
                    "sd_checkpoint_hash": None, "CLIP_stop_at_last_layers": 1, "eta_noise_seed_delta": 0})


@bp.post("/options")
def set_options():
    """Set the caller's default model (sd_model_checkpoint) for later requests; other options are ignored."""
    user = _require_user()
    a1111_options.set_options(user, json_body())
    return jsonify(None)


@bp.get("/progress")
def progress():
    """The caller's own request in progress on this web process (others' requests are not visible)."""
    user = _require_user()
    with _progress_lock:
        running = dict(_in_flight.get(user.id) or {})
    if not running:
        state = {"skipped": False, "interrupted": False, "job": "", "job_count": 0, "job_timestamp": "0",
                 "job_no": 0, "sampling_step": 0, "sampling_steps": 0}
        return jsonify({"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": None,
                        "textinfo": None})
    state = {"skipped": False, "interrupted": False, "job": "txt2img", "job_count": running["count"],
             "job_timestamp": running["timestamp"], "job_no": 0, "sampling_step": 0,
             "sampling_steps": running["steps"]}
    return jsonify({"progress": 0.01, "eta_relative": 0.0, "state": state, "current_image": None,
                    "textinfo": "generating on the GPU pool"})
