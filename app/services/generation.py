"""Generating images: validate → quote → hold credits → signed call through the proxy → store → capture.

Every public API (native, OpenAI, AUTOMATIC1111, async jobs) plans a request with one of the plan_* functions
(all validation happens there, before any charge) and runs it with execute(). A failure anywhere after the hold
releases it and leaves no image row and no stored file behind.
"""
from __future__ import annotations

import base64
import binascii
import io
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from flask import current_app
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from app import signals
from app.errors import ApiError
from app.extensions import db
from app.gpu.schedulers import canonical_scheduler
from app.models import Image, User, utcnow
from app.services import credits, media, pricing
from app.services.gpu_client import client_from_settings

log = logging.getLogger(__name__)

OPERATIONS = ("generations", "edits", "variations", "upscale")
EDIT_MODES = ("img2img", "inpaint", "instruct")
MAX_SEED = 2**53 - 1
UPSCALE_FACTOR = 4


class GenerationCancelled(Exception):
    """The job was cancelled while the GPU worked; its hold was released and nothing was stored."""


@dataclass
class Plan:
    """A validated, priced request: what to send to the GPU pool and how to record what comes back."""

    operation: str
    task: str
    kind: str
    model: str
    n: int
    width: int
    height: int
    steps: int
    cost: int
    prompt: str | None = None
    negative_prompt: str | None = None
    guidance: float | None = None
    scheduler: str | None = None
    seed: int | None = None
    strength: float | None = None
    source: Image | None = None
    gpu_extra: dict[str, Any] = field(default_factory=dict)

    def gpu_payload(self) -> dict[str, Any]:
        """The JSON body for the GPU API."""
        payload = {"model": self.model, "n": self.n, "steps": self.steps, "seed": self.seed,
                   "prompt": self.prompt or "", "negative_prompt": self.negative_prompt or "", **self.gpu_extra}
        if self.guidance is not None:
            payload["guidance"] = self.guidance
        if self.scheduler is not None:
            payload["scheduler"] = self.scheduler
        if self.task == "txt2img":
            payload.update(width=self.width, height=self.height)
        if self.strength is not None:
            payload["strength"] = self.strength
        return payload


# ------------------------------------------------------------------------------------------- validation

def _settings():
    return current_app.config["ATELIER"]


def _int(data: dict, name: str, default: int | None, low: int, high: int) -> int | None:
    value = data.get(name, default)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(422, f"'{name}' must be a whole number from {low} to {high}.", field=name)
    return value


def _number(data: dict, name: str, default: float | None, low: float, high: float, low_open: bool = False):
    value = data.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ApiError(422, f"'{name}' must be a number.", field=name)
    if value > high or value < low or (low_open and value == low):
        raise ApiError(422, f"'{name}' must be {'above' if low_open else 'at least'} {low} and at most {high}.",
                       field=name)
    return float(value)


def _text(data: dict, name: str, required: bool) -> str | None:
    value = data.get(name)
    limit = _settings().gpu_max_prompt_chars
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ApiError(422, f"'{name}' is required.", field=name)
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise ApiError(422, f"'{name}' must be a string (without NUL characters).", field=name)
    if len(value) > limit:
        raise ApiError(422, f"'{name}' must be at most {limit} characters.", field=name)
    return value.strip()


def _model(data: dict) -> str:
    settings = _settings()
    model = data.get("model")
    if model is None or model == "":
        model = settings.gpu_models[0] if settings.gpu_models else "tiny"
    if not isinstance(model, str) or len(model) > 200 or "\x00" in model:
        raise ApiError(422, "'model' must be a model id.", field="model")
    pricing.model_multiplier(model)  # 422 naming 'model' when unknown or disabled
    return model


def _scheduler(data: dict) -> str | None:
    value = data.get("scheduler")
    if value is None or value == "":
        return None
    try:
        return canonical_scheduler(value)
    except ValueError as exc:
        raise ApiError(422, str(exc).replace("scheduler: ", "'scheduler': "), field="scheduler") from None


