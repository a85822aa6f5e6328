"""INT8 from the user's images: calibration, the keyed cache, the Q/DQ graph and its report.

``litevit-export MODEL --int8 --calib DIR`` ends here with the FP32 graph it just wrote:

1. the folder's images (recursive, sorted) are split deterministically into a calibration set
   (``--calib-samples``, evenly spaced) and a held-out set (``--holdout``) for the accuracy report;
2. the calibration key hashes the FP32 graph, the preprocessing, the method and every calibration
   file's content. A cache (``MODEL.int8.calib.json``) with the same key is reused and says so; one
   with another key is refused, naming what changed (``--recalibrate`` replaces it);
3. activation ranges are measured with ONNX Runtime on CPU (``calibration.ranges``), Q/DQ pairs are
   inserted on the inputs of weighted ops (``calibration.qdq``), optionally leaving the most
   sensitive layers in FP32 (``--keep-fp32 auto`` or a list);
4. the INT8 (and FP16) graphs are compared with FP32 on the held-out images; the report is printed,
   written as ``MODEL.int8.report.json``, and the summary goes into the manifest.

Never falls back to random data: an empty, tiny or unreadable folder is refused in one sentence.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from litevit._io import write_bytes, write_json
from litevit._progress import Progress
from litevit._compat import strict_zip
from litevit.calibration.diagnose import (
    GRANULARITIES,
    Agreement,
    HeldOutSet,
    KeepFp32Result,
    format_sensitivity,
    keep_fp32_auto,
    median_latency_ms,
    rank_layers,
)
from litevit.calibration.images import (
    Preprocessing,
    describe_unreadable,
    evenly_spaced,
    list_images,
    load_images,
)
from litevit.calibration.qdq import (
    QuantSite,
    activation_tensors,
    fold_weight_transposes,
    quant_sites,
    quantize,
)
from litevit.calibration.ranges import METHODS, RangeCollector, passes_needed
from litevit.errors import DataError, LitevitError

CACHE_FORMAT = "litevit.calib/1"
REPORT_FORMAT = "litevit.quant-report/1"
MIN_CALIBRATION_IMAGES = 32
DEFAULT_SAMPLES = 256
DEFAULT_HOLDOUT = 64
DEFAULT_TARGET = 0.99
DEFAULT_PERCENTILE = 99.99
# Tolerance of the INT8 gate: mean logits cosine to FP32 on the held-out images.
INT8_MIN_COSINE = 0.99
# Bumped whenever the Q/DQ placement or scheme changes, so old caches are not reused for it.
PLACEMENT_VERSION = "weighted-op-inputs/1"


class CalibrationCacheError(LitevitError):
    """A calibration cache that does not belong to this model, preprocessing, method or image list."""


@dataclass
class Int8Options:
    method: str = "minmax"
    percentile: float = DEFAULT_PERCENTILE
    samples: int = DEFAULT_SAMPLES
    holdout: int = DEFAULT_HOLDOUT
    keep_fp32: str | Sequence[str] | None = None  # "auto", names of modules/layers, or None
    target_agreement: float = DEFAULT_TARGET
    granularity: str = "module"
    recalibrate: bool = False

    def check(self) -> None:
        if self.method not in METHODS:
            raise LitevitError(f"unknown --calib-method {self.method!r}; choose one of {', '.join(METHODS)}.")
        if not 50.0 < self.percentile < 100.0:
            raise LitevitError(f"--percentile must be between 50 and 100; got {self.percentile}.")
        if self.samples < MIN_CALIBRATION_IMAGES:
            raise LitevitError(
                f"--calib-samples must be at least {MIN_CALIBRATION_IMAGES}; got {self.samples}."
            )
        if self.holdout < 0:
            raise LitevitError(f"--holdout must be 0 or more; got {self.holdout}.")
        if not 0.0 < self.target_agreement <= 1.0:
            raise LitevitError(f"--target-agreement must be in (0, 1]; got {self.target_agreement}.")
        if self.granularity not in GRANULARITIES:
            raise LitevitError(
                f"unknown granularity {self.granularity!r}; choose one of {', '.join(GRANULARITIES)}."
            )


def calibration_images(folder: Path) -> list[Path]:
    """The folder's images (see :func:`list_images`), refusing fewer than ``MIN_CALIBRATION_IMAGES``."""
    paths = list_images(folder, what="calibration folder")
    if len(paths) < MIN_CALIBRATION_IMAGES:
        raise DataError(
            f"the calibration folder {str(folder)!r} has {len(paths)} image(s); INT8 calibration "
            f"needs at least {MIN_CALIBRATION_IMAGES} (a few hundred representative images is typical)."
        )
    return paths


