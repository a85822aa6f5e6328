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
round, the order rotating — so that a shared or throttling machine slows all of them alike.
Before each timed iteration the script sleeps ``--settle`` seconds (untimed): ONNX Runtime's and
OpenVINO's worker threads and torch's OpenMP threads keep spinning for a while after a run, and
without the pause they take the cores the next backend's threads need (torch eager, whose every
op is a parallel region, slowed 10-30x that way on a 2-core machine). A
cell stops after ``--rounds`` rounds, or earlier once ``--seconds`` have passed and at least
``--min-rounds`` were taken. Reported: the median latency per backend, ORT's speed-up over eager,
the best other backend against the best ORT route, and achieved GFLOP/s (2 x the model's MACs per
image, ``litevit.flops``) against this machine's FP32 GEMM peak: a 2048² x 2048² ``torch.mm``
with the same threads is timed as one more member of every round, so the peak is measured under
the same conditions as the model (the median of its rounds; ONNX Runtime's own MatMul reached no
more here). A backend that fails (e.g. torch.compile of a model it cannot trace) is reported with
its first error line.
Agreement with eager is checked on the outputs: logits cosine, or label-map pixel agreement.

``--clock cpu`` reports the process's CPU time per run instead of wall-clock latency: with
``--threads 1`` it does not count time the process spent waiting for a core, so it is the figure
to quote from a shared machine (with more threads it counts spinning worker threads too).

Prints Markdown; ``--json`` also writes every sample (both clocks) and the environment. A script
that prints figures, not a test.
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
    times_ms: list[float] = field(default_factory=list)  # of the clock the table reports
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    agreement: str = ""

    @property
    def median(self) -> float | None:
        return float(np.median(self.times_ms)) if self.times_ms else None

    def record(self, clock: str) -> None:
        """Time one run on both clocks; ``times_ms`` gets the reported one."""
        assert self.run is not None
        wall, cpu = time.perf_counter(), time.process_time()
        self.run()
        self.wall_ms.append(1e3 * (time.perf_counter() - wall))
        self.cpu_ms.append(1e3 * (time.process_time() - cpu))
        self.times_ms.append(self.wall_ms[-1] if clock == "wall" else self.cpu_ms[-1])


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


def gemm_backend(threads: int) -> Backend:
    """The FP32 GEMM peak probe: ``torch.mm`` of two 2048² matrices (time it like a backend)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(GEMM_SIZE, GEMM_SIZE), torch.randn(GEMM_SIZE, GEMM_SIZE)
    return Backend("gemm", run=lambda: torch.mm(a, b).numpy())


def _gflops(flops: float, milliseconds: float | None) -> float | None:
    return flops / (milliseconds * 1e-3) / 1e9 if milliseconds else None


def bench_cell(
    model: str, batch: int, backends: list[str], args: argparse.Namespace, tmp: Path, gemm: Backend
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
    gemm.times_ms, gemm.wall_ms, gemm.cpu_ms = [], [], []
    live = [b for b in built if b.run is not None] + [gemm]
    start = time.perf_counter()
    for round_index in range(args.rounds):
        if round_index >= args.min_rounds and time.perf_counter() - start > args.seconds:
            break
        shift = round_index % max(len(live), 1)
        for backend in live[shift:] + live[:shift]:
            time.sleep(args.settle)
            backend.record(args.clock)
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
    parser.add_argument(
        "--settle", type=float, default=0.3, help="untimed pause before each timed iteration (s)"
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what the table reports: wall-clock latency, or the process's CPU time per run "
        "(with --threads 1 it is immune to other processes on a shared machine; with more threads "
        "it counts spinning workers). Both are in --json.",
    )
    parser.add_argument("--seg-output", choices=("labels", "logits"), default="labels")
    parser.add_argument("--json", type=Path, help="also write every sample and the environment here")
    args = parser.parse_args()
    if not set(ORT_ROUTES) & set(args.backends):
        parser.error("--backends needs at least one ONNX Runtime route (ort-function or ort-inline).")
    torch.set_num_threads(args.threads)
    environment = collect_environment(args.threads)
    environment["openvino"] = package_version("openvino")
    gemm = gemm_backend(args.threads)
    gemm_flops = 2.0 * GEMM_SIZE**3
    print(
        f"# Anchors: {environment['cpu_model']}, {args.threads} threads; torch {environment['torch']}, "
        f"onnxruntime {environment['onnxruntime']}, openvino {environment['openvino'] or 'absent'}\n"
        f"Median {'wall-clock' if args.clock == 'wall' else 'process CPU'} ms over interleaved rounds; "
        f"GEMM peak = {GEMM_SIZE}² torch.mm timed in the same rounds.\n"
    )
    header = (
        ["model", "batch"]
        + args.backends
        + ["ORT vs eager", "best other vs ORT", "GFLOP/s (ORT)", "GEMM peak GFLOP/s", "% of peak"]
        + ["rounds", "agreement"]
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    record: dict[str, Any] = {"environment": environment, "gemm_size": GEMM_SIZE, "cells": []}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models or DEFAULT_MODELS:
            for batch in args.batch:
                backends, manifest = bench_cell(model, batch, args.backends, args, Path(tmp), gemm)
                peak_gflops = _gflops(gemm_flops, gemm.median)
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
                gflops = _gflops(2.0 * macs, ort.median if ort else None)
                rounds = max(len(b.times_ms) for b in backends)
                agreement = "; ".join(
                    f"{b.name} {b.agreement}" for b in backends if b.agreement and b is not eager
                )
                print(
                    "| "
                    + " | ".join(
                        [model, str(batch), *cells, vs_eager, versus, _fmt(gflops), _fmt(peak_gflops)]
                        + [f"{100 * gflops / peak_gflops:.0f} %" if gflops and peak_gflops else "–"]
                        + [str(rounds), agreement]
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
                        "gemm_peak_gflops": peak_gflops,
                        "gemm_wall_ms": gemm.wall_ms,
                        "gemm_cpu_ms": gemm.cpu_ms,
                        "backends": {
                            b.name: {
                                "median_ms": b.median,
                                "clock": args.clock,
                                "wall_ms": b.wall_ms,
                                "cpu_ms": b.cpu_ms,
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
