"""``litevit bench``: latency, FPS, complexity, environment and (on Jetson) power of one model.

Method, per batch size:

1. Open a runner on the artefact (``runtime.runners.open_runner``) and build fixed-seed inputs of
   the artefact's shape (N(0, 1) noise: the inputs are normalised images).
2. Warm up (``warmup`` untimed iterations), then time every iteration separately with
   ``time.perf_counter_ns``; on a GPU also with CUDA events (the runner's ``gpu_timer``, read
   after synchronisation). Stop after ``iterations`` iterations or after ``seconds`` seconds.
3. What is inside the timed region is the runner's own sentence (``TimedRegion.scope``), stored
   with every run. On a GPU two runs are recorded per batch size: compute only (inputs already on
   the device, outputs left there) and with the host<->device copies.
4. Latency statistics (``runtime.stats``), FPS = batch / mean latency; on a Jetson, power and
   utilisation from ``tegrastats`` samples that arrived during the timed iterations.

Detectors (Mask R-CNN, Panoptic FPN) have their own paper protocol and synthetic inputs:
:mod:`litevit.runtime.bench_detection`.

``protocol="paper"`` (segmentation models) reproduces how the LVT paper measured its FPS
(mmseg ``tools/benchmark.py``: one image per iteration, data pipeline outside the timed region,
the model call with ``rescale=True`` inside it): real-size images — synthetic, ADE20K-like sizes
drawn with a fixed seed — are resized keeping the aspect ratio to the export size's short side
(outside the timed region, like mmseg's data loader); timed per image are ``runner.infer`` (host
arrays in and out, so on a GPU the copies are inside, as mmseg's scatter and ``.cpu()`` were)
and the post-processing back to the original image size:

- ``--seg-output logits`` artefact: bilinear resize of the class scores to the original size,
  then argmax, on the host (numpy) — the paper's order of operations;
- ``--seg-output labels`` artefact (default): the graph itself resizes the scores to *its input*
  size and takes the argmax; the timed region adds a nearest-neighbour resize of the int32 label
  map to the original size on the host. This is argmax-then-resize instead of the paper's
  resize-then-argmax: labels can differ along class borders, and the cost is lower.
"""

from __future__ import annotations

import datetime
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import litevit
from litevit._deps import has
from litevit._progress import Progress
from litevit._io import ensure_writable_dir, sha256_file, write_json
from litevit.artifacts import DETECTION_TASKS, MANIFEST, read_manifest
from litevit.errors import LitevitError, MissingDependencyError
from litevit.runtime import machine_load
from litevit.runtime.environment import collect_environment
from litevit.runtime.runners import Runner, TensorInfo, TimedRegion, open_runner
from litevit.runtime.stats import PERCENTILES, images_per_second, latency_stats, samples_needed
from litevit.runtime.tegrastats import TegrastatsSampler, summarize_samples

SCHEMA = "litevit.bench/1"
PROTOCOLS = ("synthetic", "paper", "test", "test-aug")
DEFAULT_WARMUP = 10
DEFAULT_ITERATIONS = 200  # also what LVT's official benchmark script times
TEGRASTATS_INTERVAL_MS = 100
COUNTER = "litevit.flops (fvcore convention)"
ARTIFACT_ROOT = "litevit-artifacts"

# The paper's own speed figures, with how they were measured. Only the full model matches them:
# an artefact built with other model_kwargs (e.g. a smoke architecture) gets no reference.
PAPER_REFERENCES: dict[str, dict[str, Any]] = {
    "lvt_seg": {
        "paper_fps": 45.5,
        "device": "1x NVIDIA V100",
        "backend": "PyTorch FP32",
        "protocol": (
            "ADE20K val images resized to short side 512 keeping the aspect ratio; resize of the "
            "logits back to the image and argmax inside the timed region; batch 1; the LVT README "
            "says 2000 images, the official benchmark script times 200 after 5 warm-up iterations"
        ),
        "source": "Chenglin-Yang/LVT README (SegFormer-LVT, ADE20K)",
    },
    "lvt_panoptic_fpn": {
        "paper_fps": 20.4,
        "device": "1x NVIDIA V100",
        "backend": "PyTorch FP32 (mmdet 2.17)",
        "protocol": (
            "COCO val images, keep-ratio resize to 1333x800 and padding outside the timed region (data "
            "loader); the network with post-processing back to the original image (rescale=True) inside; "
            "batch 1 (mmdet tools/analysis_tools/benchmark.py)"
        ),
        "source": "Chenglin-Yang/LVT README (Panoptic FPN-LVT, COCO panoptic)",
    },
}