def _common(data: dict, default_steps: int = 20) -> dict[str, Any]:
    settings = _settings()
    max_n = min(settings.generation_max_images, settings.gpu_max_images)
    seed = _int(data, "seed", None, 0, MAX_SEED)
    return {
        "model": _model(data),
        "n": _int(data, "n", 1, 1, max_n),
        "steps": _int(data, "steps", default_steps, 1, settings.gpu_max_steps),
        "guidance": _number(data, "guidance", 7.5, 0.0, float(settings.gpu_max_guidance)),
        "scheduler": _scheduler(data),
        "seed": random.randint(0, 2**32 - 1) if seed is None else seed,
        "negative_prompt": _text(data, "negative_prompt", required=False),
    }


def _check_pixels(width: int, height: int, field_name: str) -> None:
    limit = _settings().gpu_max_pixels
    if width * height > limit:
        raise ApiError(422, f"{width}x{height} is more than the {limit} pixels one image may have.", field=field_name)


def _check_denoising(steps: int, strength: float | None) -> None:
    """Image to image runs steps x strength denoising steps; fewer than one is nothing to run."""
    if strength is not None and int(steps * strength) < 1:
        raise ApiError(422, f"'steps' x 'strength' must be at least 1 ({steps} x {strength} is not).", field="steps")


def _price(model: str, width: int, height: int, steps: int, n: int) -> int:
    return pricing.image_cost(model, width, height, steps, n)


def _fit_to_grid(image: PILImage.Image, max_pixels: int) -> PILImage.Image:
    """Shrink to the pixel budget if needed and round both sides down to multiples of 8 (what the UNet needs)."""
    width, height = image.size
    if width * height > max_pixels:
        scale = (max_pixels / (width * height)) ** 0.5
        width, height = int(width * scale), int(height * scale)
    width, height = max(8, width - width % 8), max(8, height - height % 8)
    if (width, height) != image.size:
        image = image.resize((width, height), PILImage.Resampling.LANCZOS)
    return image


def _png_b64(image: PILImage.Image) -> str:
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return base64.b64encode(out.getvalue()).decode()


def _open(data: bytes, field_name: str) -> PILImage.Image:
    try:
        image = PILImage.open(io.BytesIO(data))
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError, PILImage.DecompressionBombError):
        raise ApiError(422, f"'{field_name}' is not a PNG, JPEG or WebP image.", field=field_name) from None


def _source(user: User, image_id: Any, field_name: str = "image_id") -> tuple[Image, PILImage.Image]:
    """A library image, published image or template the user may see, decoded."""
    if not isinstance(image_id, str) or not image_id:
        raise ApiError(422, f"'{field_name}' must be the id of an image in your library or a template.",
                       field=field_name)
    row = media.find_visible_image(image_id, user)
    data, _ = media.read_file(row)
    return row, _open(data, field_name).convert("RGB")


def decode_base64_image(value: Any, field_name: str) -> bytes:
    """Bytes of a base64 (or data: URL) image field; 422 naming the field otherwise."""
    if not isinstance(value, str) or not value:
        raise ApiError(422, f"'{field_name}' must be a base64-encoded image.", field=field_name)
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, f"'{field_name}' is not valid base64.", field=field_name) from None


# ------------------------------------------------------------------------------------------------ plans

def plan_generation(user: User, data: dict) -> Plan:
    """Text to image: prompt, negative_prompt, model, width, height, steps, guidance, scheduler, seed, n."""
    common = _common(data)
    prompt = _text(data, "prompt", required=True)
    width = _int(data, "width", 512, 64, 4096)
    height = _int(data, "height", 512, 64, 4096)
    for name, value in (("width", width), ("height", height)):
        if value % 8:
            raise ApiError(422, f"'{name}' must be a multiple of 8.", field=name)
    _check_pixels(width, height, "width")
    cost = _price(common["model"], width, height, common["steps"], common["n"])
    return Plan("generations", "txt2img", "txt2img", width=width, height=height, cost=cost, prompt=prompt,
                **common)