@dataclass
class CalibrationSplit:
    root: Path
    calibration: list[Path]
    holdout: list[Path]
    found: int

    @classmethod
    def from_folder(cls, root: str | os.PathLike[str], samples: int, holdout: int) -> CalibrationSplit:
        """Held-out images are spread evenly over the sorted list; calibration images are spread
        evenly over the rest. Refuses a folder with fewer than ``MIN_CALIBRATION_IMAGES`` images."""
        folder = Path(root)
        paths = calibration_images(folder)
        held = evenly_spaced(paths, min(holdout, len(paths) - MIN_CALIBRATION_IMAGES))
        held_set = set(held)
        rest = [p for p in paths if p not in held_set]
        return cls(folder, evenly_spaced(rest, samples), held, len(paths))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def calibration_key(
    model_sha256: str, prep: Preprocessing, options: Int8Options, split: CalibrationSplit
) -> tuple[str, dict[str, str]]:
    """The key and what it is made of (so a mismatch can say what changed)."""
    files = hashlib.sha256()
    for path in split.calibration:
        files.update(f"{path.relative_to(split.root).as_posix()}\t{_file_sha256(path)}\n".encode())
    method = options.method + (f" p{options.percentile:g}" if options.method == "percentile" else "")
    components = {
        "model": model_sha256,
        "preprocessing": prep.fingerprint(),
        "method": method,
        "images": files.hexdigest(),
        "placement": PLACEMENT_VERSION,
    }
    return hashlib.sha256(json.dumps(components, sort_keys=True).encode()).hexdigest(), components


_COMPONENT_WORDS = {
    "model": "the FP32 graph (model or weights)",
    "preprocessing": "the preprocessing",
    "method": "the calibration method",
    "images": "the calibration images",
    "placement": "litevit's Q/DQ placement",
}


