"""Anchors: litevit's ONNX Runtime graphs against what a user would otherwise run on the same CPU —
torch eager, torch.compile (inductor) and OpenVINO on litevit's own ONNX — in one process.

    python benchmarks/anchors.py [MODEL ...] [--batch 1 8] [--threads 2] [--rounds 20]
        [--seconds 60] [--seg-output labels] [--backends eager compile ort-function ...]
        [--json anchors.json]

Per model and batch size: the model is exported once per ``--ops`` route (static shapes, FP32,
parity gate skipped: agreement is measured here instead) into a temporary folder; every backend
runs the same computation (segmenters: the exported module, i.e. label maps with the default
``--seg-output labels``) on the same fixed-seed input, with the same intra-op thread count:

* ``eager``, ``compile``: litevit's torch runner (the exported module rebuilt from the manifest),
  ``torch.compile`` with the default inductor backend for the second;
* ``ort-function``, ``ort-inline``: litevit's ONNX Runtime runner (CPUExecutionProvider, default
  graph optimisations) on the ``--ops function`` and ``--ops inline`` graphs;
* ``openvino``: OpenVINO's CPU plugin (FP32 inference precision, one stream, latency hint) on the
  ``--ops inline`` graph, when ``openvino`` is installed (``pip install 'litevit[openvino]'``).

Method: each backend is built and warmed up (``--warmup`` runs; torch.compile compiles during
its first one), then the backends are timed in interleaved rounds — one iteration of each per
round, the order rotating — so that a shared or throttling machine slows all of them alike. A
cell stops after ``--rounds`` rounds, or earlier once ``--seconds`` have passed and at least
``--min-rounds`` were taken. Reported: the median latency per backend, ORT's speed-up over eager,
the best other backend against the best ORT route, and achieved GFLOP/s (2 x the model's MACs per
image, ``litevit.flops``) against this machine's FP32 GEMM peak, measured in the same run as the
best of ``torch.mm`` and ONNX Runtime's MatMul on 2048² matrices with the same threads. A backend
that fails (e.g. torch.compile of a model it cannot trace) is reported with its first error line.
Agreement with eager is checked on the outputs: logits cosine, or label-map pixel agreement.

Prints Markdown; ``--json`` also writes every sample and the environment. A script that prints
figures, not a test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from litevit._deps import has
from litevit._io import write_json
from litevit.export import export_model
from litevit.runtime.environment import collect_environment, package_version
from litevit.runtime.runners import open_runner

DEFAULT_MODELS = (
    "lvt",
    "mobile_former_294m",
    "elsa_swin_tiny",
    "elsa_swin_base",
    "lvt_seg",
    "segvit_vit_b_ade",
)
BACKENDS = ("eager", "compile", "ort-function", "ort-inline", "openvino")
ORT_ROUTES = ("ort-function", "ort-inline")
GEMM_SIZE = 2048


@dataclass
class Backend:
    """One way of running the model: a callable that runs one inference and returns the output."""

    name: str
    run: Callable[[], np.ndarray] | None = None
    error: str | None = None
    times_ms: list[float] = field(default_factory=list)
    agreement: str = ""

    @property
    def median(self) -> float | None:
        return float(np.median(self.times_ms)) if self.times_ms else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:160]


def _runner_backend(name: str, folder: Path, feeds: dict[str, np.ndarray], threads: int) -> Backend:
    backend = Backend(name)
    try:
        if name in ("eager", "compile"):
            runner = open_runner(folder, "torch", threads=threads, compile=name == "compile")
        else:
            runner = open_runner(folder, "ort", threads=threads)
        output = runner.outputs()[0].name
        backend.run = lambda: runner.infer(feeds)[output]
    except Exception as exc:  # a benchmark reports a backend that cannot start, it does not stop
        backend.error = _first_line(exc)
    return backend


def _openvino_backend(onnx_path: Path, feeds: dict[str, np.ndarray], threads: int) -> Backend:
    backend = Backend("openvino")
    if not has("openvino"):
        backend.error = "not installed (pip install 'litevit[openvino]')"
        return backend
    try:
        import openvino as ov

        compiled = ov.Core().compile_model(
            str(onnx_path),
            "CPU",
            {
                "INFERENCE_NUM_THREADS": threads,
                "NUM_STREAMS": 1,
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": "f32",
            },
        )
        request = compiled.create_infer_request()
        inputs = dict(feeds)

        def run() -> np.ndarray:
            request.infer(inputs)
            return np.asarray(request.get_output_tensor(0).data).copy()

        backend.run = run
    except Exception as exc:
        backend.error = _first_line(exc)
    return backend


def _agreement(reference: np.ndarray, output: np.ndarray) -> str:
    if output.shape != reference.shape:
        return f"shape {output.shape} != {reference.shape}"
    if np.issubdtype(reference.dtype, np.integer):
        return f"{100.0 * float(np.mean(output == reference)):.2f}% px"
    a, b = reference.astype(np.float64).ravel(), output.astype(np.float64).ravel()
    cosine = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))
    return f"cos {cosine:.6f}"


def gemm_peak_gflops(threads: int, repeats: int = 5) -> dict[str, float]:
    """Best achieved FP32 GEMM rate of ``torch.mm`` and ONNX Runtime's MatMul, 2048² x 2048²."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    n = GEMM_SIZE
    flops = 2.0 * n**3
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.set_num_threads(threads)
    best_torch = min(_time_once(lambda: torch.mm(a, b)) for _ in range(repeats))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {"a": a.numpy(), "b": b.numpy()}
    best_ort = min(_time_once(lambda: session.run(None, feeds)) for _ in range(repeats))
    return {"torch_mm": flops / best_torch / 1e9, "ort_matmul": flops / best_ort / 1e9}


