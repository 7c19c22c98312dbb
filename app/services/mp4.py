"""Frames (uint8 RGB arrays) plus an optional audio clip → an H.264 MP4 with AAC audio, and a poster PNG."""
from __future__ import annotations

import io
import os
import tempfile
from fractions import Fraction
from typing import Iterable

import av
import numpy as np
from PIL import Image

AUDIO_RATE = 44100


def _mux_audio(container, stream, audio_bytes: bytes, seconds: float) -> None:
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=1024)
    limit = int(seconds * AUDIO_RATE)
    written = 0
    with av.open(io.BytesIO(audio_bytes), mode="r") as source:
        frames = source.decode(source.streams.audio[0])
        for frame in [*frames, None]:
            for out in resampler.resample(frame):
                if written >= limit:
                    break
                out.pts = written
                out.time_base = Fraction(1, AUDIO_RATE)
                written += out.samples
                for packet in stream.encode(out):
                    container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def encode_mp4(frames: Iterable[np.ndarray], width: int, height: int, fps: int,
               audio_bytes: bytes | None = None, seconds: float | None = None, crf: int = 20) -> bytes:
    """Encode frames at `fps` as H.264 (yuv420p, faststart) and mux the audio trimmed to `seconds`."""
    handle, path = tempfile.mkstemp(suffix=".mp4")
    os.close(handle)
    try:
        with av.open(path, mode="w", options={"movflags": "+faststart"}) as container:
            video = container.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "veryfast"})
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            # Every stream exists before the first packet: the header is written then.
            audio = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo") if audio_bytes else None
            count = 0
            for array in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
                for packet in video.encode(frame):
                    container.mux(packet)
                count += 1
            for packet in video.encode(None):
                container.mux(packet)
            if audio is not None:
                _mux_audio(container, audio, audio_bytes, seconds if seconds is not None else count / fps)
        with open(path, "rb") as result:
            return result.read()
    finally:
        os.unlink(path)


def poster_png(frame: np.ndarray) -> bytes:
    """One frame as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def probe(data: bytes) -> dict:
    """Duration, frame rate, frame count and streams of an MP4 (what a player would see)."""
    with av.open(io.BytesIO(data), mode="r") as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        return {
            "duration": container.duration / av.time_base if container.duration else None,
            "fps": float(video.average_rate) if video.average_rate else None,
            "frames": frames,
            "codec": video.codec_context.name,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "audio": [s.codec_context.name for s in container.streams.audio],
        }
