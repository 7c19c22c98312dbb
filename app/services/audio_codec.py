"""Decoding audio with PyAV (its wheels carry ffmpeg): check an upload really is audio, measure it, read samples."""
from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

# Container names as ffmpeg reports them → the MIME type stored with the file.
FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac"}
WAVEFORM_BUCKETS = 200


class AudioDecodeError(ValueError):
    """The bytes are not audio in one of the accepted formats."""


@dataclass
class DecodedAudio:
    """Mono float32 samples in [-1, 1] and what the file says about itself."""

    samples: np.ndarray
    sample_rate: int
    format: str
    mime_type: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.size / self.sample_rate


def decode(data: bytes, rate: int | None = None, max_seconds: float | None = None) -> DecodedAudio:
    """Decode every frame of the first audio stream to mono float32 (resampled to `rate` when given)."""
    if not data:
        raise AudioDecodeError("the file is empty")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise AudioDecodeError("the file is not audio that can be decoded") from exc
    with container:
        names = set(container.format.name.split(","))
        found = [name for name in FORMATS if name in names]
        if not found:
            raise AudioDecodeError(f"{container.format.name} files are not accepted; use WAV, MP3, OGG or FLAC")
        if not container.streams.audio:
            raise AudioDecodeError("the file has no audio stream")
        stream = container.streams.audio[0]
        out_rate = rate or stream.rate or stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=out_rate)
        chunks, total = [], 0
        limit = None if max_seconds is None else int(max_seconds * out_rate) + out_rate
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
                if limit is not None and total > limit:
                    raise AudioDecodeError(f"the audio is longer than {max_seconds:g} seconds")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise AudioDecodeError("the audio data is damaged and cannot be decoded") from exc
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise AudioDecodeError("the file holds no audio samples")
    return DecodedAudio(samples, out_rate, found[0], FORMATS[found[0]])


def waveform(samples: np.ndarray, buckets: int = WAVEFORM_BUCKETS) -> list[float]:
    """Peak amplitude per bucket, for drawing the clip on a page."""
    if samples.size == 0:
        return []
    edges = np.linspace(0, samples.size, min(buckets, samples.size) + 1).astype(int)
    peaks = np.maximum.reduceat(np.abs(samples), edges[:-1])
    return [round(float(p), 4) for p in peaks]


def encode_wav(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM WAV bytes of mono float samples."""
    import wave

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return buffer.getvalue()
