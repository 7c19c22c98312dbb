"""Interpolation from a start image (image_a, strength_a), in process on the tiny model; the same through real
hosts behind the proxy is in tests/video/test_start_image.py."""
from __future__ import annotations

import base64
import copy
import io

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

from app.gpu import tasks
from app.gpu.loading import LoadedModel, _tiny_model
from app.gpu.validation import InvalidField, Limits, validate
from tests.gpu.conftest import png_base64

SIZE = {"width": 64, "height": 64, "steps": 4, "model": "tiny"}
YY, XX = np.mgrid[0:64, 0:64]
START = np.stack([XX * 4, YY * 4, 255 - XX * 2], -1).astype("uint8")
UNRELATED = np.stack([255 - YY * 4, (XX * YY) % 256, np.full_like(XX, 40)], -1).astype("uint8")


def _b64(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def model():
    """The tiny model, its VAE's scaling factor set so latents have unit variance (what SD's 0.18215 does for
    SD's VAE; the random tiny VAE's latents are ~0.24, so without it even t=1 noise would swamp the image)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    base = _tiny_model(torch.float32).base
    vae = copy.deepcopy(base.vae)
    with torch.inference_mode():
        spread = vae.encode(base.image_processor.preprocess(Image.fromarray(START))).latent_dist.mean.std().item()
    vae.register_to_config(scaling_factor=1 / spread)
    yield LoadedModel("tiny", StableDiffusionPipeline(**{**base.components, "vae": vae}), {})
    torch.set_num_threads(threads)


def _frames(model, image: np.ndarray, ts: list[float], **extra) -> list[np.ndarray]:
    body = {**SIZE, "prompt_a": "", "prompt_b": "a blue whale", "seed_a": 1, "seed_b": 2, "t": ts,
            "image_a": _b64(image), "strength_a": 0.25, **extra}
    job = validate("interpolate", body, ["tiny"], Limits())
    return [np.asarray(frame).astype(int) for frame in tasks.run(model, [job])[0]]


def _vae_roundtrip(model, image: np.ndarray) -> np.ndarray:
    """What the model's VAE makes of an image: the best any frame can look like it."""
    pipe = model.base
    with torch.inference_mode():
        latents = pipe.vae.encode(pipe.image_processor.preprocess(Image.fromarray(image))).latent_dist.mean
        decoded = pipe.vae.decode(latents, return_dict=False)[0]
    return np.asarray(pipe.image_processor.postprocess(decoded, output_type="pil")[0]).astype(int)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_frame_zero_looks_like_the_start_image_and_the_walk_ends_at_prompt_b(model):
    frames = _frames(model, START, [0, 0.5, 1])
    own, other = _vae_roundtrip(model, START), _vae_roundtrip(model, UNRELATED)
    assert _mad(frames[0], own) * 4 < _mad(frames[0], other)
    assert _mad(frames[1], own) > _mad(frames[0], own) * 2  # halfway, much of the image is made anew
    # At t=1 the strength is 1: exactly prompt B's txt2img image for seed B, whatever the start image was.
    txt2img = validate("txt2img", {**SIZE, "prompt": "a blue whale", "seed": 2}, ["tiny"], Limits())
    assert np.abs(frames[2] - np.asarray(tasks.run(model, [txt2img])[0][0]).astype(int)).max() <= 1
    assert np.abs(frames[2] - _frames(model, UNRELATED, [1])[0]).max() <= 1
    unrelated_start = _frames(model, UNRELATED, [0])[0]
    assert _mad(unrelated_start, other) * 4 < _mad(unrelated_start, own)


def test_same_inputs_give_the_same_frames_however_they_are_chunked(model):
    whole = _frames(model, START, [0, 0.25, 0.5, 0.75, 1])
    again = _frames(model, START, [0, 0.25, 0.5, 0.75, 1])
    assert all(np.array_equal(a, b) for a, b in zip(whole, again))
    pieces = _frames(model, START, [0, 0.25]) + _frames(model, START, [0.5, 0.75, 1])
    assert all(np.abs(a - b).max() <= 1 for a, b in zip(whole, pieces))
    other_seed = _frames(model, START, [0.5], seed_a=7)[0]
    assert _mad(other_seed, whole[2]) > 1


@pytest.mark.parametrize("changes, field", [
    ({"image_a": "bm90IGFuIGltYWdl"}, "image_a"),  # base64 of "not an image"
    ({"image_a": "%%%"}, "image_a"),
    ({"image_a": png_base64(32, 64)}, "image_a"),  # not width x height
    ({"strength_a": 0}, "strength_a"),
    ({"strength_a": 1.5}, "strength_a"),
    ({"strength_a": "high"}, "strength_a"),
    ({"strength_a": 0.2}, "strength_a"),  # 4 steps x 0.2 is no denoising step at all
    ({"image_a": None, "prompt_a": ""}, "prompt_a"),  # without a start image, prompt A is required
])
def test_bad_start_images_and_strengths_name_the_field(changes, field):
    body = {**SIZE, "prompt_a": "", "prompt_b": "b", "t": [0], "image_a": png_base64(64, 64), **changes}
    with pytest.raises(InvalidField) as error:
        validate("interpolate", body, ["tiny"], Limits())
    assert error.value.field == field