def _time_once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_cell(
    model: str, batch: int, backends: list[str], args: argparse.Namespace, tmp: Path
) -> tuple[list[Backend], dict[str, Any]]:
    """Export, build, warm up and time every backend for one (model, batch)."""
    folders: dict[str, Path] = {}
    manifest: dict[str, Any] = {}
    routes = {"function"} | ({"inline"} if {"ort-inline", "openvino"} & set(backends) else set())
    for ops in sorted(routes):
        folder = tmp / f"{model}-b{batch}-{ops}"
        result = export_model(
            model,
            batch=batch,
            ops=ops,
            out_dir=folder,
            check=False,
            seg_output=args.seg_output,
            progress=False,
            log=lambda s: None,
        )
        folders[ops] = folder
        manifest = result.manifest
    shape = manifest["inputs"][0]["shape"]
    feeds = {
        manifest["inputs"][0]["name"]: np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    }
    built: list[Backend] = []
    for name in backends:
        if name == "openvino":
            built.append(_openvino_backend(folders["inline"] / f"{model}.onnx", feeds, args.threads))
        else:
            built.append(
                _runner_backend(
                    name, folders["inline" if name == "ort-inline" else "function"], feeds, args.threads
                )
            )
    reference = None
    for backend in built:
        if backend.run is None:
            continue
        try:
            for _ in range(args.warmup):
                output = backend.run()
        except Exception as exc:
            backend.run, backend.error = None, _first_line(exc)
            continue
        if reference is None:
            reference = output
        backend.agreement = _agreement(reference, output)
    live = [b for b in built if b.run is not None]
    start = time.perf_counter()
    for round_index in range(args.rounds):
        if round_index >= args.min_rounds and time.perf_counter() - start > args.seconds:
            break
        shift = round_index % max(len(live), 1)
        for backend in live[shift:] + live[:shift]:
            assert backend.run is not None
            backend.times_ms.append(1e3 * _time_once(backend.run))
    return built, manifest