def plan_edit(user: User, data: dict, upload: Image | None = None, mask_bytes: bytes | None = None) -> Plan:
    """Image to image, inpainting (a mask: white is repainted) or an instruction edit of a source image.

    The source is `image_id` (library image or template) or `upload` (stored from this request); the mask is
    `mask_bytes` from an upload, or `mask` (base64) / `mask_id` in data.
    """
    common = _common(data)
    if upload is not None:
        source, picture = _source(user, str(upload.public_id), "image")
    else:
        source, picture = _source(user, data.get("image_id") or data.get("template_id"), "image_id")
    if mask_bytes is None and data.get("mask") is not None:
        mask_bytes = decode_base64_image(data.get("mask"), "mask")
    mask = None
    if mask_bytes is not None:
        mask = _open(mask_bytes, "mask")
    elif data.get("mask_id"):
        mask = _source(user, data.get("mask_id"), "mask_id")[1]
    mode = data.get("mode") or ("inpaint" if mask is not None else "img2img")
    if mode not in EDIT_MODES:
        raise ApiError(422, f"'mode' must be one of {', '.join(EDIT_MODES)}.", field="mode")
    if mode == "inpaint" and mask is None:
        raise ApiError(422, "Inpainting needs a 'mask' (white where the image is repainted).", field="mask")
    prompt = _text(data, "prompt", required=True)
    if data.get("width") is not None or data.get("height") is not None:
        size = (_int(data, "width", picture.width, 64, 4096), _int(data, "height", picture.height, 64, 4096))
        _check_pixels(size[0], size[1], "width")
        picture = picture.resize(size, PILImage.Resampling.LANCZOS)
    picture = _fit_to_grid(picture, _settings().gpu_max_pixels)
    extra: dict[str, Any] = {"image": _png_b64(picture)}
    strength = None
    if mode == "img2img":
        strength = _number(data, "strength", 0.75, 0.0, 1.0, low_open=True)
    elif mode == "inpaint":
        strength = _number(data, "strength", 1.0, 0.0, 1.0, low_open=True)
        extra["mask"] = _png_b64(_mask_for(mask, picture.size))
    else:
        extra["image_guidance"] = _number(data, "image_guidance", 1.5, 0.0, float(_settings().gpu_max_guidance))
    _check_denoising(common["steps"], strength)
    width, height = picture.size
    cost = _price(common["model"], width, height, common["steps"], common["n"])
    return Plan("edits", mode, mode, width=width, height=height, cost=cost, prompt=prompt, strength=strength,
                source=source, gpu_extra=extra, **common)


def _mask_for(mask: PILImage.Image, size: tuple[int, int]) -> PILImage.Image:
    """A grayscale mask of the source's size; a mask with transparency marks transparent pixels for repainting."""
    if mask.mode in ("RGBA", "LA") or (mask.mode == "P" and "transparency" in mask.info):
        alpha = mask.convert("RGBA").getchannel("A")
        mask = alpha.point(lambda a: 255 if a < 128 else 0)
    else:
        mask = mask.convert("L")
    return mask.resize(size, PILImage.Resampling.NEAREST) if mask.size != size else mask


def plan_variation(user: User, image_id: str, data: dict) -> Plan:
    """New takes on an image: image to image from it with its own prompt unless another is given."""
    common = _common(data)
    source, picture = _source(user, image_id, "id")
    # The pipelines need some prompt: an upload has none of its own, so its title (or a neutral one) stands in.
    prompt = _text(data, "prompt", required=False) or source.prompt or source.title or "an image"
    picture = _fit_to_grid(picture, _settings().gpu_max_pixels)
    strength = _number(data, "strength", 0.6, 0.0, 1.0, low_open=True)
    if common["negative_prompt"] is None:
        common["negative_prompt"] = source.negative_prompt
    _check_denoising(common["steps"], strength)
    width, height = picture.size
    cost = _price(common["model"], width, height, common["steps"], common["n"])
    return Plan("variations", "img2img", "variation", width=width, height=height, cost=cost, prompt=prompt,
                strength=strength, source=source, gpu_extra={"image": _png_b64(picture)}, **common)


