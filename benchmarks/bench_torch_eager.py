"""Torch-eager CPU latency of every litevit model at its paper resolution (batch 1, random weights).

    python benchmarks/bench_torch_eager.py [MODEL ...] [--threads N] [--seconds S] [--min-iters N]

Timed region: ``model(x)`` under ``torch.inference_mode()``, input already in memory, no pre- or
post-processing. Each model gets 2 warm-up runs, then is run until ``--seconds`` have passed and
at least ``--min-iters`` timings were taken; median and p90 are reported. Prints a Markdown table.
This is a script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from litevit.flops import count_model
from litevit.models import create_model, list_models
from litevit.runtime.environment import collect_environment
from litevit.runtime.stats import latency_stats


def bench(name: str, seconds: float, min_iters: int) -> dict[str, float | str]:
    model = create_model(name)
    h, w = model.cfg.paper.resolution or model.cfg.input_size
    x = torch.randn(1, 3, h, w)
    report = count_model(model, (h, w))
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        start = time.perf_counter()
        while len(times) < min_iters or time.perf_counter() - start < seconds:
            t0 = time.perf_counter_ns()
            model(x)
            times.append((time.perf_counter_ns() - t0) / 1e6)
    stats = latency_stats(times)  # the same percentile definition as `litevit bench`
    return {
        "model": name,
        "input": f"{h}x{w}",
        "params_m": report.params_m,
        "gmacs": report.gmacs,
        "iters": len(times),
        "median_ms": stats["p50"],
        "p90_ms": stats["p90"],
        "fps": 1000.0 / stats["p50"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model names (default: all)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=5.0, help="timing budget per model")
    parser.add_argument("--min-iters", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = collect_environment(args.threads)["cpu_model"]
    print(
        f"# torch-eager CPU latency, batch 1: torch {torch.__version__}, {cpu}, "
        f"{args.threads} threads, Python {platform.python_version()}\n"
    )
    print("| model | input | params M | GMACs | iters | median ms | p90 ms | FPS |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.models or list_models():
        r = bench(name, args.seconds, args.min_iters)
        print(
            f"| {r['model']} | {r['input']} | {r['params_m']:.2f} | {r['gmacs']:.2f} | {r['iters']} | "
            f"{r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['fps']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
