"""Serving metrics per model: the Prometheus text exposition format (version 0.0.4) for
``/metrics``, and Triton's statistics extension (``GET /v2/models[/NAME[/versions/1]]/stats``)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from litevit._compat import strict_zip
from litevit.serve.batching import BatchTiming


# --------------------------------------------------------------------------------------------
# Metrics, written in the Prometheus text exposition format (version 0.0.4)

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass
class _Histogram:
    bounds: Sequence[float]
    counts: list[int] = field(init=False)  # per bucket, not cumulative; the last one is +Inf
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        lines, cumulative = [], 0
        for bound, count in strict_zip([*self.bounds, math.inf], self.counts):
            cumulative += count
            le = "+Inf" if bound == math.inf else f"{bound:g}"
            lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
        lines.append(f"{name}_sum{{{labels}}} {self.total:.6g}")
        lines.append(f"{name}_count{{{labels}}} {self.count}")
        return lines


@dataclass
class _Duration:
    """A Triton statistic: how many, and their cumulative duration in nanoseconds."""

    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += ns

    def as_dict(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class _BatchStats:
    compute_input: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    compute_output: _Duration = field(default_factory=_Duration)


@dataclass
class _ModelMetrics:
    requests: int = 0
    failures: dict[int, int] = field(default_factory=dict)  # by HTTP status
    latency: _Histogram = field(default_factory=lambda: _Histogram(_LATENCY_BUCKETS_S))
    batch_rows: _Histogram = field(default_factory=lambda: _Histogram(_BATCH_BUCKETS))
    # Triton's statistics: per request (success, fail, queue, compute_*) and per batch size.
    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    queue: _Duration = field(default_factory=_Duration)
    compute_input: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    compute_output: _Duration = field(default_factory=_Duration)
    batches: dict[int, _BatchStats] = field(default_factory=dict)
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0


class Metrics:
    """Per-model counters and histograms; inference requests update them on the event loop,
    batches from worker threads, hence the lock."""

    def __init__(self, models: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._models = {name: _ModelMetrics() for name in models}

    def request(self, model: str, status: int, seconds: float) -> None:
        with self._lock:
            entry = self._models[model]
            entry.requests += 1
            if status >= 400:
                entry.failures[status] = entry.failures.get(status, 0) + 1
            entry.latency.observe(seconds)
            (entry.fail if status >= 400 else entry.success).add(int(seconds * 1e9))

    def batch(self, model: str, timing: BatchTiming) -> None:
        """One successful execution: each of its requests waited ``queue_ns`` and shares the run's
        compute phases (Triton counts them per request and per batch size)."""
        with self._lock:
            entry = self._models[model]
            entry.batch_rows.observe(timing.rows)
            requests = len(timing.queue_ns)
            entry.queue.add(sum(timing.queue_ns), requests)
            entry.compute_input.add(timing.compute_input_ns * requests, requests)
            entry.compute_infer.add(timing.compute_infer_ns * requests, requests)
            entry.compute_output.add(timing.compute_output_ns * requests, requests)
            stats = entry.batches.setdefault(timing.rows, _BatchStats())
            stats.compute_input.add(timing.compute_input_ns)
            stats.compute_infer.add(timing.compute_infer_ns)
            stats.compute_output.add(timing.compute_output_ns)
            entry.inference_count += timing.rows
            entry.execution_count += 1
            entry.last_inference_ms = int(time.time() * 1000)

    def statistics(self, models: Sequence[str], version: str) -> dict[str, Any]:
        """Triton's statistics extension response for ``models``: ``{"model_stats": [...]}``."""
        with self._lock:
            stats = []
            for name in models:
                entry = self._models[name]
                stats.append(
                    {
                        "name": name,
                        "version": version,
                        "last_inference": entry.last_inference_ms,
                        "inference_count": entry.inference_count,
                        "execution_count": entry.execution_count,
                        "inference_stats": {
                            "success": entry.success.as_dict(),
                            "fail": entry.fail.as_dict(),
                            "queue": entry.queue.as_dict(),
                            "compute_input": entry.compute_input.as_dict(),
                            "compute_infer": entry.compute_infer.as_dict(),
                            "compute_output": entry.compute_output.as_dict(),
                            # litevit serve has no response cache.
                            "cache_hit": _Duration().as_dict(),
                            "cache_miss": _Duration().as_dict(),
                        },
                        "batch_stats": [
                            {
                                "batch_size": size,
                                "compute_input": batch.compute_input.as_dict(),
                                "compute_infer": batch.compute_infer.as_dict(),
                                "compute_output": batch.compute_output.as_dict(),
                            }
                            for size, batch in sorted(entry.batches.items())
                        ],
                    }
                )
        return {"model_stats": stats}

    def exposition(self, queue_depths: dict[str, int], in_flight: int) -> str:
        with self._lock:
            out = [
                "# HELP litevit_requests_total Inference requests (infer and image) received, per model.",
                "# TYPE litevit_requests_total counter",
            ]
            for model, entry in self._models.items():
                out.append(f"litevit_requests_total{{{_labels(model)}}} {entry.requests}")
            out += [
                "# HELP litevit_request_failures_total Inference requests answered with an error, per model "
                "and HTTP status.",
                "# TYPE litevit_request_failures_total counter",
            ]
            for model, entry in self._models.items():
                for status, count in sorted(entry.failures.items()):
                    out.append(f'litevit_request_failures_total{{{_labels(model)},code="{status}"}} {count}')
            out += [
                "# HELP litevit_request_duration_seconds Time from request received to response ready.",
                "# TYPE litevit_request_duration_seconds histogram",
            ]
            for model, entry in self._models.items():
                out += entry.latency.lines("litevit_request_duration_seconds", _labels(model))
            out += [
                "# HELP litevit_batch_size Rows per model execution (dynamic batching; padding excluded).",
                "# TYPE litevit_batch_size histogram",
            ]
            for model, entry in self._models.items():
                out += entry.batch_rows.lines("litevit_batch_size", _labels(model))
        out += [
            "# HELP litevit_queue_depth Requests waiting for a worker, per model.",
            "# TYPE litevit_queue_depth gauge",
        ]
        out += [f"litevit_queue_depth{{{_labels(model)}}} {depth}" for model, depth in queue_depths.items()]
        out += [
            "# HELP litevit_inflight_requests Inference requests received and not yet answered.",
            "# TYPE litevit_inflight_requests gauge",
            f"litevit_inflight_requests {in_flight}",
        ]
        return "\n".join(out) + "\n"


def _labels(model: str) -> str:
    escaped = model.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'model="{escaped}"'