def plan_upscale(user: User, image_id: str, data: dict) -> Plan:
    """Four times the width and height of an image (one result)."""
    data = {**data, "n": 1}
    common = _common(data)
    source, picture = _source(user, image_id, "id")
    picture = _fit_to_grid(picture, _settings().gpu_max_pixels // (UPSCALE_FACTOR * UPSCALE_FACTOR))
    prompt = _text(data, "prompt", required=False) or source.prompt or ""
    noise_level = _int(data, "noise_level", 20, 0, 350)
    width, height = picture.width * UPSCALE_FACTOR, picture.height * UPSCALE_FACTOR
    cost = _price(common["model"], width, height, common["steps"], 1)
    return Plan("upscale", "upscale", "upscale", width=width, height=height, cost=cost, prompt=prompt,
                source=source, gpu_extra={"image": _png_b64(picture), "noise_level": noise_level}, **common)


def plan(user: User, operation: str, data: dict, image_id: str | None = None) -> Plan:
    """Plan any operation by name (used by asynchronous jobs, which store the request as JSON)."""
    if operation == "generations":
        return plan_generation(user, data)
    if operation == "edits":
        return plan_edit(user, data)
    if operation == "variations":
        return plan_variation(user, image_id or "", data)
    if operation == "upscale":
        return plan_upscale(user, image_id or "", data)
    raise ValueError(f"unknown operation {operation!r}")


# ------------------------------------------------------------------------------------------------- run

def check_affordable(user: User, plan_: Plan) -> None:
    """403 unverified / 402 short, without holding anything (asynchronous jobs hold when they start)."""
    if not user.is_verified:
        raise ApiError(403, "Verify your email address before spending credits.", code="email_not_verified")
    available = credits.balance(user.id)["balance"]
    if available < plan_.cost:
        raise ApiError(402, f"This needs {plan_.cost} credits and {available} are available.",
                       code="insufficient_credits")


def _metrics():
    return current_app.extensions.get("metrics")


def _count(plan_: Plan, outcome: str) -> None:
    metrics = _metrics()
    if metrics is not None:
        metrics.generations.labels(plan_.model, plan_.operation, outcome).inc()


def execute(user: User, plan_: Plan, *, request_id: str | None = None,
            on_hold: Callable[[int], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> list[Image]:
    """Hold the plan's price, run it on the GPU pool, store every image, capture what was delivered.

    On any failure the hold is released and nothing is stored; the error propagates (GPU errors are 502/503/504).
    `on_hold` receives the hold's id; `cancelled` is asked after the GPU answers (a cancelled job stores nothing).
    """
    user_id = user.id
    memo = f"{plan_.operation} with {plan_.model}"
    settings = _settings()
    # An asynchronous job holds when it starts; the deadline outlives the GPU request it is about to make.
    deadline = utcnow() + timedelta(minutes=settings.hold_timeout_minutes,
                                    seconds=settings.gpu_request_timeout_seconds)
    hold_id = credits.hold(user_id, plan_.cost, memo=memo, expires_at=deadline).id
    if on_hold is not None:
        on_hold(hold_id)
    stored: list[Image] = []
    try:
        db.session.commit()  # no transaction stays open while the GPU works
        result = client_from_settings(_settings()).generate(plan_.task, plan_.gpu_payload(), request_id=request_id)
        if cancelled is not None and cancelled():
            raise GenerationCancelled()
        owner = db.session.get(User, user_id)
        parent = db.session.get(Image, plan_.source.id) if plan_.source is not None else None
        for item in result.get("images", []):
            png = base64.b64decode(item["png_base64"])
            params = media.ImageParams(
                kind=plan_.kind, prompt=plan_.prompt, negative_prompt=plan_.negative_prompt, seed=item.get("seed"),
                steps=plan_.steps, guidance=plan_.guidance, scheduler=plan_.scheduler or "ddim",
                model_id=result.get("model") or plan_.model, strength=plan_.strength, parent=parent)
            stored.append(media.store_generated_image(owner, png, params, commit=False))
        if not stored:
            raise ApiError(502, "The GPU pool answered without images; nothing was charged.")
        delivered = min(plan_.cost, _price(plan_.model, plan_.width, plan_.height, plan_.steps, len(stored)))
        # The capture's commit also commits the flushed image rows: both happen or neither does.
        credits.capture(hold_id, delivered, memo=memo)
    except BaseException as exc:
        db.session.rollback()
        for image in stored:
            media.delete_image_files(image)
        try:
            credits.release(hold_id, memo=f"{memo}: failed")
        except Exception:  # the sweeper releases stale holds; the original error matters more
            log.exception("could not release hold %s", hold_id)
        _count(plan_, "cancelled" if isinstance(exc, GenerationCancelled) else "failed")
        raise
    _count(plan_, "succeeded")
    metrics = _metrics()
    if metrics is not None:
        metrics.credits_spent.labels("image").inc(delivered)
    owner = db.session.get(User, user_id)
    try:
        signals.generation_succeeded.send(owner, kind="image")
    except Exception:  # rewards are paid by their own catch-up run; the user's images are already theirs
        db.session.rollback()
        log.exception("generation_succeeded receivers failed for user %s", user_id)
    return stored
