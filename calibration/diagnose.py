"""How much INT8 (or FP16) cost, measured on held-out images, and where.

* **Agreement** of a candidate graph with the FP32 graph on the same preprocessed images:
  classifiers: top-1 agreement and per-image cosine similarity of the logits; segmenters:
  per-pixel label agreement, an mIoU proxy (the candidate's labels scored against FP32's as if
  they were ground truth) and cosine of the class scores.
* **Sensitivity**: starting from the all-INT8 graph, one group of layers (a module such as
  ``backbone.1.1.0.attn``, or a single layer) at a time is left in FP32, and the gain in cosine
  and agreement is measured; the ranking says which layers INT8 hurts most.
* **keep-fp32 auto**: the most sensitive groups are left in FP32, one at a time in ranking order,
  until the target agreement is met; the ONNX Runtime latency of the result is reported next to
  FP32 and all-INT8 (on a CPU this is only a proxy: INT8 speed is TensorRT's business).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx

from litevit._compat import strict_zip
from litevit.calibration.qdq import QuantSite, quantize
from litevit.onnx_graphs import SCORES_OUTPUT, with_scores_output

GRANULARITIES = ("module", "layer")


def ort_session(model: onnx.ModelProto, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session on an in-memory graph, quiet about unused initializers."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def is_label_graph(model: onnx.ModelProto) -> bool:
    """A segmentation graph exported with ``--seg-output labels`` (int32 label map output)."""
    return model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.INT32


@dataclass
class Outputs:
    """What the comparison reads from one graph on the held-out batches: float scores (logits or
    class scores) and, for segmenters, label maps."""

    scores: list[np.ndarray]
    labels: list[np.ndarray] | None


def run_outputs(model: onnx.ModelProto, batches: Sequence[np.ndarray], threads: int | None = None) -> Outputs:
    input_name = model.graph.input[0].name
    if is_label_graph(model):
        session = ort_session(with_scores_output(model), threads)
        labels, scores = [], []
        for batch in batches:
            result = dict(
                strict_zip(
                    [o.name for o in session.get_outputs()],
                    session.run(None, {input_name: batch}),
                )
            )
            labels.append(result[model.graph.output[0].name])
            scores.append(result[SCORES_OUTPUT].astype(np.float32))
        return Outputs(scores, labels)
    session = ort_session(model, threads)
    scores = [session.run(None, {input_name: batch})[0].astype(np.float32) for batch in batches]
    if scores and scores[0].ndim == 4:  # segmentation logits: labels are their argmax
        return Outputs(scores, [s.argmax(axis=1) for s in scores])
    return Outputs(scores, None)


@dataclass
class Agreement:
    """A candidate graph against FP32 on ``images`` held-out images."""

    images: int
    agreement: float  # classifiers: top-1 agreement; segmenters: per-pixel label agreement
    cosine_mean: float
    cosine_min: float
    miou_proxy: float | None = None

    def describe(self, task: str) -> str:
        what = "top-1 agreement" if task == "classification" else "pixel agreement"
        text = (
            f"{what} {100 * self.agreement:.2f} %, "
            f"cosine mean {self.cosine_mean:.5f} (min {self.cosine_min:.5f})"
        )
        if self.miou_proxy is not None:
            text += f", mIoU vs FP32 labels {100 * self.miou_proxy:.2f} %"
        return text


def _cosines(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    cand = candidate.reshape(len(candidate), -1).astype(np.float64)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    return np.where(norms > 0, (ref * cand).sum(axis=1) / np.maximum(norms, 1e-30), 1.0)


def _miou_proxy(reference: np.ndarray, candidate: np.ndarray) -> float:
    classes = np.unique(reference)
    ious = []
    for cls in classes:
        ref, cand = reference == cls, candidate == cls
        ious.append(np.logical_and(ref, cand).sum() / np.logical_or(ref, cand).sum())
    return float(np.mean(ious))


def compare(reference: Outputs, candidate: Outputs) -> Agreement:
    cosines = np.concatenate([_cosines(r, c) for r, c in strict_zip(reference.scores, candidate.scores)])
    if reference.labels is None or candidate.labels is None:
        ref_top1 = np.concatenate([r.argmax(axis=1) for r in reference.scores])
        cand_top1 = np.concatenate([c.argmax(axis=1) for c in candidate.scores])
        return Agreement(
            len(cosines), float((ref_top1 == cand_top1).mean()), float(cosines.mean()), float(cosines.min())
        )
    ref_labels = np.concatenate([r.reshape(len(r), -1) for r in reference.labels])
    cand_labels = np.concatenate([c.reshape(len(c), -1) for c in candidate.labels])
    return Agreement(
        len(cosines),
        float((ref_labels == cand_labels).mean()),
        float(cosines.mean()),
        float(cosines.min()),
        _miou_proxy(ref_labels, cand_labels),
    )


@dataclass
class SensitivityEntry:
    """The graph with ``group`` left in FP32 (everything else INT8), against FP32."""

    group: str
    layers: int
    result: Agreement


@dataclass
class HeldOutSet:
    """Held-out batches and the FP32 graph's outputs on them, computed once."""

    batches: list[np.ndarray]
    reference: Outputs
    threads: int | None = None

    @classmethod
    def from_batches(
        cls, fp32: onnx.ModelProto, batches: list[np.ndarray], threads: int | None
    ) -> HeldOutSet:
        return cls(batches, run_outputs(fp32, batches, threads), threads)

    def evaluate(self, model: onnx.ModelProto) -> Agreement:
        return compare(self.reference, run_outputs(model, self.batches, self.threads))


