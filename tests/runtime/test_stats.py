"""Latency statistics against numpy and hand-computed values on known samples."""

import numpy as np
import pytest

from litevit.runtime.stats import STAT_KEYS, images_per_second, latency_stats


def test_percentiles_by_hand_on_one_to_ten():
    # Linear interpolation between ranks: position p/100 * (n - 1) in the sorted samples.
    stats = latency_stats([7, 1, 10, 3, 2, 9, 4, 6, 5, 8])  # order must not matter
    assert stats["min"] == 1 and stats["max"] == 10
    assert stats["mean"] == pytest.approx(5.5)
    assert stats["p50"] == pytest.approx(5.5)  # position 4.5
    assert stats["p90"] == pytest.approx(9.1)  # position 8.1
    assert stats["p95"] == pytest.approx(9.55)  # position 8.55
    assert stats["p99"] == pytest.approx(9.91)  # position 8.91
    assert stats["std"] == pytest.approx(np.sqrt(8.25))  # population std of 1..10


def test_matches_numpy_on_skewed_samples():
    rng = np.random.default_rng(3)
    samples = rng.lognormal(mean=1.0, sigma=0.4, size=997).tolist()  # latency-like right tail
    stats = latency_stats(samples)
    assert tuple(stats) == STAT_KEYS
    for p in (50, 90, 95, 99):
        assert stats[f"p{p}"] == pytest.approx(float(np.percentile(samples, p)), rel=1e-12)
    assert stats["std"] == pytest.approx(float(np.std(samples)), rel=1e-12)
    assert stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p95"] <= stats["p99"] <= stats["max"]


def test_single_sample_is_every_statistic():
    stats = latency_stats([4.25])
    assert stats == {key: (0.0 if key == "std" else 4.25) for key in STAT_KEYS}


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [[1.0, 2.0]], [float("inf")]])
def test_rejects_empty_or_non_finite(bad):
    with pytest.raises(ValueError):
        latency_stats(bad)


def test_images_per_second():
    assert images_per_second(1, 20.0) == pytest.approx(50.0)
    assert images_per_second(8, 20.0) == pytest.approx(400.0)
    with pytest.raises(ValueError):
        images_per_second(1, 0.0)
