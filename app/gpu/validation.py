"""Input checks before any GPU work: each bad value raises ValueError-style InvalidField naming the field."""
from __future__ import annotations

import base64
import binascii
import io
import random
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, UnidentifiedImageError

from app.gpu.schedulers import canonical_scheduler

TASKS = ("txt2img", "img2img", "inpaint", "instruct", "upscale", "interpolate")
MAX_SEED = 2**63 - 1


class InvalidField(ValueError):
    """A request value outside what the pipelines accept; `field` names it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = f"{field_name}: {message}"


@dataclass
class Limits:
    """Bounds from config."""

    max_pixels: int = 1024 * 1024
    max_steps: int = 150
    max_guidance: float = 30.0
    max_images: int = 8
    max_prompt_chars: int = 2000
    max_frames: int = 64


@dataclass
class Job:
    """One validated request: what to run and how it may be batched with others."""

    task: str
    model: str
    params: dict[str, Any]
    seeds: list[int] = field(default_factory=list)

    def batch_key(self) -> tuple | None:
        """Requests with equal keys can share one pipeline call; None means run alone."""
        if self.task not in ("txt2img", "img2img", "inpaint"):
            return None
        p = self.params
        return (self.model, self.task, p["width"], p["height"], p["steps"], p["scheduler"], p["guidance"],
                p.get("strength"))


def _int(body: dict, name: str, default: int | None, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        raise InvalidField(name, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InvalidField(name, "must be an integer")
    if not low <= value <= high:
        raise InvalidField(name, f"must be between {low} and {high}, not {value}")
    return value


def _float(body: dict, name: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidField(name, "must be a number")
    value = float(value)
    if value > high or value < low or (low_open and value == low):
        bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise InvalidField(name, f"must be in {bound}, not {value}")
    return value


def _text(body: dict, name: str, limits: Limits, required: bool = True) -> str:
    value = body.get(name, None if required else "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidField(name, "must be a string")
    if required and not value.strip():
        raise InvalidField(name, "is required")
    if len(value) > limits.max_prompt_chars:
        raise InvalidField(name, f"is longer than {limits.max_prompt_chars} characters")
    return value


def _size(width: int, height: int, limits: Limits, names: tuple[str, str] = ("width", "height"),
          scale: int = 1) -> tuple[int, int]:
    for name, value in zip(names, (width, height)):
        if value % 8:
            raise InvalidField(name, f"must be a multiple of 8, not {value}")
    if width * height * scale * scale > limits.max_pixels:
        raise InvalidField(names[0], f"{width * scale}x{height * scale} is over the pixel budget of "
                                     f"{limits.max_pixels} pixels")
    return width, height


def _requested_size(body: dict, limits: Limits) -> tuple[int, int]:
    return _size(_int(body, "width", 512, 8, 16384), _int(body, "height", 512, 8, 16384), limits)


def decode_image(body: dict, name: str, mode: str = "RGB") -> Image.Image:
    """A base64 PNG/JPEG from the request body as a PIL image."""
    raw = body.get(name)
    if not isinstance(raw, str) or not raw:
        raise InvalidField(name, "is required (base64 PNG or JPEG)")
    if raw.startswith("data:"):
        raw = raw.partition(",")[2]
    try:
        image = Image.open(io.BytesIO(base64.b64decode(raw, validate=True)))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidField(name, "is not a base64-encoded image") from exc
    return image.convert(mode)


def _seeds(body: dict, count: int, name: str = "seed") -> list[int]:
    seed = body.get(name)
    if seed is None:
        seed = random.randint(0, 2**32 - 1)
    seed = _int({name: seed}, name, None, 0, MAX_SEED - count)
    return [seed + i for i in range(count)]


def _model(body: dict, models: list[str]) -> str:
    model = body.get("model") or (models[0] if models else None)
    if not isinstance(model, str) or model not in models:
        raise InvalidField("model", f"unknown model {model!r}; this host serves {', '.join(models)}")
    return model


def _start_image(body: dict, params: dict) -> None:
    """image_a (the frames' start, exactly width x height) and strength_a (how much of frame 0 is made anew)."""
    image = decode_image(body, "image_a")
    if image.size != (params["width"], params["height"]):
        raise InvalidField("image_a", f"must be {params['width']}x{params['height']} (width x height), "
                                      f"not {image.width}x{image.height}")
    params["image_a"] = image
    params["strength_a"] = _float(body, "strength_a", 0.5, 0.0, 1.0, low_open=True)
    if int(params["steps"] * params["strength_a"]) < 1:
        raise InvalidField("strength_a", f"steps x strength_a must be at least 1 denoising step "
                                         f"({params['steps']} x {params['strength_a']})")


def validate(task: str, body: Any, models: list[str], limits: Limits) -> Job:
    """Check a request body for a task and return the Job to run; InvalidField names the first bad value."""
    if task not in TASKS:
        raise InvalidField("task", f"unknown task {task!r}")
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    model = _model(body, models)
    params: dict[str, Any] = {
        "steps": _int(body, "steps", 20, 1, limits.max_steps),
        "guidance": _float(body, "guidance", 7.5, 0.0, limits.max_guidance),
    }
    try:
        params["scheduler"] = canonical_scheduler(body.get("scheduler"))
    except ValueError as exc:
        raise InvalidField("scheduler", str(exc).partition(": ")[2]) from exc

    if task == "interpolate":
        start_image = body.get("image_a") is not None
        # With a start image, prompt A may be empty: the image says where the walk starts.
        params["prompt_a"] = _text(body, "prompt_a", limits, required=not start_image)
        params["prompt_b"] = _text(body, "prompt_b", limits)
        params["negative_prompt"] = _text(body, "negative_prompt", limits, required=False)
        params["seed_a"] = _seeds(body, 1, "seed_a")[0]
        params["seed_b"] = _seeds(body, 1, "seed_b")[0]
        ts = body.get("t")
        if not isinstance(ts, list) or not ts or len(ts) > limits.max_frames:
            raise InvalidField("t", f"must be a list of 1 to {limits.max_frames} numbers in [0, 1]")
        params["t"] = [_float({"t": value}, "t", 0.0, 0.0, 1.0) for value in ts]
        params["width"], params["height"] = _requested_size(body, limits)
        if start_image:
            _start_image(body, params)
        return Job(task, model, params, [params["seed_a"], params["seed_b"]])

    params["prompt"] = _text(body, "prompt", limits, required=task != "upscale")
    params["negative_prompt"] = _text(body, "negative_prompt", limits, required=False)
    count = _int(body, "n", 1, 1, limits.max_images)
    if task == "txt2img":
        params["width"], params["height"] = _requested_size(body, limits)
    else:
        image = decode_image(body, "image")
        scale = 4 if task == "upscale" else 1
        params["width"], params["height"] = _size(image.width, image.height, limits, ("image", "image"), scale)
        params["image"] = image
        if task == "img2img":
            params["strength"] = _float(body, "strength", 0.75, 0.0, 1.0, low_open=True)
        if task == "inpaint":
            params["strength"] = _float(body, "strength", 1.0, 0.0, 1.0, low_open=True)
            mask = decode_image(body, "mask", "L")
            if mask.size != image.size:
                raise InvalidField("mask", f"must be the size of the image {image.size}, not {mask.size}")
            params["mask"] = mask
        if "strength" in params and int(params["steps"] * params["strength"]) < 1:
            # diffusers runs int(steps * strength) denoising steps; zero would fail inside the pipeline.
            raise InvalidField("strength", f"steps x strength must be at least 1 denoising step "
                                           f"({params['steps']} x {params['strength']})")
        if task == "instruct":
            params["image_guidance"] = _float(body, "image_guidance", 1.5, 0.0, limits.max_guidance)
        if task == "upscale":
            params["noise_level"] = _int(body, "noise_level", 20, 0, 350)
    return Job(task, model, params, _seeds(body, count))
