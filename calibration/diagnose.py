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

import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from litevit._compat import strict_zip
from litevit.calibration.images import evenly_spaced
from litevit.calibration.qdq import QuantSite
from litevit.onnx_graphs import SCORES_OUTPUT, with_scores_output

if TYPE_CHECKING:
    from litevit.calibration.tails import TailEvaluator

GRANULARITIES = ("module", "layer")
# The per-layer ranking runs every group's candidate: on this many held-out images by default
# (spread evenly), which orders the groups as the whole set does while costing a fraction.
DEFAULT_SENSITIVITY_IMAGES = 16


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
    return run_outputs_on(model, [{input_name: batch} for batch in batches], threads)


def run_outputs_on(
    model: onnx.ModelProto, feeds: Sequence[dict[str, np.ndarray]], threads: int | None = None
) -> Outputs:
    """:func:`run_outputs` with every input named: one feed per batch (a graph tail takes several)."""
    if is_label_graph(model):
        session = ort_session(with_scores_output(model), 1)
        names = [o.name for o in session.get_outputs()]
        labels, scores = [], []
        for values in run_concurrently(session, feeds, threads):
            result = dict(strict_zip(names, values))
            labels.append(result[model.graph.output[0].name])
            scores.append(result[SCORES_OUTPUT].astype(np.float32))
        return Outputs(scores, labels)
    session = ort_session(model, 1)
    scores = [values[0].astype(np.float32) for values in run_concurrently(session, feeds, threads)]
    if scores and scores[0].ndim == 4:  # segmentation logits: labels are their argmax
        return Outputs(scores, [s.argmax(axis=1) for s in scores])
    return Outputs(scores, None)


def run_concurrently(session: Any, feeds: Sequence[dict[str, np.ndarray]], threads: int | None) -> list[Any]:
    """``session.run`` on every feed, ``threads`` runs at a time (default: one per CPU) on a
    session with one intra-op thread. On the small batches of an accuracy check, whole runs side by
    side keep the cores busier than one run at a time split over threads (ONNX Runtime's sessions
    may be run from several threads; results do not depend on the thread count)."""
    workers = min(len(feeds), threads if threads is not None else (os.cpu_count() or 1))
    if workers <= 1:
        return [session.run(None, feed) for feed in feeds]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda feed: session.run(None, feed), feeds))


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

    @property
    def images(self) -> int:
        return sum(len(batch) for batch in self.batches)

    def subset(self, max_images: int) -> HeldOutSet:
        """At most ``max_images`` images (whole batches, spread evenly over the set as
        :func:`~litevit.calibration.images.evenly_spaced` spreads files) with their reference
        outputs: nothing is recomputed."""
        per_batch = max(len(self.batches[0]), 1) if self.batches else 1
        count = max(1, max_images // per_batch)
        if count >= len(self.batches):
            return self
        picked = evenly_spaced(list(range(len(self.batches))), count)
        labels = self.reference.labels
        reference = Outputs(
            [self.reference.scores[i] for i in picked], [labels[i] for i in picked] if labels else None
        )
        return HeldOutSet([self.batches[i] for i in picked], reference, self.threads)


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
    evaluator: TailEvaluator | None = None,
) -> list[SensitivityEntry]:
    """Each group left in FP32 in turn; ranked most sensitive first (highest cosine when spared,
    then highest agreement). ``runnable`` makes a quantized graph ONNX Runtime-runnable (attaches
    function bodies to a plugin-mode graph). Each candidate runs only the part of the graph it
    changes (:mod:`litevit.calibration.tails`); ``evaluator`` shares that work with other calls."""
    from litevit.calibration.tails import TailEvaluator  # tails builds on this module

    groups = groups_of(sites, granularity)
    evaluator = evaluator or TailEvaluator(model, sites, amax, held_out, runnable=runnable)
    results = evaluator.evaluate_each([{group} for group in groups], on_done=on_group)
    entries = [
        SensitivityEntry(group, layers, result)
        for (group, layers), result in strict_zip(groups.items(), results)
    ]
    entries.sort(key=lambda e: (e.result.cosine_mean, e.result.agreement), reverse=True)
    return entries


@dataclass
class SensitivityRanking:
    """:func:`sensitivity` on ``images`` held-out images, with the all-INT8 graph's figures on the
    same images (the baseline each group's gain is measured from)."""

    entries: list[SensitivityEntry]
    baseline: Agreement
    images: int


def rank_layers(
    model: onnx.ModelProto,
    sites: list[QuantSite],
    amax: dict[str, float],
    held_out: HeldOutSet,
    *,
    granularity: str = "module",
    max_images: int = DEFAULT_SENSITIVITY_IMAGES,
    baseline: Agreement | None = None,
    runnable: Callable[[onnx.ModelProto], onnx.ModelProto] = lambda m: m,
    progress: bool = False,
) -> SensitivityRanking:
    """:func:`sensitivity` on at most ``max_images`` of the held-out images (0: all), spread evenly,
    with a progress bar that estimates the time left. ``baseline`` is the all-INT8 graph's result
    on the whole set, reused when the ranking uses the whole set."""
    from litevit._progress import Progress
    from litevit.calibration.tails import TailEvaluator  # tails builds on this module

    ranked_on = held_out.subset(max_images) if max_images else held_out
    evaluator = TailEvaluator(model, sites, amax, ranked_on, runnable=runnable)
    if baseline is None or ranked_on is not held_out:
        baseline = ranked_on.evaluate(evaluator.all_int8)
    groups = len(groups_of(sites, granularity))
    bar = Progress(progress, groups, f"sensitivity on {ranked_on.images} images", unit="groups")
    try:
        entries = sensitivity(
            model,
            sites,
            amax,
            ranked_on,
            granularity=granularity,
            runnable=runnable,
            on_group=bar.update,
            evaluator=evaluator,
        )
    finally:
        bar.close()
    return SensitivityRanking(entries, baseline, ranked_on.images)


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
    evaluator: TailEvaluator | None = None,
) -> KeepFp32Result:
    """Leave the most sensitive groups in FP32, in ranking order, until ``agreement >= target``
    (each step runs only the part of the graph the kept groups change, as :func:`sensitivity`)."""
    from litevit.calibration.tails import TailEvaluator  # tails builds on this module

    evaluator = evaluator or TailEvaluator(model, sites, amax, held_out, runnable=runnable)
    result = KeepFp32Result(target, [], final=baseline, met=baseline.agreement >= target)
    for entry in ranking:
        if result.met:
            break
        result.kept.append(entry.group)
        current = evaluator.evaluate(set(result.kept))
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


def format_sensitivity(ranking: SensitivityRanking, task: str, top: int = 10) -> str:
    entries, baseline = ranking.entries, ranking.baseline
    metric = "top-1 agr" if task == "classification" else "pixel agr"
    lines = [
        f"per-layer sensitivity on {ranking.images} images: each group left in FP32 in turn (all-INT8: "
        f"{metric} {100 * baseline.agreement:.2f} %, cosine {baseline.cosine_mean:.5f}); most sensitive "
        f"first:",
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