def read_cache(path: Path, key: str, components: dict[str, str]) -> dict[str, float] | None:
    """The cached thresholds when ``path`` holds this key; None when there is no cache; raises
    :class:`CalibrationCacheError` for a cache made for something else."""
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CalibrationCacheError(
            f"the calibration cache {str(path)!r} is unreadable ({exc}); delete it."
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT:
        raise CalibrationCacheError(
            f"{str(path)!r} is not a litevit calibration cache ({CACHE_FORMAT}); "
            f"delete it or pass --recalibrate."
        )
    if doc.get("key") != key:
        cached = doc.get("components", {})
        changed = [_COMPONENT_WORDS[name] for name in components if cached.get(name) != components[name]]
        raise CalibrationCacheError(
            f"the calibration cache {str(path)!r} was made for a different "
            f"{', '.join(changed) or 'configuration'}; it is not reused: pass --recalibrate to replace it."
        )
    return {str(k): float(v) for k, v in doc["amax"].items()}


def graph_batch(model: onnx.ModelProto) -> int | None:
    """The graph's fixed batch size, or None for a dynamic batch axis."""
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_value if dim.HasField("dim_value") else None


def stack_batches(arrays: np.ndarray, fixed_batch: int | None) -> list[np.ndarray]:
    """Inference batches: the graph's fixed batch (a remainder is left out), or 8 for a dynamic one."""
    size = fixed_batch or 8
    usable = len(arrays) - (len(arrays) % size if fixed_batch else 0)
    return [arrays[i : i + size] for i in range(0, usable, size)]


def _batched(paths: Sequence[Path], batch: int) -> list[list[Path]]:
    return [list(paths[i : i + batch]) for i in range(0, len(paths), batch)]


@dataclass
class CalibrationRun:
    amax: dict[str, float]
    reused_cache: bool
    images: int
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    dropped: int = 0  # readable images left over when a fixed batch does not divide them


def calibrate(
    runnable_fp32: onnx.ModelProto,
    tensors: Sequence[str],
    prep: Preprocessing,
    split: CalibrationSplit,
    options: Int8Options,
    *,
    threads: int | None = None,
    progress: bool = True,
) -> CalibrationRun:
    """Measure ``tensors`` on the calibration images with ONNX Runtime and return thresholds."""
    from litevit.calibration.diagnose import ort_session

    augmented = onnx.ModelProto()
    augmented.CopyFrom(runnable_fp32)
    graph_outputs = {o.name for o in augmented.graph.output}
    for name in tensors:
        if name not in graph_outputs:
            augmented.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    session = ort_session(augmented, threads)
    output_names = [o.name for o in session.get_outputs()]
    input_name = runnable_fp32.graph.input[0].name
    fixed_batch = graph_batch(runnable_fp32)
    batch = fixed_batch or 8
    collector = RangeCollector(tensors)
    passes = passes_needed(options.method)

    bar = Progress(
        progress, len(split.calibration) * passes, f"calibrating ({options.method})", unit="images"
    )
    try:
        # Pass 1 reads every file once, so unreadable ones are found before anything is measured.
        readable: list[Path] = []
        unreadable: list[tuple[Path, str]] = []
        pending: list[np.ndarray] = []

        def observe(arrays: np.ndarray, record: Callable[[dict[str, np.ndarray]], None]) -> None:
            values = dict(strict_zip(output_names, session.run(None, {input_name: arrays})))
            record(values)

        for chunk in _batched(split.calibration, batch):
            loaded = load_images(chunk, prep, on_image=bar.update)
            readable.extend(loaded.paths)
            unreadable.extend(loaded.unreadable)
            pending.extend(loaded.arrays)
            while len(pending) >= batch:
                observe(np.stack(pending[:batch]), collector.observe_maxima)
                del pending[:batch]
        if pending and fixed_batch is None:
            observe(np.stack(pending), collector.observe_maxima)
            pending.clear()
        if len(readable) < MIN_CALIBRATION_IMAGES:
            detail = f"; {describe_unreadable(unreadable, split.root)}" if unreadable else ""
            raise DataError(
                f"only {len(readable)} of {len(split.calibration)} calibration images in {str(split.root)!r} "
                f"could be read; INT8 calibration needs at least {MIN_CALIBRATION_IMAGES}{detail}."
            )
        used = len(readable) - len(pending)
        if passes == 2:
            for chunk in _batched(readable[:used], batch):
                loaded = load_images(chunk, prep, on_image=bar.update)
                observe(loaded.arrays, collector.observe_histograms)
    finally:
        bar.close()
    return CalibrationRun(
        collector.thresholds(options.method, options.percentile), False, used, unreadable, len(pending)
    )


def load_holdout(
    split: CalibrationSplit, prep: Preprocessing, batch: int | None, progress: bool
) -> tuple[list[np.ndarray], list[tuple[Path, str]], str]:
    """Held-out batches (calibration images when the folder had none to spare, said in the source)."""
    paths, source = split.holdout, f"{len(split.holdout)} held-out images from {split.root}"
    if not paths:
        paths = split.calibration[:DEFAULT_HOLDOUT]
        source = (
            f"{len(paths)} calibration images (the folder has only {split.found}, none left to hold out: "
            f"agreement on seen images is optimistic)"
        )
    bar = Progress(progress, len(paths), "held-out images", unit="images")
    try:
        loaded = load_images(paths, prep, on_image=bar.update)
    finally:
        bar.close()
    batches = stack_batches(loaded.arrays, batch)
    if not batches:
        raise DataError(f"none of the held-out images in {str(split.root)!r} could be read.")
    return batches, loaded.unreadable, source


@dataclass
class Int8Result:
    path: Path
    cache_path: Path
    report_path: Path
    manifest_calibration: dict[str, Any]
    parity: dict[str, Any]
    lines: list[str]


def write_int8(
    fp32: onnx.ModelProto,
    fp32_path: Path,
    folder: Path,
    model_name: str,
    prep: Preprocessing,
    split: CalibrationSplit,
    options: Int8Options,
    *,
    runnable: Callable[[onnx.ModelProto], onnx.ModelProto] = lambda m: m,
    fp16: onnx.ModelProto | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> Int8Result:
    """Calibrate, quantize, evaluate and write ``MODEL.int8.onnx`` + cache + report in ``folder``.

    ``split`` and ``options`` come checked from the export (which refuses a bad folder before
    exporting). ``fp32`` is the graph as written to ``fp32_path``; ``runnable`` turns a graph of
    its ops mode into one ONNX Runtime runs (plugin-mode graphs get their function bodies attached).
    """
    folded = fold_weight_transposes(fp32)
    sites = quant_sites(folded)
    if not sites:
        raise LitevitError(f"{model_name} has no Conv, MatMul or Gemm to quantize.")
    tensors = activation_tensors(sites)

    cache_path = folder / f"{model_name}.int8.calib.json"
    key, components = calibration_key(_file_sha256(fp32_path), prep, options, split)
    amax = None if options.recalibrate else read_cache(cache_path, key, components)
    if amax is not None:
        run = CalibrationRun(amax, True, len(split.calibration))
    else:
        run = calibrate(runnable(folded), tensors, prep, split, options, threads=threads, progress=progress)
        write_json(
            cache_path,
            {
                "format": CACHE_FORMAT,
                "key": key,
                "components": components,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "method": options.method,
                "percentile": options.percentile if options.method == "percentile" else None,
                "root": str(split.root.resolve()),
                "images": [p.relative_to(split.root).as_posix() for p in split.calibration],
                "unreadable": [[p.relative_to(split.root).as_posix(), why] for p, why in run.unreadable],
                "amax": run.amax,
            },
        )
    lines = [
        f"INT8 calibration: {run.images} images from {split.root} ({options.method}"
        f"{f', reused cache {cache_path.name} with the same key' if run.reused_cache else ''}); "
        f"{len(sites)} weighted layers get Q/DQ on their inputs."
    ]
    if run.unreadable:
        lines.append(f"  skipped {describe_unreadable(run.unreadable, split.root)}")
    if run.dropped:
        lines.append(
            f"  {run.dropped} readable image(s) left out: the graph's fixed batch does not divide them"
        )

    batches, holdout_unreadable, source = load_holdout(split, prep, graph_batch(fp32), progress)
    held_out = HeldOutSet.from_batches(runnable(folded), batches, threads)
    all_int8 = quantize(folded, sites, amax=run.amax)
    baseline = held_out.evaluate(runnable(all_int8))
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "model": model_name,
        "held_out": source,
        "held_out_unreadable": [[p.relative_to(split.root).as_posix(), why] for p, why in holdout_unreadable],
        "int8_all_layers": asdict(baseline),
    }
    lines.append(f"  held out: {source}")
    lines.append(f"  INT8 (all {len(sites)} layers) vs FP32: {baseline.describe(prep.task)}")
    if fp16 is not None:
        fp16_result = held_out.evaluate(runnable(fp16))
        report["fp16"] = asdict(fp16_result)
        lines.append(f"  FP16 vs FP32: {fp16_result.describe(prep.task)}")

    keep = _resolve_keep(options, sites)
    final_graph, final = all_int8, baseline
    auto_final: Agreement | None = None
    if options.keep_fp32 == "auto":
        ranking = rank_layers(
            folded,
            sites,
            run.amax,
            held_out,
            granularity=options.granularity,
            baseline=baseline,
            runnable=runnable,
            progress=progress,
        )
        report["sensitivity_images"] = ranking.images
        report["sensitivity"] = [
            {"group": e.group, "layers": e.layers, **asdict(e.result)} for e in ranking.entries
        ]
        lines.append(format_sensitivity(ranking, prep.task))
        # The target is checked on every held-out image, not only those the ranking used.
        auto = keep_fp32_auto(
            folded,
            sites,
            run.amax,
            held_out,
            ranking.entries,
            baseline,
            options.target_agreement,
            runnable=runnable,
        )
        keep, auto_final = auto.kept, auto.final
        report["keep_fp32_auto"] = _auto_dict(auto)
        lines.append(_describe_auto(auto, prep.task))
    if keep:
        final_graph = quantize(folded, sites, run.amax, keep_fp32=set(keep))
        final = auto_final or held_out.evaluate(runnable(final_graph))
        lines.append(f"  INT8 with {len(keep)} group(s) in FP32 vs FP32: {final.describe(prep.task)}")
        latency = {
            "fp32": median_latency_ms(runnable(folded), batches[0], threads),
            "int8_all_layers": median_latency_ms(runnable(all_int8), batches[0], threads),
            "int8_written": median_latency_ms(runnable(final_graph), batches[0], threads),
        }
        report["ort_cpu_latency_ms"] = latency
        lines.append(
            f"  speed cost (ONNX Runtime CPU, batch {len(batches[0])}, median ms; TensorRT differs): FP32 "
            f"{latency['fp32']:.1f}, all-INT8 {latency['int8_all_layers']:.1f}, "
            f"written INT8 {latency['int8_written']:.1f}"
        )
    report["int8_written"] = asdict(final)
    report["fp32_layers"] = list(keep)

    int8_path = folder / f"{model_name}.int8.onnx"
    write_bytes(int8_path, final_graph.SerializeToString())
    report_path = folder / f"{model_name}.int8.report.json"
    write_json(report_path, report)
    passed = final.cosine_mean >= INT8_MIN_COSINE
    if not passed:
        lines.append(
            f"  INT8 cosine {final.cosine_mean:.4f} is below {INT8_MIN_COSINE}: see {report_path.name}; "
            f"--keep-fp32 auto leaves the most sensitive layers in FP32."
        )
    calibration = {
        "key": key,
        "components": components,
        "cache": cache_path.name,
        "method": options.method,
        "images": run.images,
        "folder": str(split.root.resolve()),
        "unreadable": len(run.unreadable),
        "reused_cache": run.reused_cache,
        "placement": "Q/DQ on the inputs of Conv, MatMul, Gemm; symmetric INT8, weights per channel",
        "fp32_layers": list(keep),
        "report": report_path.name,
    }
    parity = {
        "precision": "int8",
        "runtime": "onnxruntime CPUExecutionProvider",
        "reference": f"the FP32 graph on {source}",
        "tolerance": {"min_cosine_mean": INT8_MIN_COSINE},
        "passed": passed,
        "results": [asdict(final)],
    }
    return Int8Result(int8_path, cache_path, report_path, calibration, parity, lines)


def _resolve_keep(options: Int8Options, sites: Sequence[QuantSite]) -> list[str]:
    if options.keep_fp32 in (None, "auto"):
        return []
    names = [options.keep_fp32] if isinstance(options.keep_fp32, str) else list(options.keep_fp32)
    known = {s.layer for s in sites} | {s.module for s in sites}
    unknown = [n for n in names if n not in known]
    if unknown:
        examples = ", ".join(sorted({s.module for s in sites})[:4])
        raise LitevitError(
            f"--keep-fp32 names no quantized layer or module: {', '.join(unknown)}; use names from the "
            f"sensitivity report (e.g. {examples}) or 'auto'."
        )
    return names


def _auto_dict(auto: KeepFp32Result) -> dict[str, Any]:
    return {
        "target_agreement": auto.target,
        "met": auto.met,
        "kept": auto.kept,
        "steps": auto.steps,
        "final": asdict(auto.final) if auto.final else None,
    }


def _describe_auto(auto: KeepFp32Result, task: str) -> str:
    what = "top-1" if task == "classification" else "pixel"
    if not auto.kept:
        return f"  --keep-fp32 auto: all-INT8 already meets {what} agreement >= {100 * auto.target:.1f} %"
    state = "met" if auto.met else "NOT met even with every group in FP32"
    return (
        f"  --keep-fp32 auto: target {what} agreement >= {100 * auto.target:.1f} % {state} with "
        f"{len(auto.kept)} group(s) in FP32: {', '.join(auto.kept)}"
    )
