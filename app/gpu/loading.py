"""One loading path for every model source: `tiny`, a local diffusers folder or .safetensors file, a Hugging Face id."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch

from app.gpu import tiny

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Placement:
    """Where pipelines run and in what precision."""

    device: torch.device
    dtype: torch.dtype
    compile: bool = False

    @property
    def is_cuda(self) -> bool:
        """True on an NVIDIA GPU."""
        return self.device.type == "cuda"


def placement_from_settings(settings) -> Placement:
    """Device and dtype from config: CPU float32 by default; half precision only where a GPU runs it."""
    device = torch.device(settings.gpu_device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"gpu_device is {settings.gpu_device!r} but CUDA is not available on this host")
    if settings.gpu_dtype not in DTYPES:
        raise RuntimeError(f"gpu_dtype must be one of {', '.join(DTYPES)}, not {settings.gpu_dtype!r}")
    dtype = DTYPES[settings.gpu_dtype]
    if device.type == "cpu" and dtype == torch.float16:
        log.warning("float16 is slow and inexact on CPU; using float32")
        dtype = torch.float32
    return Placement(device, dtype, settings.gpu_torch_compile)


@dataclass
class LoadedModel:
    """A model's shared components and the pipeline families built from them."""

    model_id: str
    base: object  # a diffusers pipeline
    extras: dict[str, object] = field(default_factory=dict)  # task → pipeline with its own components

    def modules(self) -> list[torch.nn.Module]:
        """Every torch module this model holds (shared ones once)."""
        seen: dict[int, torch.nn.Module] = {}
        for pipe in [self.base, *self.extras.values()]:
            for component in pipe.components.values():
                if isinstance(component, torch.nn.Module):
                    seen[id(component)] = component
        return list(seen.values())

    def nbytes(self) -> int:
        """Bytes of parameters and buffers: what the model costs in VRAM (or RAM on CPU)."""
        tensors: dict[int, torch.Tensor] = {}
        for module in self.modules():
            for tensor in [*module.parameters(), *module.buffers()]:
                tensors[id(tensor)] = tensor
        return sum(t.numel() * t.element_size() for t in tensors.values())


def _hub_kwargs(settings) -> dict:
    kwargs = {"token": settings.huggingface_token or None}
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        kwargs["local_files_only"] = True
    return kwargs


def _load_pretrained(model_id: str, settings, dtype: torch.dtype):
    from diffusers import DiffusionPipeline, StableDiffusionPipeline

    common = {"torch_dtype": dtype}
    if os.path.isfile(model_id) and model_id.endswith((".safetensors", ".ckpt")):
        return StableDiffusionPipeline.from_single_file(model_id, **common)
    if os.path.isdir(model_id):
        return DiffusionPipeline.from_pretrained(model_id, safety_checker=None, **common)
    return DiffusionPipeline.from_pretrained(model_id, safety_checker=None, **common, **_hub_kwargs(settings))


def _tiny_model(dtype: torch.dtype) -> LoadedModel:
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline, StableDiffusionUpscalePipeline

    components = tiny.base_components()
    base = StableDiffusionPipeline(**components)
    instruct = StableDiffusionInstructPix2PixPipeline(**{**base.components, "unet": tiny.instruct_unet()})
    upscale = StableDiffusionUpscalePipeline(**tiny.upscale_components(base.components))
    if dtype != torch.float32:
        for pipe in (base, instruct, upscale):
            pipe.to(dtype=dtype)
    return LoadedModel(tiny.TINY_ID, base, {"instruct": instruct, "upscale": upscale})


def _place(model: LoadedModel, placement: Placement) -> None:
    for pipe in [model.base, *model.extras.values()]:
        pipe.to(placement.device)  # dtype was chosen at load time
        pipe.set_progress_bar_config(disable=True)
    if placement.is_cuda:
        from diffusers.models.attention_processor import AttnProcessor2_0

        for pipe in [model.base, *model.extras.values()]:
            unet = pipe.unet
            unet.set_attn_processor(AttnProcessor2_0())  # scaled_dot_product_attention (flash / mem-efficient)
            unet.to(memory_format=torch.channels_last)
            pipe.vae.to(memory_format=torch.channels_last)
            if placement.compile and not hasattr(unet, "_orig_mod"):
                pipe.unet = torch.compile(unet, mode="max-autotune-no-cudagraphs", fullgraph=False)


def load_model(model_id: str, settings, placement: Placement) -> LoadedModel:
    """Load a model id from its source and place it on the configured device and dtype."""
    log.info("loading model %s on %s (%s)", model_id, placement.device, placement.dtype)
    if model_id == tiny.TINY_ID:
        model = _tiny_model(placement.dtype)
    else:
        model = LoadedModel(model_id, _load_pretrained(model_id, settings, placement.dtype))
    _place(model, placement)
    return model
