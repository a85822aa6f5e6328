"""Export time per model, and ONNX Runtime (CPU) vs torch-eager latency on the exported graph.

    python benchmarks/bench_export.py [MODEL ...] [--threads N] [--seconds S] [--ops MODE] [--out DIR]

For each model (random weights, paper resolution, batch 1): ``export_model`` (FP32, parity gate
on) is timed end to end; then torch eager (``torch.inference_mode``) and ONNX Runtime
(CPUExecutionProvider, all graph optimisations, intra-op threads = --threads, the same as
torch's) run the same input alternately in one process. Timed region: the forward call alone
(``model(x)`` / ``session.run``), input already in memory. Median of each; ratio = torch / ORT
(> 1: ORT faster). Prints a Markdown table; a script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
from _common import cpu_name, median, time_ms

from litevit.export import export_model
from litevit.export.onnx_export import for_onnxruntime
from litevit.models import list_models


def bench(
    name: str, threads: int, seconds: float, min_iters: int, ops: str, out_root: str
) -> dict[str, object]:
    import onnx

    start = time.perf_counter()
    result = export_model(
        name,
        ops=ops,
        seg_output="logits",
        out_dir=os.path.join(out_root, name),
        threads=threads,
        log=lambda s: None,
    )
    export_s = time.perf_counter() - start
    from litevit.models import create_model

    model = create_model(name)
    h, w = model.cfg.input_size
    x = torch.randn(1, 3, h, w)
    graph = for_onnxruntime(onnx.load(result.files["fp32"]))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    with torch.inference_mode():
        torch_times = time_ms(lambda: model(x), seconds, min_iters)
    ort_times = time_ms(lambda: session.run(None, feed), seconds, min_iters)
    torch_ms, ort_ms = median(torch_times), median(ort_times)
    with torch.inference_mode():
        diff = float(np.abs(session.run(None, feed)[0] - model(x).numpy()).max())
    return {
        "model": name,
        "input": f"{h}x{w}",
        "export_s": export_s,
        "torch_ms": torch_ms,
        "ort_ms": ort_ms,
        "iters": f"{len(torch_times)}/{len(ort_times)}",
        "ratio": torch_ms / ort_ms,
        "max_abs": diff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model names (default: all)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=5.0, help="timing budget per backend and model")
    parser.add_argument("--min-iters", type=int, default=5)
    parser.add_argument("--ops", default="function", choices=("function", "inline"))
    parser.add_argument("--out", help="artefact root (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# export time and ORT-CPU vs torch-eager latency, batch 1: torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}, {cpu_name()}, "
        f"{args.threads} threads, --ops {args.ops}\n"
    )
    print("| model | input | export s | torch ms | ORT ms | torch/ORT | iters | max abs diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models or list_models():
            r = bench(name, args.threads, args.seconds, args.min_iters, args.ops, args.out or tmp)
            print(
                f"| {r['model']} | {r['input']} | {r['export_s']:.1f} | {r['torch_ms']:.1f} | "
                f"{r['ort_ms']:.1f} | {r['ratio']:.2f}x | {r['iters']} | {r['max_abs']:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
