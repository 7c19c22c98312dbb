"""The internal GPU API under /gpu/v1: signed JSON in, base64 PNGs and their seeds out."""
from __future__ import annotations

import base64
import io
import time
from concurrent.futures import TimeoutError as FutureTimeout

from flask import Blueprint, current_app, jsonify, request

from app.errors import ApiError
from app.gpu.batching import QueueFull
from app.gpu.validation import TASKS, InvalidField
from app.gpu_signing import SignatureError, verify

bp = Blueprint("gpu_api", __name__, url_prefix="/gpu/v1")


def _engine():
    return current_app.extensions["gpu_engine"]


@bp.before_request
def require_signature():
    """Every GPU API request is signed by its caller with the shared secret."""
    settings = current_app.config["ATELIER"]
    try:
        verify(settings.gpu_shared_secret, request.method, request.path, request.get_data(cache=True),
               request.headers)
    except SignatureError as exc:
        raise ApiError(401, str(exc), code="bad_signature") from exc


def _png_base64(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode()


@bp.post("/<task>")
def generate(task: str):
    """Run one task (txt2img, img2img, inpaint, instruct, upscale, interpolate)."""
    if task not in TASKS:
        raise ApiError(404, f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    engine = _engine()
    started = time.perf_counter()
    try:
        job = engine.validate(task, request.get_json(silent=True))
        future = engine.submit(job)
        images, batched_requests = future.result(timeout=current_app.config["ATELIER"].gpu_request_timeout_seconds)
    except InvalidField as exc:
        raise ApiError(422, exc.message, field=exc.field) from exc
    except ValueError as exc:  # diffusers checks its inputs with ValueError: still the caller's input
        raise ApiError(422, f"the pipeline refused the request: {exc}") from exc
    except FutureTimeout as exc:
        raise ApiError(504, "the request did not finish in time on this GPU host") from exc
    except QueueFull as exc:
        raise ApiError(503, f"this GPU host is busy ({exc}); try again shortly", code="busy",
                       headers={"Retry-After": "1"}) from exc
    if task == "interpolate":
        seeds = [None] * len(images)
        extra = {"t": job.params["t"], "seed_a": job.params["seed_a"], "seed_b": job.params["seed_b"],
                 "strength_a": job.params.get("strength_a")}
    else:
        seeds, extra = job.seeds, {}
    return jsonify({
        "task": task,
        "model": job.model,
        "width": images[0].width if images else None,
        "height": images[0].height if images else None,
        "images": [{"seed": seed, "png_base64": _png_base64(image)} for seed, image in zip(seeds, images)],
        "batched_requests": batched_requests,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        **extra,
    })


@bp.get("/health")
def health():
    """Loaded models, memory used and budget, queue depth, in-flight requests and batches served."""
    return jsonify(_engine().health())


@bp.get("/models")
def models():
    """The model ids this host serves and which are loaded now."""
    engine = _engine()
    loaded = set(engine.health()["loaded_models"])
    return jsonify({"models": [{"id": m, "loaded": m in loaded} for m in engine.models]})
