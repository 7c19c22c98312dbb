"""The audio-reactive walk: which prompt segment and which interpolation t each video frame shows.

Frames advance faster on percussive hits: the percussive part of the audio (median-filter HPSS over an STFT)
gives an energy per video frame; accumulated and normalised over each segment between two timed prompts it
maps frame index → t in [0, 1). `smooth` blends the curve toward the linear walk (1.0 is linear).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import stft

ANALYSIS_RATE = 22050
N_FFT = 1024
HOP = 256
HPSS_KERNEL = 17


def percussive_envelope(samples: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """Percussive spectral energy per STFT frame and the STFT hop in seconds."""
    if samples.size < N_FFT:
        samples = np.pad(samples, (0, N_FFT - samples.size))
    _, _, spectrum = stft(samples, fs=rate, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=None, padded=True)
    magnitude = np.abs(spectrum).astype(np.float32)
    harmonic = median_filter(magnitude, size=(1, HPSS_KERNEL), mode="nearest")
    percussive = median_filter(magnitude, size=(HPSS_KERNEL, 1), mode="nearest")
    mask = percussive ** 2 / (harmonic ** 2 + percussive ** 2 + 1e-10)
    return (magnitude * mask).sum(axis=0), HOP / rate


def frame_energies(samples: np.ndarray | None, rate: int, fps: int, frames: int) -> np.ndarray:
    """Mean percussive energy during each video frame (ones when there is no audio)."""
    if samples is None or samples.size == 0:
        return np.ones(frames)
    envelope, hop_seconds = percussive_envelope(samples, rate)
    # Each STFT frame describes the sound around its window's centre.
    times = np.arange(envelope.size) * hop_seconds + N_FFT / 2 / rate
    index = np.minimum((times * fps).astype(int), frames)
    sums = np.bincount(index, weights=envelope, minlength=frames + 1)[:frames]
    counts = np.bincount(index, minlength=frames + 1)[:frames]
    return sums / np.maximum(counts, 1)


def segments(prompts: list[dict], fps: int, frames: int) -> list[tuple[int, int, int, int]]:
    """(from prompt, to prompt, first frame, end frame) for each walk; after the last prompt the frames hold it."""
    starts = [min(frames, int(round(p["at"] * fps))) for p in prompts]
    result = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else frames
        if end > start:
            target = k + 1 if k + 1 < len(prompts) else k
            result.append((k, target, start, end))
    return result


def build_schedule(prompts: list[dict], fps: int, frames: int, smooth: float,
                   energies: np.ndarray) -> list[list]:
    """[from prompt, to prompt, t] for every frame."""
    schedule: list[list] = []
    for source, target, start, end in segments(prompts, fps, frames):
        count = end - start
        if source == target:
            schedule += [[source, target, 0.0]] * count
            continue
        steps = energies[start:end].astype(np.float64) + 1e-9
        reactive = np.concatenate([[0.0], np.cumsum(steps)[:-1]]) / steps.sum()
        linear = np.arange(count) / count
        curve = smooth * linear + (1.0 - smooth) * reactive
        schedule += [[source, target, round(float(t), 6)] for t in curve]
    return schedule
