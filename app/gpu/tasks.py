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
    if p.get("image_a") is not None:
        return interpolate_from_image(pipe, job, max_batch)
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


def start_step(steps: int, strength: float) -> int:
    """The index of the first denoising step for a strength, counted as diffusers' img2img does."""
    return steps - min(int(steps * strength), steps)


def frame_strength(strength_a: float, t: float) -> float:
    """How much of frame t is made anew: strength_a at t=0, rising linearly to 1 (pure prompt B) at t=1."""
    return strength_a + (1.0 - strength_a) * t


def interpolate_from_image(pipe: StableDiffusionPipeline, job: Job, max_batch: int = 8) -> list:
    """Frames from a start image to prompt B, img2img-style.

    The image is encoded by the VAE (the posterior's mean: no sampling, so the same image gives the same
    latents). Frame t starts from those latents noised, with the slerp of seed A's and seed B's noise, to the
    timestep img2img would start at for strength frame_strength(strength_a, t), and is denoised from there
    with the text embeddings lerped from prompt A to prompt B. Frame 0 keeps the image's composition; at t=1
    the strength is 1, the start is seed B's pure noise and the frame is prompt B's txt2img image. Frames whose
    strengths fall on the same starting step share one batched UNet pass (few groups: at most steps + 1).
    """
    p = job.params
    device, dtype = pipe.device, pipe.unet.dtype
    steps, guidance = p["steps"], p["guidance"]
    with torch.inference_mode():
        embeds_a, negative = pipe.encode_prompt(p["prompt_a"], device, 1, True, p["negative_prompt"])
        embeds_b, _ = pipe.encode_prompt(p["prompt_b"], device, 1, True, p["negative_prompt"])
        pixels = pipe.image_processor.preprocess(p["image_a"]).to(device, dtype)
        image_latents = pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor
        shape = tuple(image_latents.shape)
        noise_a = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(p["seed_a"]), dtype=torch.float32)
        noise_b = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(p["seed_b"]), dtype=torch.float32)
        groups: dict[int, list[int]] = {}
        for index, t in enumerate(p["t"]):
            groups.setdefault(start_step(steps, frame_strength(p["strength_a"], t)), []).append(index)
        frames: list = [None] * len(p["t"])
        for start, indices in sorted(groups.items()):
            for first in range(0, len(indices), max_batch):
                batch = indices[first:first + max_batch]
                ts = [p["t"][i] for i in batch]
                prompt_embeds = torch.cat([torch.lerp(embeds_a, embeds_b, t) for t in ts])
                noise = torch.cat([slerp(t, noise_a, noise_b) for t in ts]).to(device, dtype)
                images = _denoise_from(pipe, image_latents.repeat(len(ts), 1, 1, 1), noise, start, prompt_embeds,
                                       negative.repeat(len(ts), 1, 1), steps, guidance, p["seed_a"] + start)
                for i, image in zip(batch, images):
                    frames[i] = image
    return frames


def _denoise_from(pipe: StableDiffusionPipeline, image_latents: torch.Tensor, noise: torch.Tensor, start: int,
                  prompt_embeds: torch.Tensor, negative_embeds: torch.Tensor, steps: int, guidance: float,
                  seed: int) -> list:
    """Denoise from step `start` of the schedule (0: pure noise, as txt2img) and decode to PIL images."""
    scheduler = pipe.scheduler
    scheduler.set_timesteps(steps, device=pipe.device)
    timesteps = scheduler.timesteps[start * scheduler.order:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start * scheduler.order)
    if start == 0:
        latents = noise * scheduler.init_noise_sigma  # exactly txt2img's start: the image has no say
    else:
        latents = scheduler.add_noise(image_latents, noise, timesteps[:1].repeat(len(noise)))
    cfg = guidance > 1 and pipe.unet.config.time_cond_proj_dim is None
    embeds = torch.cat([negative_embeds, prompt_embeds]) if cfg else prompt_embeds
    # Ancestral schedulers draw noise at each step: a seeded generator keeps the frames reproducible.
    extra = pipe.prepare_extra_step_kwargs(torch.Generator("cpu").manual_seed(seed), 0.0)
    for t in timesteps:
        model_input = scheduler.scale_model_input(torch.cat([latents] * 2) if cfg else latents, t)
        predicted = pipe.unet(model_input, t, encoder_hidden_states=embeds, return_dict=False)[0]
        if cfg:
            unconditional, text = predicted.chunk(2)
            predicted = unconditional + guidance * (text - unconditional)
        latents = scheduler.step(predicted, t, latents, **extra, return_dict=False)[0]
    decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
    return pipe.image_processor.postprocess(decoded, output_type="pil", do_denormalize=[True] * len(decoded))
