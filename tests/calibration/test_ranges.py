"""Activation ranges: minmax, percentile and TensorRT-style entropy thresholds."""

import numpy as np
import pytest

from litevit.calibration.ranges import QUANT_LEVELS, RangeCollector, entropy_threshold


def _batches(seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"a": rng.normal(0, 1, (4, 64, 64)).astype(np.float32), "b": rng.uniform(-3, 1, (4, 4096))}
        for _ in range(5)
    ]


def _collect(method, batches, **kw):
    collector = RangeCollector(["a", "b"])
    for values in batches:
        collector.observe_maxima(values)
    for values in batches:
        collector.observe_histograms(values)
    return collector.thresholds(method, **kw)


def test_minmax_is_the_largest_magnitude_over_all_batches():
    batches = _batches()
    thresholds = _collect("minmax", batches)
    for name in ("a", "b"):
        assert thresholds[name] == pytest.approx(max(np.abs(v[name]).max() for v in batches))


def test_percentile_lands_within_one_bin_of_numpy_percentile():
    batches = _batches(1)
    thresholds = _collect("percentile", batches, percentile=99.0)
    for name in ("a", "b"):
        values = np.abs(np.concatenate([v[name].ravel() for v in batches]))
        bin_width = values.max() / 2048
        assert abs(thresholds[name] - np.percentile(values, 99.0)) <= 2 * bin_width


def _naive_entropy_index(counts):
    """TensorRT's entropy calibration written out loop by loop (independent of the vectorised one)."""
    best, best_kl = None, np.inf
    for cut in range(QUANT_LEVELS, len(counts) + 1):
        reference = [float(c) for c in counts[:cut]]
        reference[-1] += float(sum(counts[cut:]))
        candidate = [0.0] * cut
        for level in range(QUANT_LEVELS):
            members = [i for i in range(cut) if (i * QUANT_LEVELS) // cut == level]
            mass = sum(float(counts[i]) for i in members)
            nonempty = [i for i in members if counts[i] > 0]
            for i in nonempty:
                candidate[i] = mass / len(nonempty)
        p_sum, q_sum = sum(reference), sum(candidate)
        kl = 0.0
        for p, q in zip(reference, candidate, strict=True):
            if p > 0:
                kl += (p / p_sum) * np.log((p / p_sum) / max(q / q_sum, 1e-12))
        if kl < best_kl:
            best, best_kl = cut, kl
    return best


def test_entropy_matches_a_loop_by_loop_implementation():
    rng = np.random.default_rng(3)
    counts, _ = np.histogram(np.abs(rng.standard_t(3, 20000)), bins=200)
    top = 1.0
    expected_cut = _naive_entropy_index(counts)
    assert entropy_threshold(counts, top) == pytest.approx((expected_cut - 0.5) * top / len(counts))


def test_entropy_clips_rare_outliers_that_minmax_keeps():
    rng = np.random.default_rng(4)
    values = rng.normal(0, 1, (64, 1000)).astype(np.float32)
    values[0, :3] = 60.0  # three outliers far beyond the bulk
    batches = [{"a": values, "b": values}]
    minmax = _collect("minmax", batches)["a"]
    entropy = _collect("entropy", batches)["a"]
    assert minmax == pytest.approx(60.0)
    assert 2.0 < entropy < 20.0


def test_all_zero_tensor_gets_zero_threshold_and_unknown_method_is_refused():
    collector = RangeCollector(["z"])
    collector.observe_maxima({"z": np.zeros(10)})
    collector.observe_histograms({"z": np.zeros(10)})
    assert collector.thresholds("entropy") == {"z": 0.0}
    with pytest.raises(ValueError, match="unknown calibration method 'kl'"):
        collector.thresholds("kl")
