"""What work costs in credits, from config: per model, by pixels x steps x images, or per second of audio/video.

price_image_credits is the price of one 512x512 image at 20 steps with a model multiplier of 1.0; other sizes
scale linearly with pixels, steps and images. Audio and video cost price_per_audio_second and
price_per_video_second per second. Every cost is multiplied by the model's price_multiplier (models table;
1.0 for a configured model without a row), computed exactly with fractions, rounded up, and at least 1.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.errors import ApiError
from app.extensions import db
from app.models import ModelEntry

REFERENCE_PIXELS = 512 * 512
REFERENCE_STEPS = 20
LIMITS = {"width": (64, 4096), "height": (64, 4096), "steps": (1, 200), "images": (1, 16)}
MAX_SECONDS = 3600
KINDS = ("image", "audio", "video")


def _settings():
    return current_app.config["ATELIER"]


def _round(value: Fraction) -> int:
    return max(1, math.ceil(value))


def model_multiplier(model_id: str) -> Fraction:
    """The model's price multiplier; 422 for a model that is unknown or disabled."""
    row = db.session.scalar(select(ModelEntry).where(ModelEntry.model_id == model_id))
    if row is not None:
        if not row.enabled:
            raise ApiError(422, f"The model {model_id!r} is disabled.", field="model")
        return Fraction(str(row.price_multiplier))
    if model_id in _settings().gpu_models:
        return Fraction(1)
    raise ApiError(422, f"Unknown model {model_id!r}.", field="model")


def image_cost(model_id: str, width: int, height: int, steps: int, images: int = 1) -> int:
    """Credits for `images` images of width x height at `steps` steps."""
    scale = Fraction(width * height, REFERENCE_PIXELS) * Fraction(steps, REFERENCE_STEPS) * images
    return _round(_settings().price_image_credits * model_multiplier(model_id) * scale)


def audio_cost(model_id: str, seconds: float) -> int:
    """Credits for `seconds` of generated audio."""
    return _round(_settings().price_per_audio_second * model_multiplier(model_id) * Fraction(str(seconds)))


def video_cost(model_id: str, seconds: float) -> int:
    """Credits for `seconds` of rendered video."""
    return _round(_settings().price_per_video_second * model_multiplier(model_id) * Fraction(str(seconds)))


def _whole(data: dict[str, Any], name: str, default: int | None = None) -> int:
    value = data.get(name, default)
    low, high = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(422, f"'{name}' must be a whole number from {low} to {high}.", field=name)
    return value


def _seconds(data: dict[str, Any]) -> float:
    value = data.get("seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_SECONDS:
        raise ApiError(422, f"'seconds' must be a number above 0 and at most {MAX_SECONDS}.", field="seconds")
    return value


def quote(data: dict[str, Any]) -> dict:
    """Price a request described as JSON ({"kind": "image", "model", "width", "height", "steps", "images"}
    or {"kind": "audio"|"video", "model", "seconds"}) without doing it."""
    kind = data.get("kind", "image")
    if kind not in KINDS:
        raise ApiError(422, f"'kind' must be one of {', '.join(KINDS)}.", field="kind")
    model = data.get("model", "tiny")
    if not isinstance(model, str) or not model.strip():
        raise ApiError(422, "'model' must be a model id.", field="model")
    model = model.strip()
    if kind == "image":
        params = {"width": _whole(data, "width", 512), "height": _whole(data, "height", 512),
                  "steps": _whole(data, "steps", REFERENCE_STEPS), "images": _whole(data, "images", 1)}
        cost = image_cost(model, **params)
    else:
        params = {"seconds": _seconds(data)}
        cost = (audio_cost if kind == "audio" else video_cost)(model, params["seconds"])
    return {"kind": kind, "model": model, **params, "cost": cost}
