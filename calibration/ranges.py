"""Activation ranges from calibration data: minmax, entropy (KL divergence) and percentile.

All three give a symmetric clipping threshold ``amax`` per tensor, the INT8 scale being
``amax / 127`` with zero point 0 (TensorRT parses symmetric Q/DQ only):

* ``minmax``: the largest |x| seen. Nothing is clipped; outliers cost resolution.
* ``entropy``: TensorRT's entropy calibration: over a 2048-bin histogram of |x|, the threshold
  whose 128-level quantised distribution is closest (Kullback-Leibler) to the clipped original.
* ``percentile``: the given percentile of |x| (default 99.99), read from the same histogram.

The histograms need each tensor's maximum first, so ``entropy`` and ``percentile`` read the
calibration set twice (a first pass for the maxima, a second for the histograms); ``minmax`` once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METHODS = ("entropy", "minmax", "percentile")
HISTOGRAM_BINS = 2048
QUANT_LEVELS = 128  # |x| maps onto 0..127


class RangeCollector:
    """Accumulates |x| statistics for a fixed set of tensors over calibration batches."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.maxima = dict.fromkeys(self.names, 0.0)
        self.histograms: dict[str, np.ndarray] = {}

    def observe_maxima(self, values: dict[str, np.ndarray]) -> None:
        for name in self.names:
            self.maxima[name] = max(self.maxima[name], float(np.abs(values[name]).max(initial=0.0)))

    def observe_histograms(self, values: dict[str, np.ndarray]) -> None:
        """After every batch went through :meth:`observe_maxima`: bin |x| over [0, max]."""
        for name in self.names:
            top = self.maxima[name]
            if top <= 0.0:
                continue
            counts, _ = np.histogram(np.abs(values[name]), bins=HISTOGRAM_BINS, range=(0.0, top))
            if name in self.histograms:
                self.histograms[name] += counts
            else:
                self.histograms[name] = counts.astype(np.int64)

    def thresholds(self, method: str, percentile: float = 99.99) -> dict[str, float]:
        """``amax`` per tensor. A tensor that was all zeros gets 0 (the quantizer leaves it alone)."""
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}.")
        result = {}
        for name in self.names:
            top = self.maxima[name]
            if method == "minmax" or top <= 0.0:
                result[name] = top
                continue
            histogram = self.histograms[name]
            if method == "percentile":
                result[name] = percentile_threshold(histogram, top, percentile)
            else:
                result[name] = entropy_threshold(histogram, top)
        return result


def passes_needed(method: str) -> int:
    return 1 if method == "minmax" else 2


def percentile_threshold(histogram: np.ndarray, top: float, percentile: float) -> float:
    """The upper edge of the bin where the cumulative count reaches ``percentile`` %."""
    cumulative = np.cumsum(histogram)
    index = int(np.searchsorted(cumulative, cumulative[-1] * percentile / 100.0))
    return float((min(index, len(histogram) - 1) + 1) * top / len(histogram))


def entropy_threshold(histogram: np.ndarray, top: float) -> float:
    """TensorRT's entropy calibration over one |x| histogram (``HISTOGRAM_BINS`` bins on [0, top]).

    For each candidate cut at ``i`` bins (``QUANT_LEVELS`` .. all): the reference distribution is
    the histogram's first ``i`` bins with everything beyond folded into the last one; the candidate
    merges those ``i`` bins into ``QUANT_LEVELS`` groups and spreads each group's mass evenly over
    its non-empty bins. The cut with the smallest KL(reference || candidate) wins; the threshold is
    the middle of its last bin.
    """
    counts = histogram.astype(np.float64)
    bins = len(counts)
    if bins <= QUANT_LEVELS:
        return top
    best_index, best_divergence = bins, np.inf
    tail = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # tail[i] = counts[i:].sum()
    for cut in range(QUANT_LEVELS, bins + 1):
        reference = counts[:cut].copy()
        reference[-1] += tail[cut]
        kept = counts[:cut]
        group = (np.arange(cut) * QUANT_LEVELS) // cut
        group_mass = np.bincount(group, weights=kept, minlength=QUANT_LEVELS)
        group_nonempty = np.bincount(group, weights=(kept > 0).astype(np.float64), minlength=QUANT_LEVELS)
        spread = np.where(kept > 0, group_mass[group] / np.maximum(group_nonempty[group], 1.0), 0.0)
        divergence = _kl_divergence(reference, spread)
        if divergence < best_divergence:
            best_index, best_divergence = cut, divergence
    return float((best_index - 0.5) * top / bins)


def _kl_divergence(reference: np.ndarray, candidate: np.ndarray) -> float:
    p_total, q_total = reference.sum(), candidate.sum()
    if p_total <= 0 or q_total <= 0:
        return np.inf
    p = reference / p_total
    q = candidate / q_total
    support = p > 0
    # A reference bin the candidate leaves empty (only the folded-in outlier bin can be) is
    # smoothed rather than made infinite, so heavy tails still compare.
    q_support = np.maximum(q[support], 1e-12)
    return float(np.sum(p[support] * np.log(p[support] / q_support)))
