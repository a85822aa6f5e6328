"""Export time, and CPU latency through litevit's runners: torch eager vs ONNX Runtime, batch 1
and 8, every model.

    python benchmarks/bench_runtime.py [MODEL ...] [--threads N] [--seconds S] [--warmup N]

Each model is exported once (FP32, --ops function, dynamic batch, paper resolution, segmentation
as label maps, parity gate on; the export is timed end to end) into a temporary folder; then
``litevit.runtime.bench.run_benchmark`` times the torch and ort backends on that artefact with
the same threads (the same method as ``litevit bench``: warm-up, then every iteration timed;
timed region = the runner's forward call on host memory).
Prints a Markdown table of medians (p50), FPS and the torch/ORT ratio; a script, not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from litevit.export import export_model
from litevit.models import list_models
from litevit.runtime.bench import run_benchmark
from litevit.runtime.environment import collect_environment

BATCHES = (1, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model names (default: all)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=4.0, help="timing budget per backend and batch")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    cpu = collect_environment(args.threads)["cpu_model"]
    print(f"# torch eager vs ONNX Runtime (CPU), {cpu}, {args.threads} threads, medians of one run\n")
    print(
        "| model | input | export s | batch | torch p50 ms | ORT p50 ms | torch FPS | ORT FPS | torch/ORT |",
        end="",
    )
    print(" iters |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models or list_models():
            folder = os.path.join(tmp, name)
            start = time.perf_counter()
            export_model(name, dynamic_batch=True, out_dir=folder, threads=args.threads, log=lambda s: None)
            export_s = time.perf_counter() - start
            docs = {
                backend: run_benchmark(
                    folder,
                    backend=backend,
                    batches=BATCHES,
                    warmup=args.warmup,
                    seconds=args.seconds,
                    threads=args.threads,
                    allow_few_iterations=True,  # prints p50 and the iteration count, not p99
                    log=lambda s: None,
                )
                for backend in ("torch", "ort")
            }
            for torch_run, ort_run in zip(docs["torch"]["runs"], docs["ort"]["runs"], strict=True):
                t, o = torch_run["latency_ms"]["p50"], ort_run["latency_ms"]["p50"]
                shape = ort_run["input_shape"]
                batch = ort_run["batch"]
                iters = f"{torch_run['iterations']}/{ort_run['iterations']}"
                print(
                    f"| {name} | {shape[2]}x{shape[3]} | {export_s:.1f} | {batch} | {t:.1f} | {o:.1f} | "
                    f"{batch * 1000 / t:.1f} | {batch * 1000 / o:.1f} | {t / o:.2f}x | {iters} |",
                    flush=True,
                )
            shutil.rmtree(folder)  # free the disk before the next model (SegViT-L is 1.4 GB)


if __name__ == "__main__":
    main()