def groups_of(sites: Sequence[QuantSite], granularity: str) -> dict[str, int]:
    """Group name -> number of layers in it, in graph order."""
    groups: dict[str, int] = {}
    for site in sites:
        name = site.module if granularity == "module" else site.layer
        groups[name] = groups.get(name, 0) + 1
    return groups


def sensitivity(
    model: onnx.ModelProto,
    sites: list[QuantSite],
    amax: dict[str, float],
    held_out: HeldOutSet,
    *,
    granularity: str = "module",
    runnable: Callable[[onnx.ModelProto], onnx.ModelProto] = lambda m: m,
    on_group: Callable[[], None] | None = None,
) -> list[SensitivityEntry]:
    """Each group left in FP32 in turn; ranked most sensitive first (highest cosine when spared,
    then highest agreement). ``runnable`` makes a quantized graph ONNX Runtime-runnable (attaches
    function bodies to a plugin-mode graph)."""
    entries = []
    for group, layers in groups_of(sites, granularity).items():
        candidate = runnable(quantize(model, sites, amax, keep_fp32={group}))
        entries.append(SensitivityEntry(group, layers, held_out.evaluate(candidate)))
        if on_group is not None:
            on_group()
    entries.sort(key=lambda e: (e.result.cosine_mean, e.result.agreement), reverse=True)
    return entries


@dataclass
class KeepFp32Result:
    target: float
    kept: list[str]
    steps: list[dict[str, Any]] = field(default_factory=list)  # one per group added
    met: bool = False
    final: Agreement | None = None


def keep_fp32_auto(
    model: onnx.ModelProto,
    sites: list[QuantSite],
    amax: dict[str, float],
    held_out: HeldOutSet,
    ranking: Sequence[SensitivityEntry],
    baseline: Agreement,
    target: float,
    *,
    runnable: Callable[[onnx.ModelProto], onnx.ModelProto] = lambda m: m,
) -> KeepFp32Result:
    """Leave the most sensitive groups in FP32, in ranking order, until ``agreement >= target``."""
    result = KeepFp32Result(target, [], final=baseline, met=baseline.agreement >= target)
    for entry in ranking:
        if result.met:
            break
        result.kept.append(entry.group)
        current = held_out.evaluate(runnable(quantize(model, sites, amax, keep_fp32=set(result.kept))))
        result.steps.append({"kept": entry.group, **asdict(current)})
        result.final = current
        result.met = current.agreement >= target
    return result


def median_latency_ms(
    model: onnx.ModelProto, batch: np.ndarray, threads: int | None, runs: int = 20
) -> float:
    """Median wall-clock ms of one ONNX Runtime CPU inference on ``batch`` after 3 warm-up runs."""
    session = ort_session(model, threads)
    feed = {model.graph.input[0].name: batch}
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def format_sensitivity(
    entries: Sequence[SensitivityEntry], baseline: Agreement, task: str, top: int = 10
) -> str:
    metric = "top-1 agr" if task == "classification" else "pixel agr"
    lines = [
        f"per-layer sensitivity: each group left in FP32 in turn (all-INT8: {metric} "
        f"{100 * baseline.agreement:.2f} %, cosine {baseline.cosine_mean:.5f}); most sensitive first:",
        f"  {'group':<44} {'layers':>6} {metric:>10} {'cosine':>9} {'gain':>9}",
    ]
    for entry in entries[:top]:
        gain = entry.result.cosine_mean - baseline.cosine_mean
        lines.append(
            f"  {entry.group[:44]:<44} {entry.layers:>6} {100 * entry.result.agreement:>9.2f}% "
            f"{entry.result.cosine_mean:>9.5f} {gain:>+9.5f}"
        )
    if len(entries) > top:
        lines.append(f"  ... {len(entries) - top} more groups in the JSON report")
    return "\n".join(lines)
