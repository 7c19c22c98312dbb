"""The tasks: one pipeline call for a batch of compatible jobs, each job keeping its own seeds and images."""
from __future__ import annotations

import torch
from diffusers import (StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline,
                       StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline,
                       StableDiffusionUpscalePipeline)
from diffusers.utils.torch_utils import randn_tensor

from app.gpu.loading import LoadedModel
from app.gpu.schedulers import make_scheduler
from app.gpu.validation import InvalidField, Job

TASK_PIPELINES = {
    "txt2img": StableDiffusionPipeline,
    "interpolate": StableDiffusionPipeline,
    "img2img": StableDiffusionImg2ImgPipeline,
    "inpaint": StableDiffusionInpaintPipeline,
    "instruct": StableDiffusionInstructPix2PixPipeline,
    "upscale": StableDiffusionUpscalePipeline,
}
# UNet input channels each family of pipelines needs.
UNET_CHANNELS = {"instruct": (8,), "upscale": (7,), "inpaint": (4, 9)}
_pipeline_cache: dict[tuple[int, str], object] = {}


def pipeline_for(model: LoadedModel, task: str):
    """The task's pipeline over the model's shared components (no second copy of the weights)."""
    if task in model.extras:
        return model.extras[task]
    source = model.base
    channels = source.unet.config.in_channels
    if channels not in UNET_CHANNELS.get(task, (4,)):
        raise InvalidField("model", f"model {model.model_id!r} cannot run {task} (its UNet takes {channels} channels)")
    key = (id(source), task)
    if key not in _pipeline_cache:
        cls = TASK_PIPELINES[task]
        if isinstance(source, cls) and type(source) is cls:
            pipe = source
        else:
            names = set(cls._get_signature_keys(cls)[0]) | set(cls._get_signature_keys(cls)[1])
            pipe = cls(**{k: v for k, v in source.components.items() if k in names})
            pipe.set_progress_bar_config(disable=True)
        _pipeline_cache[key] = pipe
    return _pipeline_cache[key]


def forget(model: LoadedModel) -> None:
    """Drop the task pipelines built over an unloaded model."""
    for key in [k for k in _pipeline_cache if k[0] == id(model.base)]:
        del _pipeline_cache[key]


def _generators(seeds: list[int]) -> list[torch.Generator]:
    # CPU generators make the noise the same on every device type, so a seed means one image everywhere.
    return [torch.Generator("cpu").manual_seed(seed) for seed in seeds]


def run(model: LoadedModel, jobs: list[Job], max_batch: int = 8) -> list[list]:
    """Run compatible jobs in one pipeline call; returns each job's PIL images in order."""
    first = jobs[0]
    pipe = pipeline_for(model, first.task)
    p = first.params
    if getattr(pipe, "_atelier_scheduler_config", None) is None:
        pipe._atelier_scheduler_config = pipe.scheduler.config  # the model's own settings, before any swap
    pipe.scheduler = make_scheduler(p["scheduler"], pipe._atelier_scheduler_config)
    if first.task == "interpolate":
        return [interpolate(pipe, first, max_batch)]
    prompts, negatives, seeds, images, masks = [], [], [], [], []
    for job in jobs:
        for seed in job.seeds:
            prompts.append(job.params["prompt"])
            negatives.append(job.params["negative_prompt"])
            seeds.append(seed)
            images.append(job.params.get("image"))
            masks.append(job.params.get("mask"))
    kwargs = dict(prompt=prompts, negative_prompt=negatives, num_inference_steps=p["steps"],
                  guidance_scale=p["guidance"], generator=_generators(seeds), output_type="pil")
    if first.task == "txt2img":
        kwargs.update(width=p["width"], height=p["height"])
    elif first.task == "img2img":
        kwargs.update(image=images, strength=p["strength"])
    elif first.task == "inpaint":
        kwargs.update(image=images, mask_image=masks, strength=p["strength"], width=p["width"], height=p["height"])
    elif first.task == "instruct":
        kwargs.update(image=images, image_guidance_scale=p["image_guidance"])
    elif first.task == "upscale":
        kwargs.update(image=images, noise_level=p["noise_level"])
    with torch.inference_mode():
        output = pipe(**kwargs).images
    results, start = [], 0
    for job in jobs:
        results.append(output[start:start + len(job.seeds)])
        start += len(job.seeds)
    return results


def slerp(t: float, a: torch.Tensor, b: torch.Tensor, dot_threshold: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation between two noise tensors (keeps the noise's norm, unlike a lerp)."""
    a_flat, b_flat = a.flatten().double(), b.flatten().double()
    dot = torch.dot(a_flat / a_flat.norm(), b_flat / b_flat.norm())
    if dot.abs() > dot_threshold:
        return ((1 - t) * a + t * b).to(a.dtype)
    theta = torch.arccos(dot)
    sin_theta = torch.sin(theta)
    mixed = (torch.sin((1 - t) * theta) / sin_theta) * a.double() + (torch.sin(t * theta) / sin_theta) * b.double()
    return mixed.to(a.dtype)


def interpolate(pipe: StableDiffusionPipeline, job: Job, max_batch: int = 8) -> list:
    """One frame per t: lerp the text embeddings of prompt A and B, slerp their seeds' initial noise."""
    p = job.params
    device, dtype = pipe.device, pipe.unet.dtype
    with torch.inference_mode():
        embeds_a, negative = pipe.encode_prompt(p["prompt_a"], device, 1, True, p["negative_prompt"])
        embeds_b, _ = pipe.encode_prompt(p["prompt_b"], device, 1, True, p["negative_prompt"])
        shape = (1, pipe.unet.config.in_channels, p["height"] // pipe.vae_scale_factor,
                 p["width"] // pipe.vae_scale_factor)
        noise_a = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(p["seed_a"]), dtype=torch.float32)
        noise_b = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(p["seed_b"]), dtype=torch.float32)
        frames = []
        for start in range(0, len(p["t"]), max_batch):
            ts = p["t"][start:start + max_batch]
            prompt_embeds = torch.cat([torch.lerp(embeds_a, embeds_b, t) for t in ts])
            latents = torch.cat([slerp(t, noise_a, noise_b) for t in ts]).to(device, dtype)
            frames += pipe(prompt_embeds=prompt_embeds, negative_prompt_embeds=negative.repeat(len(ts), 1, 1),
                           latents=latents, width=p["width"], height=p["height"], num_inference_steps=p["steps"],
                           guidance_scale=p["guidance"], output_type="pil").images
    return frames
