"""Latency statistics of one benchmark run.

Percentiles use numpy's default definition, linear interpolation between the two nearest ranks
(``numpy.percentile(..., method="linear")``, Hyndman & Fan type 7): the p-th percentile of n
sorted samples x[0..n-1] is x[k] + f * (x[k+1] - x[k]) with k + f = p/100 * (n - 1). The standard
deviation is the population one (ddof=0), as trtexec and timm report it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from litevit._compat import strict_zip

PERCENTILES = (50, 90, 95, 99)
STAT_KEYS = ("mean", "std", "min", *(f"p{p}" for p in PERCENTILES), "max")


def latency_stats(samples_ms: Sequence[float]) -> dict[str, float]:
    """mean, std, min, p50, p90, p95, p99 and max of per-iteration latencies in milliseconds."""
    samples = np.asarray(samples_ms, dtype=np.float64)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError("latency_stats needs a non-empty, one-dimensional sequence of samples")
    if not np.all(np.isfinite(samples)):
        raise ValueError("latency samples must be finite numbers")
    percentiles = np.percentile(samples, PERCENTILES, method="linear")
    stats = {"mean": float(samples.mean()), "std": float(samples.std()), "min": float(samples.min())}
    stats.update({f"p{p}": float(value) for p, value in strict_zip(PERCENTILES, percentiles)})
    stats["max"] = float(samples.max())
    return stats


def samples_needed(percentiles: Sequence[float] = PERCENTILES) -> int:
    """The fewest samples for which every percentile in ``percentiles`` has at least one sample
    above it, i.e. is measured rather than the maximum or an interpolation towards it:
    ceil(100 / (100 - p)) for the highest p (100 for p99, 20 for p95)."""
    return max(math.ceil(100.0 / (100.0 - p) - 1e-9) for p in percentiles)


def images_per_second(batch: int, mean_latency_ms: float) -> float:
    """Throughput of back-to-back inferences: ``batch`` images every ``mean_latency_ms``."""
    if batch < 1 or not math.isfinite(mean_latency_ms) or mean_latency_ms <= 0:
        raise ValueError(f"need batch >= 1 and a positive mean latency; got {batch}, {mean_latency_ms}")
    return batch / mean_latency_ms * 1000.0


__all__ = ["PERCENTILES", "STAT_KEYS", "images_per_second", "latency_stats", "samples_needed"]
