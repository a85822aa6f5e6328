"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_ms(fn: Callable[[], object], seconds: float, min_iters: int, warmup: int = 2) -> list[float]:
    """Sorted per-call times in ms: ``warmup`` untimed calls, then calls until ``seconds`` have
    passed and at least ``min_iters`` were timed."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < seconds:
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return sorted(times)


def median(times: list[float]) -> float:
    return statistics.median(times)
