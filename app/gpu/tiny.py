"""The built-in `tiny` model: real diffusers components from small configs with seeded random weights."""
from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

TINY_ID = "tiny"
TEXT_DIM = 32
VOCAB_SIZE = 1000


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map (what a byte-level BPE vocabulary is made of)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def build_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer over single bytes (no merges): every prompt tokenizes, offline, deterministically."""
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in _bytes_to_unicode().values():
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _seeded(seed: int):
    torch.manual_seed(seed)


def build_text_encoder(seed: int = 0) -> CLIPTextModel:
    """A 2-layer CLIP text encoder of width 32."""
    _seeded(seed)
    config = CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=TEXT_DIM, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, vocab_size=VOCAB_SIZE,
        max_position_embeddings=77,
    )
    return CLIPTextModel(config).eval()


def build_unet(seed: int = 0, in_channels: int = 4, out_channels: int = 4, **extra) -> UNet2DConditionModel:
    """A two-level UNet (32, 64 channels), one layer per block, cross-attention width 32."""
    _seeded(seed)
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=in_channels,
        out_channels=out_channels, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=TEXT_DIM,
        attention_head_dim=8, norm_num_groups=16, **extra,
    ).eval()


def build_vae(seed: int = 0, levels: int = 4) -> AutoencoderKL:
    """A small KL autoencoder with 4 latent channels; 4 levels give SD's 8x factor (3 for the upscaler's 4x)."""
    _seeded(seed)
    channels = (16, 32, 32, 32)[:levels]
    return AutoencoderKL(
        block_out_channels=channels, in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        latent_channels=4, layers_per_block=1, norm_num_groups=16, sample_size=64,
    ).eval()


def default_scheduler() -> DDIMScheduler:
    """SD 1.5's scheduler settings."""
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1)


def base_components(seed: int = 0) -> dict:
    """Components for StableDiffusionPipeline (and every pipeline that shares them)."""
    return {
        "unet": build_unet(seed),
        "vae": build_vae(seed + 1),
        "text_encoder": build_text_encoder(seed + 2),
        "tokenizer": build_tokenizer(),
        "scheduler": default_scheduler(),
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }


def instruct_unet(seed: int = 0) -> UNet2DConditionModel:
    """InstructPix2Pix's UNet takes the image latents as 4 extra input channels."""
    return build_unet(seed + 10, in_channels=8)


def upscale_components(base: dict, seed: int = 0) -> dict:
    """Components for StableDiffusionUpscalePipeline: a 7-channel UNet, a 4x VAE, the base text encoder."""
    unet = build_unet(seed + 20, in_channels=7, class_embed_type=None, num_class_embeds=1000)
    return {
        "unet": unet,
        "vae": build_vae(seed + 21, levels=3),
        "text_encoder": base["text_encoder"],
        "tokenizer": base["tokenizer"],
        "scheduler": DDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction"),
        "low_res_scheduler": DDPMScheduler(),
        "max_noise_level": 350,
    }
