"""Parity of a built engine against ONNX Runtime (CPU) on the same image-like input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litevit import synthetic
from litevit._deps import has
from litevit.errors import LitevitError
from litevit.runtime import runners
from litevit.runtime.detection import IMAGE_SHAPES, INPUT_NAME
from litevit.runtime.detection_compare import (
    DETECTION_TOLERANCES,
    compare_outputs as compare_detections,
    label_table,
)
from litevit.runtime.trt_build.plugins import PluginSource
from litevit.runtime.trt_build.profiles import ShapeRange
from litevit.runtime.trt_build.tensorrt_log import one_line


@dataclass(frozen=True)
class ParityTolerance:
    """Pass criteria of an engine against ONNX Runtime FP32 on the same input. scale =
    max |reference| (at least 1e-3)."""

    max_abs_over_scale: float | None
    min_cosine: float | None
    min_label_agreement: float


PARITY_TOLERANCES = {
    "fp32": ParityTolerance(max_abs_over_scale=1e-3, min_cosine=None, min_label_agreement=0.999),
    "fp16": ParityTolerance(max_abs_over_scale=2e-2, min_cosine=None, min_label_agreement=0.99),
    "int8": ParityTolerance(max_abs_over_scale=None, min_cosine=0.99, min_label_agreement=0.95),
}


def parity_input(shape: Sequence[int], data_config: Mapping[str, Any] | None) -> np.ndarray:
    """An image-like NCHW input, or seeded N(0, 1) noise for an input that is not an image."""
    if len(shape) == 4:
        if data_config is None:  # a bare .onnx: centre the pictures on 0
            return (synthetic.smooth_pictures(shape) - 0.5) / 0.25
        return synthetic.image_like(
            shape, data_config["mean"], data_config["std"], float(data_config.get("pixel_scale", 1.0))
        )
    return np.random.default_rng(0).standard_normal(tuple(shape)).astype(np.float32)


def compare_outputs(
    name: str, reference: np.ndarray, candidate: np.ndarray, tolerance: ParityTolerance
) -> dict[str, Any]:
    """One output of the engine against the reference: the figures and whether they pass."""
    result: dict[str, Any] = {"output": name, "shape": list(reference.shape)}
    reasons: list[str] = []
    if reference.shape != candidate.shape:
        return {
            **result,
            "passed": False,
            "reasons": [f"shape {list(candidate.shape)} != {list(reference.shape)}"],
        }
    if np.issubdtype(reference.dtype, np.integer):
        agreement = float(np.mean(reference == candidate)) if reference.size else 1.0
        if agreement < tolerance.min_label_agreement:
            reasons.append(f"label agreement {agreement:.4%} < {tolerance.min_label_agreement:.1%}")
        return {**result, "label_agreement": agreement, "passed": not reasons, "reasons": reasons}
    ref = reference.astype(np.float64).ravel()
    got = candidate.astype(np.float64).ravel()
    max_abs = float(np.abs(ref - got).max()) if ref.size else 0.0
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-3)
    norms = float(np.linalg.norm(ref) * np.linalg.norm(got))
    cosine = float(ref @ got / norms) if norms > 0 else 1.0
    if not np.isfinite(got).all():
        reasons.append("non-finite values")
    if tolerance.max_abs_over_scale is not None and max_abs > tolerance.max_abs_over_scale * scale:
        reasons.append(f"max abs {max_abs:.3g} > {tolerance.max_abs_over_scale:g} x scale {scale:.3g}")
    if tolerance.min_cosine is not None and cosine < tolerance.min_cosine:
        reasons.append(f"cosine {cosine:.6f} < {tolerance.min_cosine}")
    return {
        **result,
        "max_abs": max_abs,
        "scale": scale,
        "cosine": cosine,
        "passed": not reasons,
        "reasons": reasons,
    }


def detection_results(
    expected: Mapping[str, np.ndarray],
    actual: Mapping[str, np.ndarray],
    precision: str,
    data_config: Mapping[str, Any] | None,
    shape: list[int],
) -> list[dict[str, Any]]:
    """A detector engine against ONNX Runtime, detection by detection
    (:mod:`litevit.runtime.detection_compare`; INT8 is held to the FP16 tolerances)."""
    tolerance = DETECTION_TOLERANCES.get(precision, DETECTION_TOLERANCES["fp16"])
    count = int(data_config["num_classes"]) if data_config else 0
    checks = compare_detections(
        expected, actual, tolerance, label_table(count), ("image-like", shape), "ONNX Runtime"
    )
    return [
        {
            "output": check.check,
            "value": check.value,
            "limit": check.limit,
            "detail": check.detail,
            "passed": check.passed,
            "reasons": [] if check.passed else [f"{check.detail}: {check.value:.6g} (limit {check.limit:g})"],
        }
        for check in checks
    ]


def _skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason}


def engine_parity(
    engine_path: Path,
    reference_onnx: Path,
    profiles: Mapping[str, ShapeRange],
    precision: str,
    data_config: Mapping[str, Any] | None,
    plugin_library: PluginSource | None,
) -> dict[str, Any]:
    """Run the engine and ONNX Runtime (CPU) on the same image-like input at each input's opt
    shape and compare every output with :data:`PARITY_TOLERANCES`."""
    tolerance = PARITY_TOLERANCES[precision]
    reference_text = f"ONNX Runtime CPU on {reference_onnx.name}"
    header = {"reference": reference_text, "tolerance": asdict(tolerance)}
    if not has("onnxruntime"):
        return {**header, **_skipped("onnxruntime is not installed (pip install 'litevit[ort]')")}
    if not (has("cuda.bindings") or has("cuda.cudart") or has("pycuda")):
        return {**header, **_skipped("no CUDA binding to run the engine (pip install cuda-python)")}
    try:
        reference_runner = runners.OrtRunner(reference_onnx)
    except LitevitError as exc:
        return {**header, **_skipped(f"ONNX Runtime cannot run {reference_onnx.name}: {one_line(str(exc))}")}
    feeds = {
        info.name: parity_input(profiles[info.name].opt, data_config).astype(info.dtype)
        for info in reference_runner.inputs()
    }
    detector = IMAGE_SHAPES in feeds
    if detector:
        # Each image fills its canvas and is its own original (noise would be no image size).
        height, width = feeds[INPUT_NAME].shape[2:]
        feeds[IMAGE_SHAPES] = np.tile(
            np.asarray([height, width, height, width], feeds[IMAGE_SHAPES].dtype),
            (len(feeds[IMAGE_SHAPES]), 1),
        )
    with reference_runner:
        expected = reference_runner.infer(feeds)
    try:
        with runners.TrtRunner(engine_path, plugins=plugin_library) as engine_runner:
            actual = engine_runner.infer(feeds)
    except LitevitError as exc:
        return {**header, "status": "failed", "reason": f"the engine did not run: {one_line(str(exc))}"}
    if detector:
        results = detection_results(expected, actual, precision, data_config, list(feeds[INPUT_NAME].shape))
        header["tolerance"] = asdict(DETECTION_TOLERANCES.get(precision, DETECTION_TOLERANCES["fp16"]))
    else:
        results = [compare_outputs(name, expected[name], actual[name], tolerance) for name in expected]
    return {
        **header,
        "status": "passed" if all(r["passed"] for r in results) else "failed",
        "inputs": {
            name: {
                "shape": list(array.shape),
                "kind": "image-like" if array.ndim == 4 else "noise",
                "seed": 0,
            }
            for name, array in feeds.items()
        },
        "results": results,
    }


def parity_reference(source: Path, manifest: Mapping[str, Any] | None) -> Path:
    """The FP32 graph of the artefact when there is one (every precision is held to the FP32
    model), else the graph that was built."""
    if manifest is not None:
        for name, entry in manifest["files"].items():
            if (
                entry.get("precision") == "fp32"
                and name.endswith(".onnx")
                and (source.parent / name).is_file()
            ):
                return source.parent / name
    return source


def format_parity(parity: Mapping[str, Any]) -> str:
    """One line: the status and the worst figures."""
    if "results" not in parity:
        return f"parity {parity['status']}: {parity['reason']}"
    parts = []
    for result in parity["results"]:
        if "label_agreement" in result:
            parts.append(f"{result['output']}: labels agree {result['label_agreement']:.2%}")
        elif "value" in result:
            parts.append(f"{result['output']}: {result['value']:.6g} (limit {result['limit']:g})")
        elif "max_abs" in result:
            parts.append(
                f"{result['output']}: max abs {result['max_abs']:.3g}, cosine {result['cosine']:.6f}"
            )
        else:
            parts.append(f"{result['output']}: {'; '.join(result['reasons'])}")
    return f"parity {parity['status']} vs {parity['reference']}: " + "; ".join(parts)