# Synthetic "real-size" images for --protocol paper. ADE20K val images are mostly landscape
# photographs around 512x683; this draw imitates that shape of distribution and is NOT the
# dataset's size histogram: short side uniform in [384, 512], long/short uniform in [1, 1.6],
# landscape three times in four. Fixed seed, so every machine times the same sizes.
PAPER_SEED = 0
_PAPER_SHORT_SIDE = (384, 512)
_PAPER_ASPECT = (1.0, 1.6)
_PAPER_LANDSCAPE = 0.75
# mmseg's img_scale (2048, 512): the long side is capped at 4x the short side.
_LONG_SIDE_FACTOR = 4


def run_benchmark(
    target: str | os.PathLike[str],
    *,
    backend: str = "ort",
    precision: str = "fp32",
    batches: Sequence[int] = (1,),
    warmup: int = DEFAULT_WARMUP,
    iterations: int | None = None,
    seconds: float | None = None,
    threads: int | None = None,
    device: str | None = None,
    protocol: str = "synthetic",
    progress: bool = False,
    allow_few_iterations: bool = False,
    log: Callable[[str], None] = print,
    img_sizes: Sequence[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Benchmark ``target`` (artefact folder, ``.onnx``/``.engine`` file, or a registered model
    name, which is exported first into ./litevit-artifacts/MODEL and needs torch); returns the
    ``litevit.bench/1`` document. Without ``iterations`` and ``seconds``, times 200 iterations.
    A run with fewer iterations than its p99 needs is refused unless ``allow_few_iterations``;
    the machine's load before and after the runs is recorded, with a warning when it was busy.
    ``img_sizes`` times each batch size at each (H, W) instead of the export size (a graph with
    dynamic H x W; ``litevit.runtime.sweep``).
    """
    batch_sizes = _check_settings(batches, warmup, iterations, seconds, protocol)
    _check_iterations_requested(iterations, allow_few_iterations)
    if iterations is None and seconds is None:
        iterations = DEFAULT_ITERATIONS
    path = resolve_target(target, precision=precision, protocol=protocol, log=log)
    manifest = _manifest(path)
    if protocol == "paper":
        _check_paper_protocol(path, manifest, batch_sizes)
    elif protocol in ("test", "test-aug"):
        _check_test_protocol(path, manifest, batch_sizes, protocol == "test-aug")

    notes: list[str] = []
    runs: list[dict[str, Any]] = []
    runner = open_runner(path, backend, precision=precision, threads=threads, device=device)
    sampler = TegrastatsSampler(TEGRASTATS_INTERVAL_MS)
    try:
        environment = collect_environment(threads)
        load_start = machine_load.snapshot()
        if sampler.available and not sampler.start():
            notes.append("tegrastats is installed but did not start, so no power was sampled.")
        elif not sampler.available and environment.get("jetson"):
            notes.append("tegrastats was not found on PATH, so no power was sampled on this Jetson.")
        label = f"{path.name} {runner.backend} {precision}"
        if protocol == "paper":
            assert manifest is not None  # checked by _check_paper_protocol
            if manifest["task"] in DETECTION_TASKS:
                from litevit.runtime.bench_detection import detection_paper_run

                runs.append(
                    detection_paper_run(
                        runner, manifest, warmup, iterations, seconds, sampler, progress, label, _run_entry
                    )
                )
            else:
                runs.append(
                    _paper_run(runner, manifest, warmup, iterations, seconds, sampler, progress, label)
                )
        elif protocol in ("test", "test-aug"):
            assert manifest is not None  # checked by _check_test_protocol
            runs.extend(
                _test_protocol_runs(
                    runner,
                    manifest,
                    protocol == "test-aug",
                    batch_sizes[0],
                    warmup,
                    iterations,
                    seconds,
                    sampler,
                    progress,
                    label,
                )
            )
        else:
            img_size = tuple(manifest["img_size"]) if manifest else None
            sizes = [tuple(size) for size in img_sizes] if img_sizes else [img_size]
            # Build every point's inputs first: a batch or size the graph cannot take fails before
            # any timing.
            feeds_per_point = {
                (b, size): _feeds(runner, manifest, b, size, str(path)) for size in sizes for b in batch_sizes
            }
            for (batch, size), feeds in feeds_per_point.items():
                point = f"batch {batch}" + (f" {size[0]}x{size[1]}" if img_sizes and size else "")
                measures = ("compute_only", "with_copies") if runner.device.startswith("cuda") else ("host",)
                for measure in measures:
                    region = runner.timed_region(feeds, with_copies=measure == "with_copies")
                    runs.append(
                        _timed_run(
                            region,
                            measure,
                            batch,
                            feeds,
                            warmup,
                            iterations,
                            seconds,
                            sampler,
                            progress,
                            f"{label} {point}",
                        )
                    )
    finally:
        sampler.stop()
        runner.close()
    load = machine_load.load_record(load_start, machine_load.snapshot())
    if load["warning"]:
        log(f"warning: {load['warning']}")
        notes.append(load["warning"])
    notes.extend(_check_iterations_done(runs, seconds, allow_few_iterations))
    if sampler.available and any(run["power"] is None for run in runs):
        notes.append(
            f"some runs were shorter than one tegrastats interval ({TEGRASTATS_INTERVAL_MS} ms) "
            "and have no power figures; use --seconds to run longer."
        )

    model = manifest["model"] if manifest else path.stem
    return {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "litevit_version": litevit.__version__,
        "environment": environment,
        "model": model,
        "task": manifest["task"] if manifest else None,
        "artifact": str(path),
        "artifact_sha256": _artifact_sha256(path, manifest, runner.backend, precision),
        "backend": runner.backend,
        "precision": precision,
        "device": runner.device,
        "protocol": protocol,
        "complexity": complexity_for(manifest),
        "runs": runs,
        "machine_load": load,
        "reference": _reference(manifest),
        "notes": notes,
    }


def write_bench_json(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a benchmark document atomically (temporary file, then rename)."""
    if doc.get("schema") != SCHEMA:
        raise LitevitError(f"refusing to write a document whose schema is not {SCHEMA!r}.")
    out = Path(path)
    ensure_writable_dir(out.parent if str(out.parent) else ".")
    write_json(out, doc)
    return out


# --------------------------------------------------------------------------------------------
# What to benchmark


def resolve_target(
    target: str | os.PathLike[str],
    *,
    precision: str,
    protocol: str,
    log: Callable[[str], None],
    dynamic_batch: bool = False,
    dynamic_hw: bool = False,
) -> Path:
    """An existing file or folder as is; a model name -> its artefact folder, exported if needed
    (again, keeping the dynamic axes it had, when it lacks ``precision`` or a dynamic axis asked for)."""
    path = Path(target)
    if path.exists():
        return path
    name = os.fspath(target)
    if path.suffix in (".onnx", ".engine", ".json") or os.sep in name or name.startswith("."):
        raise LitevitError(f"{name!r} does not exist.")
    if not has("torch"):
        raise MissingDependencyError(
            f"{name!r} is neither a file nor a folder; benchmarking a model by name exports it first, "
            "which needs torch: pip install 'litevit[author]', or pass an artefact folder."
        )
    from litevit.export.api import export_model
    from litevit.models import get_model_cfg

    cfg = get_model_cfg(name)  # an unknown name fails here with the list of known ones
    folder = Path(ARTIFACT_ROOT) / name
    manifest = _manifest(folder) if (folder / MANIFEST).is_file() else None
    test = protocol in ("test", "test-aug") and cfg.task == "segmentation"
    whole = test and (cfg.test_protocol or {}).get("mode") == "whole"
    paper_dense = protocol == "paper" and cfg.task in ("segmentation", *DETECTION_TASKS)
    needs_dynamic_hw = dynamic_hw or paper_dense or whole
    needs_dynamic_batch = dynamic_batch or test
    needs_logits = test
    if (
        manifest is not None
        and _has_precision(manifest, precision)
        and (not needs_dynamic_hw or _dynamic_hw(manifest))
        and (not needs_dynamic_batch or _dynamic_batch(manifest))
        and (not needs_logits or manifest.get("seg_output") == "logits")
    ):
        log(f"benchmarking the existing export {folder}")
        return folder
    log(f"exporting {name} into {folder} first")
    export_model(
        name,
        fp16=precision == "fp16",
        dynamic_batch=needs_dynamic_batch or (manifest is not None and _dynamic_batch(manifest)),
        dynamic_hw=needs_dynamic_hw or (manifest is not None and _dynamic_hw(manifest)),
        seg_output="logits" if needs_logits else "labels",
        out_dir=folder,
        log=log,
    )
    return folder


def _manifest(path: Path) -> dict[str, Any] | None:
    return read_manifest(path) if path.is_dir() else None


def _has_precision(manifest: dict[str, Any], precision: str) -> bool:
    return any(entry.get("precision") == precision for entry in manifest.get("files", {}).values())


def _dynamic_batch(manifest: dict[str, Any]) -> bool:
    return "0" in {str(axis) for axis in manifest.get("dynamic_axes", {}).get("input", {})}


def _dynamic_hw(manifest: dict[str, Any]) -> bool:
    axes = manifest.get("dynamic_axes", {}).get("input", {})
    return {"2", "3"} <= {str(axis) for axis in axes}


def _check_settings(
    batches: Sequence[int], warmup: int, iterations: int | None, seconds: float | None, protocol: str
) -> list[int]:
    if protocol not in PROTOCOLS:
        raise LitevitError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}.")
    batch_sizes = list(dict.fromkeys(batches))  # keep order, drop repeats
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise LitevitError(f"batch sizes must be at least 1; got {list(batches)}.")
    if warmup < 0:
        raise LitevitError(f"--warmup must be 0 or more; got {warmup}.")
    if iterations is not None and seconds is not None:
        raise LitevitError("give either --iters or --seconds, not both.")
    if iterations is not None and iterations < 1:
        raise LitevitError(f"--iters must be at least 1; got {iterations}.")
    if seconds is not None and not (seconds > 0 and math.isfinite(seconds)):
        raise LitevitError(f"--seconds must be a positive number; got {seconds}.")
    return batch_sizes


def _feeds(
    runner: Runner, manifest: dict[str, Any] | None, batch: int, img_size: Any, what: str
) -> dict[str, np.ndarray]:
    if manifest is not None and manifest.get("task") in DETECTION_TASKS:
        from litevit.runtime.bench_detection import synthetic_detection_feeds

        synthetic_feeds(runner.inputs(), batch, img_size, what)  # refuses a batch the graph cannot take
        return synthetic_detection_feeds(runner.inputs(), batch, img_size)
    return synthetic_feeds(runner.inputs(), batch, img_size, what)


def _check_iterations_requested(iterations: int | None, allow_few: bool) -> None:
    needed = samples_needed(PERCENTILES)
    if iterations is not None and iterations < needed and not allow_few:
        raise LitevitError(
            f"--iters {iterations} is too few for the p{max(PERCENTILES)} latency the benchmark reports, "
            f"which needs at least {needed} iterations: use --iters {needed} or more, or pass "
            f"--allow-few-iterations to accept percentiles interpolated from fewer samples."
        )


def _check_iterations_done(runs: list[dict[str, Any]], seconds: float | None, allow_few: bool) -> list[str]:
    """After a --seconds run: refuse (or, when allowed, note) a run with too few iterations."""
    needed = samples_needed(PERCENTILES)
    notes = []
    for run in runs:
        count = run["iterations"]
        if count >= needed:
            continue
        what = f"batch {run['batch']} ({run['measure']})"
        if not allow_few:
            budget = f"in {seconds:g} s " if seconds is not None else ""
            longer = math.ceil(1.5 * needed * run["latency_ms"]["mean"] / 1000.0)
            raise LitevitError(
                f"only {count} timed iteration(s) of {what} ran {budget}but the p{max(PERCENTILES)} latency "
                f"needs at least {needed}: run longer (--seconds {longer} or --iters {needed}), or pass "
                f"--allow-few-iterations to keep percentiles interpolated from fewer samples."
            )
        notes.append(
            f"{what} has {count} iterations, fewer than the {needed} its p{max(PERCENTILES)} needs: its "
            f"percentiles are interpolated from too few samples."
        )
    return notes


def synthetic_feeds(
    inputs: list[TensorInfo], batch: int, img_size: Sequence[int] | None, what: str, seed: int = 0
) -> dict[str, np.ndarray]:
    """Fixed-seed inputs: N(0, 1) for float inputs (normalised images), zeros otherwise.

    Dynamic dims are filled from ``batch`` (axis 0) and ``img_size`` (axes 2, 3 of an NCHW
    input); a static batch dim that differs from ``batch``, or static H x W that differ from
    ``img_size``, are refused in one sentence naming the export flag that lifts them.
    """
    rng = np.random.default_rng(seed)
    feeds = {}
    for info in inputs:
        if img_size is not None and len(info.shape) == 4:
            _check_static_hw(info, img_size, what)
        shape: list[int] = []
        for axis, dim in enumerate(info.shape):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            elif axis == 0:
                shape.append(batch)
            elif axis in (2, 3) and img_size is not None and len(info.shape) == 4:
                shape.append(int(img_size[axis - 2]))
            else:
                raise LitevitError(
                    f"{what}: input {info.name!r} has a dynamic dimension {dim!r} at axis {axis} the "
                    f"benchmark cannot size; benchmark its artefact folder, whose manifest has the size."
                )
        if shape and shape[0] != batch:
            raise LitevitError(
                f"{what} takes batch {shape[0]} only; to benchmark batch {batch}, export it with "
                f"--dynamic-batch."
            )
        dtype = np.dtype(info.dtype)
        if np.issubdtype(dtype, np.floating):
            feeds[info.name] = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
        else:
            feeds[info.name] = np.zeros(shape, dtype=dtype)
    return feeds


def _check_static_hw(info: TensorInfo, img_size: Sequence[int], what: str) -> None:
    static_hw = (info.shape[2], info.shape[3])
    if all(isinstance(d, int) and d > 0 for d in static_hw) and tuple(static_hw) != tuple(img_size):
        raise LitevitError(
            f"{what} takes {static_hw[0]}x{static_hw[1]} images only; to benchmark "
            f"{img_size[0]}x{img_size[1]}, export it with --dynamic-hw."
        )


# --------------------------------------------------------------------------------------------
# Timing


def run_timed_loop(
    step: Callable[[int], None], iterations: int | None, seconds: float | None, progress: Progress
) -> tuple[int, float, float]:
    """Call ``step(i)`` for i = 0, 1, ... (each call times and records its own iteration) until
    ``iterations`` calls, or until ``seconds`` of loop time have passed; returns the number of
    calls and the monotonic start and end of the loop (the tegrastats window)."""
    budget_ns = None if seconds is None else int(seconds * 1e9)
    count = 0
    window_start = time.monotonic()
    loop_start = time.perf_counter_ns()
    while True:
        step(count)
        count += 1
        progress.update()
        if iterations is not None and count >= iterations:
            break
        if budget_ns is not None and time.perf_counter_ns() - loop_start >= budget_ns:
            break
    return count, window_start, time.monotonic()


def _time_iterations(
    run: Callable[[], None],
    gpu_timer: Callable[[], float] | None,
    iterations: int | None,
    seconds: float | None,
    progress: Progress,
) -> tuple[list[float], list[float] | None, float, float]:
    """Host latencies (ms), GPU latencies (ms) or None, and the monotonic start/end of the loop."""
    host_ms: list[float] = []
    gpu_ms: list[float] | None = [] if gpu_timer is not None else None

    def step(_: int) -> None:
        start = time.perf_counter_ns()
        run()
        host_ms.append((time.perf_counter_ns() - start) / 1e6)
        if gpu_ms is not None and gpu_timer is not None:
            gpu_ms.append(gpu_timer())

    _, window_start, window_end = run_timed_loop(step, iterations, seconds, progress)
    return host_ms, gpu_ms, window_start, window_end


def _timed_run(
    region: TimedRegion,
    measure: str,
    batch: int,
    feeds: dict[str, np.ndarray],
    warmup: int,
    iterations: int | None,
    seconds: float | None,
    sampler: TegrastatsSampler,
    progress: bool,
    label: str,
) -> dict[str, Any]:
    for _ in range(warmup):
        region.run()
    bar = Progress(progress, iterations, f"{label} ({measure})")
    try:
        host_ms, gpu_ms, start, end = _time_iterations(region.run, region.gpu_timer, iterations, seconds, bar)
    finally:
        bar.close()
    first_input = next(iter(feeds.values()))
    return _run_entry(
        measure,
        batch,
        list(first_input.shape),
        region.scope,
        warmup,
        host_ms,
        gpu_ms,
        summarize_samples(sampler.samples_between(start, end), TEGRASTATS_INTERVAL_MS),
    )


def _run_entry(
    measure: str,
    batch: int,
    input_shape: list[int] | None,
    scope: str,
    warmup: int,
    host_ms: list[float],
    gpu_ms: list[float] | None,
    power: dict[str, Any] | None,
) -> dict[str, Any]:
    latency = latency_stats(host_ms)
    fps = images_per_second(batch, latency["mean"])
    if power is not None and power["total_mw_mean"] is not None:
        # mW x ms = microjoules; per image, in millijoules. Board power includes idle draw.
        power["energy_per_image_mj"] = power["total_mw_mean"] * latency["mean"] / batch / 1000.0
    return {
        "batch": batch,
        "input_shape": input_shape,
        "measure": measure,
        "timed_region": scope,
        "warmup": warmup,
        "iterations": len(host_ms),
        "latency_ms": latency,
        "fps": fps,
        "throughput_ips": fps,
        "gpu_compute_latency_ms": latency_stats(gpu_ms) if gpu_ms else None,
        "power": power,
    }


# --------------------------------------------------------------------------------------------
# --protocol paper


def _check_paper_protocol(path: Path, manifest: dict[str, Any] | None, batches: list[int]) -> None:
    if manifest is None:
        raise LitevitError(
            f"--protocol paper needs an artefact folder (its manifest gives the task and the "
            f"preprocessing); {str(path)!r} is a file."
        )
    if manifest.get("task") in DETECTION_TASKS:
        if batches != [1]:
            raise LitevitError("--protocol paper times one picture at a time (as mmdet did): use --batch 1.")
        return
    if manifest.get("task") != "segmentation":
        raise LitevitError(
            f"--protocol paper times segmentation models the way their papers did; "
            f"{manifest['model']} is a {manifest.get('task')} model: use --protocol synthetic."
        )
    if batches != [1]:
        raise LitevitError(
            "--protocol paper times one image at a time (images differ in size): use --batch 1."
        )
    if not _dynamic_hw(manifest):
        raise LitevitError(
            f"--protocol paper feeds images at their own aspect ratio, but {str(path)!r} was exported "
            f"for {manifest['img_size'][0]}x{manifest['img_size'][1]} only: re-export it with --dynamic-hw."
        )


def paper_image_sizes(count: int, seed: int = PAPER_SEED) -> list[tuple[int, int]]:
    """``count`` (H, W) image sizes drawn like ADE20K val photographs (see the module constants)."""
    rng = np.random.default_rng(seed)
    sizes = []
    for _ in range(count):
        short = int(rng.integers(_PAPER_SHORT_SIDE[0], _PAPER_SHORT_SIDE[1] + 1))
        long = int(round(short * rng.uniform(*_PAPER_ASPECT)))
        sizes.append((short, long) if rng.random() < _PAPER_LANDSCAPE else (long, short))
    return sizes


def paper_input_size(image_hw: tuple[int, int], short_side: int, divisor: int) -> tuple[int, int]:
    """mmseg's test resize: keep the aspect ratio with the short side at ``short_side`` (long side
    at most 4x that), round to the nearest pixel, then each side up to a multiple of ``divisor``
    (AlignedResize)."""
    h, w = image_hw
    scale = min(short_side / min(h, w), _LONG_SIDE_FACTOR * short_side / max(h, w))
    new_h, new_w = int(h * scale + 0.5), int(w * scale + 0.5)
    return math.ceil(new_h / divisor) * divisor, math.ceil(new_w / divisor) * divisor


def _linear_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Half-pixel centres, as torch's interpolate(mode="bilinear", align_corners=False) and
    # mmseg's resize use.
    source = np.maximum((np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, (source - low).astype(np.float32)


def resize_bilinear(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of the last two axes of a float array (align_corners=False)."""
    top, bottom, fy = _linear_taps(array.shape[-2], size[0])
    left, right, fx = _linear_taps(array.shape[-1], size[1])
    rows = array[..., top, :] * (1 - fy)[:, None] + array[..., bottom, :] * fy[:, None]
    return rows[..., left] * (1 - fx) + rows[..., right] * fx


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the last two axes (floor(dst * in / out), torch's "nearest")."""
    rows = (np.arange(size[0]) * (array.shape[-2] / size[0])).astype(np.int64)
    cols = (np.arange(size[1]) * (array.shape[-1] / size[1])).astype(np.int64)
    return array[..., rows[:, None], cols[None, :]]


def _preprocess(image: np.ndarray, input_hw: tuple[int, int], data_config: dict[str, Any]) -> np.ndarray:
    """uint8 HWC RGB -> normalised float32 1x3xHxW at ``input_hw`` (outside the timed region)."""
    chw = image.transpose(2, 0, 1).astype(np.float32)
    resized = resize_bilinear(chw, input_hw) * (float(data_config["pixel_scale"]) / 255.0)
    mean = np.asarray(data_config["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(data_config["std"], dtype=np.float32)[:, None, None]
    return ((resized - mean) / std)[None].astype(np.float32)


def _postprocess(output: np.ndarray, image_hw: tuple[int, int], seg_output: str) -> np.ndarray:
    """Label map at the original image size (inside the timed region)."""
    if seg_output == "labels":  # (1, h, w) int32 at the graph's input size
        return resize_nearest(output, image_hw)
    return resize_bilinear(output, image_hw).argmax(axis=1)  # (1, C, h, w) class scores


def _paper_scope(runner: Runner, seg_output: str) -> str:
    inference = (
        "runner.infer with host arrays in and out (host->device copy + compute + device->host copy)"
        if runner.device.startswith("cuda")
        else "runner.infer on the host"
    )
    if seg_output == "labels":
        post = (
            "the graph's own resize of the scores to its input size and argmax, then a nearest "
            "resize of the int32 label map to the original image size on the host (numpy)"
        )
    else:
        post = "bilinear resize of the class scores to the original image size and argmax on the host (numpy)"
    return (
        f"one real-size image per iteration, already resized and normalised (outside the region): "
        f"{inference} + {post}"
    )


def _paper_run(
    runner: Runner,
    manifest: dict[str, Any],
    warmup: int,
    iterations: int | None,
    seconds: float | None,
    sampler: TegrastatsSampler,
    progress: bool,
    label: str,
) -> dict[str, Any]:
    data_config = manifest["data_config"]
    seg_output = manifest.get("seg_output") or "logits"
    short_side = min(manifest["img_size"])
    divisor = int(data_config["size_divisor"])
    (input_name,) = [info.name for info in runner.inputs()]
    rng = np.random.default_rng(PAPER_SEED)
    # Sizes for the timed iterations come from a fixed list (the same on every machine); with
    # --seconds the list is long enough for any realistic run and is cycled if exhausted.
    sizes = paper_image_sizes(iterations if iterations is not None else 10_000)
    warmup_sizes = paper_image_sizes(warmup, seed=PAPER_SEED + 1)

    def prepared(image_hw: tuple[int, int]) -> dict[str, np.ndarray]:
        image = rng.integers(0, 256, (*image_hw, 3), dtype=np.uint8)
        input_hw = paper_input_size(image_hw, short_side, divisor)
        return {input_name: _preprocess(image, input_hw, data_config)}

    def one_image(image_hw: tuple[int, int], feeds: dict[str, np.ndarray]) -> None:
        (output,) = runner.infer(feeds).values()
        _postprocess(output, image_hw, seg_output)

    for image_hw in warmup_sizes:
        one_image(image_hw, prepared(image_hw))

    host_ms: list[float] = []

    def step(i: int) -> None:
        image_hw = sizes[i % len(sizes)]
        feeds = prepared(image_hw)  # data pipeline: not timed
        start = time.perf_counter_ns()
        one_image(image_hw, feeds)
        host_ms.append((time.perf_counter_ns() - start) / 1e6)

    bar = Progress(progress, iterations, f"{label} (paper protocol)")
    try:
        _, window_start, window_end = run_timed_loop(step, iterations, seconds, bar)
    finally:
        bar.close()
    entry = _run_entry(
        "paper_end_to_end",
        1,
        None,
        _paper_scope(runner, seg_output),
        warmup,
        host_ms,
        None,
        summarize_samples(sampler.samples_between(window_start, window_end), TEGRASTATS_INTERVAL_MS),
    )
    timed_sizes = sizes[: min(len(host_ms), len(sizes))]
    entry["paper_images"] = {
        "count": len(host_ms),
        "seed": PAPER_SEED,
        "sizes": "synthetic ADE20K-like: short side uniform in [384, 512], long/short uniform in "
        "[1, 1.6], landscape 3 in 4",
        "resized_short_side": short_side,
        "size_divisor": divisor,
        "first_sizes_hw": [list(hw) for hw in timed_sizes[:5]],
        "seg_output": seg_output,
    }
    return entry


# --------------------------------------------------------------------------------------------
# --protocol test / test-aug: the published segmentation test protocol (runtime.seg_protocols)


def _check_test_protocol(path: Path, manifest: dict[str, Any] | None, batches: list[int], aug: bool) -> None:
    from litevit.runtime import seg_protocols

    if manifest is None or manifest.get("task") != "segmentation":
        what = "a file" if manifest is None else f"a {manifest.get('task')} model"
        raise LitevitError(
            f"--protocol test times a segmentation artefact's published test protocol; {str(path)!r} "
            f"is {what}."
        )
    if len(batches) != 1:
        raise LitevitError("--protocol test takes one --batch: the number of windows per graph call.")
    seg_protocols.check_artifact(manifest, seg_protocols.protocol_for(manifest, aug))


def _test_protocol_runs(
    runner: Runner,
    manifest: dict[str, Any],
    aug: bool,
    window_batch: int,
    warmup: int,
    iterations: int | None,
    seconds: float | None,
    sampler: TegrastatsSampler,
    progress: bool,
    label: str,
) -> list[dict[str, Any]]:
    """Two runs: the graph alone on one call's input, and the whole protocol per image (uint8
    image in, label map at the original size out), on synthetic ADE20K-like image sizes."""
    from litevit.runtime import seg_protocols

    protocol = seg_protocols.protocol_for(manifest, aug)
    graph = seg_protocols.GraphScores(runner, manifest, window_batch)
    data_config = manifest["data_config"]
    sizes = paper_image_sizes(iterations if iterations is not None else 10_000)
    first_w, first_h = seg_protocols.rescale_size(
        sizes[0][1], sizes[0][0], protocol.scales()[0], protocol.min_size
    )
    if protocol.mode == "slide":
        assert protocol.crop_size is not None
        call_shape = (graph.batch, 3, *protocol.crop_size)
    else:
        call_shape = (1, 3, first_h, first_w)
    rng = np.random.default_rng(PAPER_SEED)
    feeds = {graph.input_name: rng.standard_normal(call_shape, dtype=np.float32).astype(graph.dtype)}
    region = runner.timed_region(feeds)
    graph_run = _timed_run(
        region,
        "graph",
        call_shape[0],
        feeds,
        warmup,
        iterations,
        seconds,
        sampler,
        progress,
        f"{label} graph",
    )

    def image(hw: tuple[int, int]) -> np.ndarray:
        return rng.integers(0, 256, (*hw, 3), dtype=np.uint8)

    for hw in paper_image_sizes(warmup, seed=PAPER_SEED + 1):
        seg_protocols.predict(image(hw), protocol, graph, data_config)
    host_ms: list[float] = []
    calls_before = graph.calls

    def step(i: int) -> None:
        pixels = image(sizes[i % len(sizes)])  # decoding stands outside, as a data loader
        start = time.perf_counter_ns()
        seg_protocols.predict(pixels, protocol, graph, data_config)
        host_ms.append((time.perf_counter_ns() - start) / 1e6)

    bar = Progress(progress, iterations, f"{label} (test protocol)")
    try:
        _, window_start, window_end = run_timed_loop(step, iterations, seconds, bar)
    finally:
        bar.close()
    calls = graph.calls - calls_before
    inference = "runner.infer with host arrays in and out" + (
        " (host->device copy + compute + device->host copy)" if runner.device.startswith("cuda") else ""
    )
    entry = _run_entry(
        "protocol_end_to_end",
        1,
        None,
        f"one decoded uint8 image per iteration to its label map at the original size: "
        f"{protocol.describe()}; host numpy resizes and aggregation, {inference}, windows batched "
        f"{graph.batch} per call",
        warmup,
        host_ms,
        None,
        summarize_samples(sampler.samples_between(window_start, window_end), TEGRASTATS_INTERVAL_MS),
    )
    entry["test_protocol"] = {
        "source": protocol.source,
        "aug": aug,
        "images": len(host_ms),
        "graph_calls_per_image": calls / max(len(host_ms), 1),
        "sizes": "synthetic ADE20K-like, as --protocol paper",
        "first_sizes_hw": [list(hw) for hw in sizes[:5]],
    }
    return [graph_run, entry]


# --------------------------------------------------------------------------------------------
# Facts for the document


def complexity_for(manifest: dict[str, Any] | None) -> dict[str, Any]:
    """Params/MACs/FLOPs: from the manifest, else counted with litevit.flops when torch is here."""
    if manifest is not None and manifest.get("complexity"):
        return dict(manifest["complexity"])
    if manifest is not None and has("torch"):
        from litevit.export.api import model_complexity

        return model_complexity(manifest["model"], manifest["img_size"], manifest.get("model_kwargs") or {})
    return {"params": None, "macs": None, "flops": None, "counter": None}


def _artifact_sha256(path: Path, manifest: dict[str, Any] | None, backend: str, precision: str) -> str | None:
    """SHA-256 of the file the runner loaded (the manifest's record for ONNX graphs)."""
    if manifest is None:
        return sha256_file(path) if path.is_file() else None
    if backend == "ort":
        for name, entry in manifest["files"].items():
            if entry.get("precision") == precision and name.endswith(".onnx"):
                return str(entry["sha256"])
    if backend == "trt":
        engine = path / f"{manifest['model']}.{precision}.engine"
        return sha256_file(engine) if engine.is_file() else None
    weights = manifest.get("weights")  # torch rebuilds the model: its identity is the weights
    return str(weights["sha256"]) if weights else None


def _reference(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    if manifest is None or manifest.get("model_kwargs"):
        return None
    reference = PAPER_REFERENCES.get(manifest["model"])
    return dict(reference) if reference else None


__all__ = [
    "PROTOCOLS",
    "SCHEMA",
    "complexity_for",
    "paper_image_sizes",
    "paper_input_size",
    "resize_bilinear",
    "resize_nearest",
    "run_benchmark",
    "synthetic_feeds",
    "write_bench_json",
]