def _fmt(value: float | None) -> str:
    return "–" if value is None else (f"{value:.1f}" if value >= 10 else f"{value:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=f"model names (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20, help="interleaved timed rounds per cell (max)")
    parser.add_argument("--min-rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget per cell")
    parser.add_argument("--seg-output", choices=("labels", "logits"), default="labels")
    parser.add_argument("--json", type=Path, help="also write every sample and the environment here")
    args = parser.parse_args()
    if not set(ORT_ROUTES) & set(args.backends):
        parser.error("--backends needs at least one ONNX Runtime route (ort-function or ort-inline).")
    torch.set_num_threads(args.threads)
    environment = collect_environment(args.threads)
    environment["openvino"] = package_version("openvino")
    peak = gemm_peak_gflops(args.threads)
    peak_gflops = max(peak.values())
    print(
        f"# Anchors: {environment['cpu_model']}, {args.threads} threads; torch {environment['torch']}, "
        f"onnxruntime {environment['onnxruntime']}, openvino {environment['openvino'] or 'absent'}\n"
        f"FP32 GEMM peak measured now ({GEMM_SIZE}²): torch.mm {peak['torch_mm']:.0f}, ORT MatMul "
        f"{peak['ort_matmul']:.0f} GFLOP/s. Median ms over interleaved rounds.\n"
    )
    header = (
        ["model", "batch"]
        + args.backends
        + ["ORT vs eager", "best other vs ORT", "GFLOP/s (ORT)", "% GEMM peak", "rounds", "agreement"]
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    record: dict[str, Any] = {"environment": environment, "gemm_peak_gflops": peak, "cells": []}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models or DEFAULT_MODELS:
            for batch in args.batch:
                backends, manifest = bench_cell(model, batch, args.backends, args, Path(tmp))
                by_name = {b.name: b for b in backends}
                ort = min(
                    (b for b in backends if b.name in ORT_ROUTES and b.median is not None),
                    key=lambda b: b.median or 0.0,
                    default=None,
                )
                others = [b for b in backends if b.name not in ORT_ROUTES and b.median is not None]
                best_other = min(others, key=lambda b: b.median or 0.0, default=None)
                eager = by_name.get("eager")
                cells = [
                    _fmt(by_name[name].median) if by_name[name].median is not None else "fails"
                    for name in args.backends
                ]
                vs_eager = (
                    f"{eager.median / ort.median:.2f}×"
                    if ort and ort.median and eager is not None and eager.median
                    else "–"
                )
                if ort and ort.median and best_other and best_other.median:
                    ratio = best_other.median / ort.median
                    versus = (
                        f"ORT ahead of {best_other.name} by {100 * (ratio - 1):.0f} %"
                        if ratio >= 1
                        else f"{best_other.name} {1 / ratio:.2f}× faster"
                    )
                else:
                    versus = "–"
                macs = manifest["complexity"]["macs"] * batch
                gflops = 2 * macs / (ort.median * 1e-3) / 1e9 if ort and ort.median else None
                rounds = max(len(b.times_ms) for b in backends)
                agreement = "; ".join(
                    f"{b.name} {b.agreement}" for b in backends if b.agreement and b is not eager
                )
                print(
                    "| "
                    + " | ".join(
                        [model, str(batch), *cells, vs_eager, versus, _fmt(gflops)]
                        + [f"{100 * gflops / peak_gflops:.0f} %" if gflops else "–", str(rounds), agreement]
                    )
                    + " |",
                    flush=True,
                )
                record["cells"].append(
                    {
                        "model": model,
                        "batch": batch,
                        "input_shape": manifest["inputs"][0]["shape"],
                        "macs_per_batch": macs,
                        "backends": {
                            b.name: {
                                "median_ms": b.median,
                                "samples_ms": b.times_ms,
                                "error": b.error,
                                "agreement": b.agreement,
                            }
                            for b in backends
                        },
                    }
                )
    failures = [
        (cell["model"], name, entry["error"])
        for cell in record["cells"]
        for name, entry in cell["backends"].items()
        if entry["error"]
    ]
    for model, name, error in dict.fromkeys(failures):
        print(f"\n- {model} / {name} fails: {error}", end="")
    print()
    if args.json:
        write_json(args.json, record)


if __name__ == "__main__":
    main()
