"""Text-to-music and continuation with MusicGen (transformers) under POST /gpu/v1/audio.

The `tiny` id builds a MusicGen from small configs with seeded random weights (T5 text encoder, EnCodec audio
codec, MusicGen decoder), as the transformers test suite does, with a byte-level tokenizer: real code paths,
noise for output. Other ids load with from_pretrained (a Hugging Face id or a local folder).
"""
from __future__ import annotations

import base64
import io
import threading
import time

import numpy as np
import torch
from flask import Blueprint, current_app, jsonify, request

from app.errors import ApiError
from app.gpu_signing import SignatureError, verify

bp = Blueprint("gpu_audio", __name__, url_prefix="/gpu/v1")
MAX_SECONDS = 60
MAX_PROMPT_AUDIO_SECONDS = 30
_models: dict[str, "AudioModel"] = {}
_load_lock = threading.Lock()


class ByteTokenizer:
    """UTF-8 bytes shifted past the pad (0) and eos (1) ids: every prompt tokenizes, offline."""

    def __call__(self, texts: list[str], max_length: int = 256) -> dict:
        rows = [[b + 2 for b in text.encode()[:max_length - 1]] + [1] for text in texts]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}


def build_tiny(seed: int = 0):
    """A MusicGen of ~250k random parameters: 32 kHz, 50 frames/s, 4 codebooks of 64."""
    from transformers import (EncodecConfig, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration, T5Config)

    torch.manual_seed(seed)
    text = T5Config(vocab_size=258, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                    relative_attention_num_buckets=8, eos_token_id=1, pad_token_id=0, decoder_start_token_id=0)
    codec = EncodecConfig(hidden_size=32, num_filters=4, compress=1, codebook_size=64, codebook_dim=32,
                          sampling_rate=32000, upsampling_ratios=[8, 5, 4, 4], target_bandwidths=[1.2],
                          num_lstm_layers=1, audio_channels=1)
    # As in MusicGen (2048 codes, pad/bos id 2048) the special id sits just past the codes, so it is never sampled.
    decoder = MusicgenDecoderConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    ffn_dim=64, num_codebooks=4, pad_token_id=64, bos_token_id=64,
                                    decoder_start_token_id=64, audio_channels=1, max_position_embeddings=4096,
                                    tie_word_embeddings=False)
    return MusicgenForConditionalGeneration(MusicgenConfig(text_encoder=text, audio_encoder=codec,
                                                           decoder=decoder)).eval()


class AudioModel:
    """One loaded MusicGen and its tokenizer; generation holds a lock (seeded global RNG)."""

    def __init__(self, model_id: str, device: torch.device):
        if model_id == "tiny":
            self.model, self.tokenizer = build_tiny(), ByteTokenizer()
        else:
            from transformers import AutoProcessor, MusicgenForConditionalGeneration

            self.model = MusicgenForConditionalGeneration.from_pretrained(model_id).eval()
            processor = AutoProcessor.from_pretrained(model_id)
            self.tokenizer = lambda texts: dict(processor(text=texts, padding=True, return_tensors="pt"))
        self.model.to(device)
        self.device = device
        self.rate = self.model.config.audio_encoder.sampling_rate
        self.frame_rate = self.model.config.audio_encoder.frame_rate
        self.lock = threading.Lock()

    def generate(self, prompt: str, seconds: float, seed: int, prompt_audio: np.ndarray | None) -> np.ndarray:
        """Mono float32 samples: `seconds` of new music (after the prompt audio when continuing)."""
        inputs = {k: v.to(self.device) for k, v in self.tokenizer([prompt]).items()}
        new_tokens = max(1, int(round(seconds * self.frame_rate)))
        prompt_samples = 0
        if prompt_audio is not None and prompt_audio.size:
            prompt_samples = prompt_audio.size
            inputs["input_values"] = torch.from_numpy(prompt_audio).float().view(1, 1, -1).to(self.device)
            inputs["padding_mask"] = torch.ones(1, prompt_samples, dtype=torch.long, device=self.device)
        with self.lock, torch.inference_mode():
            torch.manual_seed(seed)
            values = self.model.generate(**inputs, max_new_tokens=new_tokens, do_sample=True, guidance_scale=3.0)
        samples = values[0, 0].float().cpu().numpy()
        return samples[prompt_samples:] if prompt_samples else samples


def get_model(model_id: str) -> AudioModel:
    """Load a model once per process."""
    with _load_lock:
        if model_id not in _models:
            engine = current_app.extensions["gpu_engine"]
            _models[model_id] = AudioModel(model_id, engine.placement.device)
        return _models[model_id]


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    import wave

    peak = float(np.abs(samples).max()) if samples.size else 0.0
    scaled = samples / peak * 0.9 if peak > 1.0 else samples
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(scaled, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _read_prompt_audio(data: str, rate: int) -> np.ndarray:
    import av

    try:
        with av.open(io.BytesIO(base64.b64decode(data, validate=True))) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = [f.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
                     for f in resampler.resample(frame)]
    except Exception as exc:
        raise ApiError(422, "audio_wav_base64: not decodable audio", field="audio_wav_base64") from exc
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return samples[-MAX_PROMPT_AUDIO_SECONDS * rate:]


@bp.post("/audio")
def generate_audio():
    """Generate `seconds` of music for `prompt` (continuing audio_wav_base64 when given); returns a WAV."""
    settings = current_app.config["ATELIER"]
    try:
        verify(settings.gpu_shared_secret, request.method, request.path, request.get_data(cache=True),
               request.headers)
    except SignatureError as exc:
        raise ApiError(401, str(exc), code="bad_signature") from exc
    body = request.get_json(silent=True) or {}
    model_id = body.get("model", "tiny")
    if model_id not in settings.gpu_models:
        raise ApiError(422, f"model: this host does not serve {model_id!r}", field="model")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > settings.gpu_max_prompt_chars:
        raise ApiError(422, "prompt: must be text of 1 to gpu_max_prompt_chars characters", field="prompt")
    seconds = body.get("seconds", settings.audio_gen_duration)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_SECONDS:
        raise ApiError(422, f"seconds: must be in (0, {MAX_SECONDS}]", field="seconds")
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ApiError(422, "seed: must be a whole number ≥ 0", field="seed")
    started = time.perf_counter()
    model = get_model(model_id)
    prompt_audio = None
    if body.get("audio_wav_base64"):
        prompt_audio = _read_prompt_audio(body["audio_wav_base64"], model.rate)
    samples = model.generate(prompt.strip(), float(seconds), seed, prompt_audio)
    return jsonify({"model": model_id, "sample_rate": model.rate, "seconds": round(samples.size / model.rate, 3),
                    "wav_base64": base64.b64encode(_wav_bytes(samples, model.rate)).decode(),
                    "elapsed_ms": round((time.perf_counter() - started) * 1000, 1)})
