"""Deterministic synthetic inputs for checks that need no data: parity gates, engine parity and the
self-test. Never used for calibration or accuracy (those read the user's images)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def smooth_pictures(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """(N, C, H, W) smooth pictures in [0, 1]: gradients, low-frequency waves and a blob per
    channel, like natural images in their statistics where random noise is not."""
    rng = np.random.default_rng(seed)
    batch, channels, height, width = shape
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    pictures = np.empty((batch, channels, height, width), dtype=np.float32)
    for index in np.ndindex(batch, channels):
        fy, fx, phase = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 2 * np.pi)
        wave = 0.5 + 0.25 * np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.3)
        blob = 0.25 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        pictures[index] = np.clip(wave + blob * rng.choice([-1, 1]) + 0.1 * (yy - 0.5), 0, 1)
    return pictures


def image_like(
    shape: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    pixel_scale: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """:func:`smooth_pictures` in a model's input units: pixels in [0, pixel_scale], normalised."""
    pixels = smooth_pictures(shape, seed) * np.float32(pixel_scale)
    mean_ = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std_ = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return ((pixels - mean_) / std_).astype(np.float32)
