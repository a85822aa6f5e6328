"""Detectors in the export: their two graph inputs, their options, and their parity gate.

A detector graph (``litevit.models.detection``) takes ``input`` (B, 3, H, W), the normalised,
padded canvas, and ``image_shapes`` (B, 4) float, per image the resized image's (height, width)
inside the canvas and the original image's (height, width). Its outputs are the model's
``output_names``. Both inputs share the batch axis; H and W are dynamic with ``--dynamic-hw``.
K (detections per image) is static.

Options (``DetectionOptions``): ``mask_output`` ``canvas`` (masks pasted in the graph, bool on
the canvas) or ``roi`` (28 x 28 probabilities, pasted on the host at the original resolution,
Mask R-CNN only); ``score_thr`` the RCNN score threshold written into the graph (default: the
official config's); ``gate_score_thr`` the threshold the parity gate runs at (default: the
graph's when weights are loaded, :data:`RANDOM_WEIGHTS_GATE_THRESHOLD` for random weights, whose
class scores sit near 1/81 and would leave every detection empty). The threshold is the graph's
weight ``score_threshold``: the gate sets it in an in-memory copy and in the PyTorch model, which
is the same graph with one weight changed.

The parity gate (ONNX Runtime CPU against PyTorch FP32, same inputs): inputs are image-like, not
noise: smooth synthetic pictures (``litevit.synthetic``) and synthetic shapes scenes
(``litevit.synthetic_shapes``), several images per batch with different resized sizes padded to
the canvas. Compared, with the tolerances of :data:`DETECTION_TOLERANCES`:

* **pre-NMS candidates**: the boxes and scores that enter each ``NonMaxSuppression`` (the RPN's
  and the RCNN's), a dense test of the backbone, neck, RPN and RoI heads that does not depend
  on a detection surviving the score threshold. The valid candidates of an image (score > -0.5)
  are sorted by score on both sides; a PyTorch candidate is *matched* when an ONNX Runtime
  candidate within ``rank_window`` ranks of it has every box coordinate within ``box_atol +
  box_rtol x |coordinate|`` (the boxes carry mmcv's class offsets, hence the relative part)
  and its score within ``score_atol``;
* **detections**, per image, matched by IoU, not by order: greedily in decreasing PyTorch score,
  each PyTorch detection takes the unmatched ONNX Runtime detection of the same label with the
  highest box IoU, if that is at least ``min_box_iou``; then the matched fraction (of the larger
  count), the largest score difference of matched pairs and, for pasted masks, the smallest
  mask IoU of matched pairs (28 x 28 probabilities: the largest difference);
* **panoptic** (Panoptic FPN): PQ of ONNX Runtime's segment map against PyTorch's as the ground
  truth (``litevit.calibration.panoptic``), per batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from litevit import synthetic
from litevit.calibration.coco import CategoryTable
from litevit.calibration.panoptic import PanopticQuality
from litevit.errors import LitevitError
from litevit.export.onnx_export import (
    INPUT_NAME,
    ExportInputs,
    GraphSpec,
    example_input,
    image_dynamic_shapes,
)
from litevit.export.parity import ParityError
from litevit.models import model_cfg
from litevit.models.detection.detectors import MASK_OUTPUTS, SCORE_THRESHOLD, TwoStageDetector
from litevit.ops.nms import NMS_OP
from litevit.synthetic_shapes import shapes_scene

DETECTION_TASKS = ("detection", "panoptic")
IMAGE_SHAPES = "image_shapes"
# Random weights give class scores near 1 / (classes + 1): the gate lowers the threshold to 0 so
# that detections, masks and panoptic segments exist and are compared.
RANDOM_WEIGHTS_GATE_THRESHOLD = 0.0
_VALID = -0.5  # candidate scores above this are real; INVALID_SCORE (-1) marks padding


def is_detector(task: str) -> bool:
    return task in DETECTION_TASKS


@dataclass(frozen=True)
class DetectionOptions:
    """What ``litevit-export`` can choose for a detector (module docstring)."""

    mask_output: str = "canvas"
    score_thr: float | None = None
    gate_score_thr: float | None = None

    def check(self, task: str) -> None:
        if self.mask_output not in MASK_OUTPUTS:
            raise LitevitError(
                f"unknown --det-masks {self.mask_output!r}; choose one of {', '.join(MASK_OUTPUTS)}."
            )
        if self.mask_output == "roi" and task == "panoptic":
            raise LitevitError(
                "--det-masks roi applies to Mask R-CNN models: Panoptic FPN fuses pasted masks in the graph."
            )
        for name, value in (("--score-thr", self.score_thr), ("--gate-score-thr", self.gate_score_thr)):
            if value is not None and not 0.0 <= value < 1.0:
                raise LitevitError(f"{name} must lie in [0, 1); got {value}.")

    def model_kwargs(self) -> dict[str, Any]:
        """The builder options these set (``litevit.models.detection.zoo``)."""
        kwargs: dict[str, Any] = {"mask_output": self.mask_output}
        if self.score_thr is not None:
            kwargs["score_thr"] = self.score_thr
        return kwargs

    def manifest(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def gate_threshold(self, module: torch.nn.Module, has_weights: bool) -> float:
        if self.gate_score_thr is not None:
            return self.gate_score_thr
        if has_weights:
            return graph_score_threshold(module)
        return RANDOM_WEIGHTS_GATE_THRESHOLD


def as_detector(module: torch.nn.Module) -> TwoStageDetector:
    if not isinstance(module, TwoStageDetector):
        raise LitevitError(f"{type(module).__name__} is not a litevit detector.")
    return module


def output_names(module: torch.nn.Module) -> list[str]:
    return list(as_detector(module).output_names)


def graph_score_threshold(module: torch.nn.Module) -> float:
    """The RCNN score threshold the module (and so its graph) is built with."""
    return float(getattr(module, SCORE_THRESHOLD))


def detection_inputs(module: torch.nn.Module, spec: GraphSpec) -> ExportInputs:
    """Example ``input`` and ``image_shapes`` for tracing; the batch axis is one axis of both."""
    images = example_input(spec, model_cfg(module).size_divisor)
    batch, _, height, width = images.shape
    shapes = torch.tensor([height, width, height, width], dtype=torch.float32).repeat(batch, 1)
    dynamic = None
    if spec.dynamic_axes():
        image_dims = image_dynamic_shapes(module, spec)
        dynamic = (image_dims, {0: image_dims[0]} if 0 in image_dims else {})
    return ExportInputs((images, shapes), (INPUT_NAME, IMAGE_SHAPES), dynamic)


def hw_range(cfg: Any, spec: GraphSpec) -> dict[str, list[int]] | None:
    """The canvas sizes a ``--dynamic-hw`` detector graph is meant for (TensorRT profiles): from
    the model's smallest input to a square of the export size's long side, which holds the
    keep-ratio canvas of a landscape or a portrait image (800 x 1344 or 1344 x 800 at 1333 x 800)."""
    if not spec.dynamic_hw:
        return None
    divisor = cfg.size_divisor
    low = [-(-side // divisor) * divisor for side in (cfg.min_size or (divisor, divisor))]
    side = max(spec.img_size)
    return {"min": low, "max": [side, side]}


def dynamic_axes(spec: GraphSpec) -> dict[str, dict[int, str]]:
    """The manifest's ``dynamic_axes`` of a detector graph."""
    axes = {INPUT_NAME: spec.dynamic_axes()}
    axes[IMAGE_SHAPES] = {0: "batch"} if spec.dynamic_batch else {}
    return axes


# --------------------------------------------------------------------------------------------
# Gate inputs


def gate_batch(
    batch: int, height: int, width: int, cfg: Any, kind: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` image-like canvases (B, 3, H, W) and their ``image_shapes`` (B, 4).

    Image 0 fills the canvas; image i > 0 is smaller (padded with zeros at the bottom and right,
    as mmdet pads after normalising). Each is said to be resized by 0.8 from its original.
    ``kind``: ``picture`` (smooth synthetic picture) or ``shapes`` (synthetic shapes scene)."""
    images = np.zeros((batch, 3, height, width), np.float32)
    shapes = np.zeros((batch, 4), np.float32)
    mean = np.asarray(cfg.mean, np.float32)[:, None, None]
    std = np.asarray(cfg.std, np.float32)[:, None, None]
    for i in range(batch):
        rh = height if i == 0 else max(32, int(height * (1 - 0.15 * i)))
        rw = width if i == 0 else max(32, int(width * (1 - 0.1 * i)))
        if kind == "picture":
            pixels = synthetic.smooth_pictures((1, 3, rh, rw), seed + i)[0] * 255.0
        elif kind == "shapes":
            pixels = shapes_scene(i, seed, (rh, rw)).image.transpose(2, 0, 1).astype(np.float32)
        else:
            raise ValueError(f"unknown gate input kind {kind!r}")
        scaled = pixels * np.float32(cfg.pixel_scale / 255.0)
        images[i, :, :rh, :rw] = (scaled - mean) / std
        shapes[i] = (rh, rw, round(rh / 0.8), round(rw / 0.8))
    return images, shapes


GATE_KINDS = ("picture", "shapes")


def gate_sizes(spec: GraphSpec, divisor: int) -> list[tuple[int, int, int]]:
    """(batch, H, W) per gate run: the export's; a second batch size and a second, non-square
    canvas when those axes are dynamic."""
    h, w = spec.img_size
    sizes = [(spec.batch, h, w)]
    if spec.dynamic_batch:
        sizes.append((spec.batch + 1, h, w))
    if spec.dynamic_hw:
        sizes.append((spec.batch, h + 2 * divisor, w + divisor))
    return sizes


# --------------------------------------------------------------------------------------------
# Tolerances and results


@dataclass(frozen=True)
class DetectionTolerance:
    rank_window: int  # pre-NMS: ranks searched for a candidate's partner
    box_atol: float  # pre-NMS: pixels
    box_rtol: float
    score_atol: float  # pre-NMS and detections
    min_candidates_matched: float  # pre-NMS: fraction of PyTorch's valid candidates
    min_box_iou: float  # detections: a pair's IoU
    min_matched: float  # detections: matched pairs / max(count PyTorch, count ONNX Runtime)
    min_mask_iou: float  # detections: pasted masks of a matched pair
    max_mask_prob_diff: float  # detections: 28 x 28 mask probabilities of a matched pair
    min_pq: float  # panoptic: PQ against PyTorch's segments


DETECTION_TOLERANCES = {
    "fp32": DetectionTolerance(
        rank_window=8,
        box_atol=1e-2,
        box_rtol=1e-5,
        score_atol=1e-4,
        min_candidates_matched=0.999,
        min_box_iou=0.999,
        min_matched=0.99,
        min_mask_iou=0.99,
        max_mask_prob_diff=1e-3,
        min_pq=0.99,
    ),
    "fp16": DetectionTolerance(
        rank_window=32,
        box_atol=1.0,
        box_rtol=2e-3,
        score_atol=2e-2,
        min_candidates_matched=0.9,
        min_box_iou=0.95,
        min_matched=0.9,
        min_mask_iou=0.85,
        max_mask_prob_diff=5e-2,
        min_pq=0.85,
    ),
}


@dataclass
class GateCheck:
    """One compared quantity of one gate run."""

    check: str  # e.g. "pre-NMS 1", "detections", "masks", "panoptic"
    input_kind: str
    input_shape: list[int]
    value: float  # the figure the tolerance applies to
    limit: float
    detail: str
    passed: bool = True

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class DetectionGate:
    """The gate's checks of one graph."""

    precision: str
    score_threshold: float
    checks: list[GateCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "runtime": "onnxruntime CPUExecutionProvider",
            "reference": "PyTorch FP32 eager (same weights, same inputs)",
            "gate_score_threshold": self.score_threshold,
            "tolerance": dataclasses.asdict(DETECTION_TOLERANCES[self.precision]),
            "passed": self.passed,
            "results": [check.as_dict() for check in self.checks],
        }

    def table(self, title: str) -> str:
        header = ("check", "input", "shape", "value", "limit", "detail", "ok")
        rows = [header]
        for c in self.checks:
            rows.append(
                (
                    c.check,
                    c.input_kind,
                    "x".join(map(str, c.input_shape)),
                    f"{c.value:.6g}",
                    f"{c.limit:g}",
                    c.detail,
                    "yes" if c.passed else "NO",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        return f"{title} (score threshold {self.score_threshold:g})\n" + "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Comparisons


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy boxes -> (N, M) IoU (0 where the union is empty)."""
    a = a.astype(np.float64)[:, None]
    b = b.astype(np.float64)[None]
    inter = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None) * np.clip(
        np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None
    )
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_candidates(
    ref_boxes: np.ndarray,
    ref_scores: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    tol: DetectionTolerance,
) -> tuple[float, float, int]:
    """Pre-NMS candidates of one image: (fraction of the reference's valid candidates matched,
    largest score difference of matched ones, number of reference candidates). See the module
    docstring for the rule."""
    ref_valid = ref_scores > _VALID
    valid = scores > _VALID
    order_ref = np.argsort(-ref_scores[ref_valid], kind="stable")
    order = np.argsort(-scores[valid], kind="stable")
    ref_b, ref_s = ref_boxes[ref_valid][order_ref].astype(np.float64), ref_scores[ref_valid][order_ref]
    cand_b, cand_s = boxes[valid][order].astype(np.float64), scores[valid][order]
    n = len(ref_s)
    if n == 0:
        return (1.0 if len(cand_s) == 0 else 0.0), 0.0, 0
    matched = np.zeros(n, bool)
    score_diff = np.full(n, np.inf)
    ranks = np.arange(n)
    for offset in range(-tol.rank_window, tol.rank_window + 1):
        other = ranks + offset
        inside = (other >= 0) & (other < len(cand_s))
        here, there = ranks[inside], other[inside]
        close = np.all(
            np.abs(ref_b[here] - cand_b[there]) <= tol.box_atol + tol.box_rtol * np.abs(ref_b[here]), axis=1
        )
        diff = np.abs(ref_s[here] - cand_s[there]).astype(np.float64)
        ok = close & (diff <= tol.score_atol)
        matched[here[ok]] = True
        score_diff[here[ok]] = np.minimum(score_diff[here[ok]], diff[ok])
    worst = float(score_diff[matched].max()) if matched.any() else 0.0
    return float(matched.mean()), worst, n


@dataclass
class DetectionMatch:
    pairs: list[tuple[int, int]]
    count_ref: int
    count: int

    @property
    def fraction(self) -> float:
        larger = max(self.count_ref, self.count)
        return len(self.pairs) / larger if larger else 1.0


def match_detections(
    ref_boxes: np.ndarray,
    ref_labels: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    min_iou: float,
) -> DetectionMatch:
    """One image's valid detections (reference in decreasing score), matched by IoU (module
    docstring): (reference index, candidate index) pairs."""
    iou = box_iou(ref_boxes, boxes)
    iou[ref_labels[:, None] != labels[None, :]] = -1.0
    taken = np.zeros(len(boxes), bool)
    pairs = []
    for i in range(len(ref_boxes)):
        row = np.where(taken, -1.0, iou[i])
        if len(row) and row.max() >= min_iou:
            j = int(row.argmax())
            taken[j] = True
            pairs.append((i, j))
    return DetectionMatch(pairs, len(ref_boxes), len(boxes))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def panoptic_categories(module: TwoStageDetector) -> CategoryTable:
    """The model's panoptic classes as a category table: label l has category id l + 1; things
    first (as the model's labels are)."""
    panoptic = module.det.panoptic
    assert panoptic is not None
    count = panoptic.num_things + panoptic.num_stuff
    return CategoryTable(
        tuple(range(1, count + 1)),
        tuple(f"class {label}" for label in range(count)),
        tuple(label < panoptic.num_things for label in range(count)),
    )


def panoptic_segments(
    segment_map: np.ndarray, segment_labels: np.ndarray, segment_areas: np.ndarray
) -> list[dict[str, Any]]:
    """One image's ``segments_info`` (id, category_id = label + 1, iscrowd 0) for the ids present."""
    present = set(np.unique(segment_map).tolist()) - {0}
    return [
        {"id": slot + 1, "category_id": int(segment_labels[slot]) + 1, "iscrowd": 0}
        for slot in range(len(segment_labels))
        if slot + 1 in present and segment_areas[slot] > 0
    ]


# --------------------------------------------------------------------------------------------
# Running both sides


class _NmsInputs(TorchDispatchMode):
    """Records the (boxes, scores) every NMS call of the PyTorch model receives."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is NMS_OP.torch_op:
            self.calls.append((args[0].detach().float().numpy(), args[1].detach().float().numpy()))
        return func(*args, **(kwargs or {}))


def with_nms_inputs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[tuple[str, str]]]:
    """A copy of ``model`` that also outputs the boxes and scores of every NonMaxSuppression node
    (in graph order), and their names."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    existing = {value.name for value in out.graph.output}
    names = []
    for node in out.graph.node:
        if node.op_type == "NonMaxSuppression" and node.domain in ("", "ai.onnx"):
            pair = (node.input[0], node.input[1])
            names.append(pair)
            for name in pair:
                if name not in existing:
                    out.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
                    existing.add(name)
    return out, names


def set_score_threshold(model: onnx.ModelProto, value: float) -> onnx.ModelProto:
    """A copy of ``model`` whose ``score_threshold`` weight (and its float16 copy) is ``value``."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    found = False
    for tensor in out.graph.initializer:
        if tensor.name == SCORE_THRESHOLD or tensor.name.startswith(f"{SCORE_THRESHOLD}_"):
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
            tensor.CopyFrom(onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), tensor.name))
            found = True
    if not found:
        raise LitevitError(
            f"the detector graph has no {SCORE_THRESHOLD!r} weight, so the parity gate cannot set its "
            f"score threshold; re-export it with this litevit."
        )
    return out


def run_detection_parity(
    module: TwoStageDetector,
    onnx_model: onnx.ModelProto,
    spec: GraphSpec,
    precision: str,
    score_threshold: float,
    threads: int | None = None,
) -> DetectionGate:
    """The gate (module docstring) of one graph; ``module`` is the PyTorch model it came from."""
    import onnxruntime as ort

    tol = DETECTION_TOLERANCES[precision]
    cfg = model_cfg(module)
    checked, nms_names = with_nms_inputs(set_score_threshold(onnx_model, score_threshold))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(
            checked.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises its own exception types for graphs it cannot load
        raise ParityError(
            f"ONNX Runtime cannot load the {precision} graph: {str(exc).splitlines()[0]}"
        ) from None
    names = list(module.output_names)
    buffer = getattr(module, SCORE_THRESHOLD)
    original = float(buffer)
    gate = DetectionGate(precision, score_threshold)
    try:
        buffer.fill_(score_threshold)
        for batch, height, width in gate_sizes(spec, cfg.size_divisor):
            for kind in GATE_KINDS:
                images, shapes = gate_batch(batch, height, width, cfg, kind)
                with torch.inference_mode(), _NmsInputs() as recorder:
                    expected = module(torch.from_numpy(images), torch.from_numpy(shapes))
                reference = {name: value.numpy() for name, value in zip(names, expected, strict=True)}
                got = dict(
                    zip(
                        [o.name for o in session.get_outputs()],
                        session.run(None, {INPUT_NAME: images, IMAGE_SHAPES: shapes}),
                        strict=True,
                    )
                )
                where = (kind, [batch, 3, height, width])
                gate.checks.extend(_compare_candidates(recorder.calls, nms_names, got, tol, where))
                gate.checks.extend(_compare_detections(reference, got, tol, where))
                if "panoptic" in reference:
                    gate.checks.append(_compare_panoptic(module, reference, got, tol, where))
    finally:
        buffer.fill_(original)
    return gate


def _compare_candidates(
    calls: Sequence[tuple[np.ndarray, np.ndarray]],
    nms_names: Sequence[tuple[str, str]],
    got: dict[str, np.ndarray],
    tol: DetectionTolerance,
    where: tuple[str, list[int]],
) -> list[GateCheck]:
    kind, shape = where
    if len(calls) != len(nms_names):
        return [
            GateCheck(
                "pre-NMS",
                kind,
                shape,
                0.0,
                1.0,
                f"{len(nms_names)} NMS nodes, PyTorch ran {len(calls)}",
                False,
            )
        ]
    checks = []
    for stage, ((ref_boxes, ref_scores), (box_name, score_name)) in enumerate(
        zip(calls, nms_names, strict=True), 1
    ):
        boxes, scores = got[box_name], got[score_name].reshape(ref_scores.shape)
        fractions, worst, total = [], 0.0, 0
        for image in range(len(ref_scores)):
            fraction, diff, count = match_candidates(
                ref_boxes[image], ref_scores[image], boxes[image], scores[image], tol
            )
            fractions.append(fraction)
            worst = max(worst, diff)
            total += count
        value = min(fractions)
        checks.append(
            GateCheck(
                f"pre-NMS {stage}",
                kind,
                shape,
                value,
                tol.min_candidates_matched,
                f"{total} candidates; matched (worst image) {value:.2%}, max |Δscore| {worst:.2e}",
                value >= tol.min_candidates_matched,
            )
        )
    return checks


def _compare_detections(
    reference: dict[str, np.ndarray],
    got: dict[str, np.ndarray],
    tol: DetectionTolerance,
    where: tuple[str, list[int]],
) -> list[GateCheck]:
    kind, shape = where
    fractions, ious, score_diffs, mask_scores = [], [], [], []
    counts = []
    roi_masks = "masks" in reference and reference["masks"].dtype != np.bool_
    for image in range(len(reference["num_detections"])):
        n_ref, n = int(reference["num_detections"][image]), int(got["num_detections"][image])
        counts.append(n_ref)
        match = match_detections(
            reference["boxes"][image, :n_ref],
            reference["labels"][image, :n_ref],
            got["boxes"][image, :n],
            got["labels"][image, :n],
            tol.min_box_iou,
        )
        fractions.append(match.fraction)
        for i, j in match.pairs:
            ious.append(
                float(box_iou(reference["boxes"][image, i : i + 1], got["boxes"][image, j : j + 1])[0, 0])
            )
            score_diffs.append(abs(float(reference["scores"][image, i]) - float(got["scores"][image, j])))
            if "masks" in reference:
                ref_mask, mask = reference["masks"][image, i], got["masks"][image, j]
                if roi_masks:
                    mask_scores.append(float(np.abs(ref_mask - mask).max()))
                else:
                    mask_scores.append(mask_iou(ref_mask, mask))
    matched = min(fractions)
    worst_score = max(score_diffs, default=0.0)
    checks = [
        GateCheck(
            "detections",
            kind,
            shape,
            matched,
            tol.min_matched,
            f"PyTorch found {counts}; matched {matched:.2%} (IoU >= {tol.min_box_iou:g}, same label), "
            f"min IoU {min(ious, default=1.0):.5f}",
            matched >= tol.min_matched,
        ),
        GateCheck(
            "scores",
            kind,
            shape,
            worst_score,
            tol.score_atol,
            "max |Δscore| of matched detections",
            worst_score <= tol.score_atol,
        ),
    ]
    if "masks" in reference:
        if roi_masks:
            worst = max(mask_scores, default=0.0)
            checks.append(
                GateCheck(
                    "masks",
                    kind,
                    shape,
                    worst,
                    tol.max_mask_prob_diff,
                    "max |Δ| of 28x28 mask probabilities",
                    worst <= tol.max_mask_prob_diff,
                )
            )
        else:
            worst = min(mask_scores, default=1.0)
            checks.append(
                GateCheck(
                    "masks",
                    kind,
                    shape,
                    worst,
                    tol.min_mask_iou,
                    "min mask IoU of matched detections",
                    worst >= tol.min_mask_iou,
                )
            )
    return checks


def _compare_panoptic(
    module: TwoStageDetector,
    reference: dict[str, np.ndarray],
    got: dict[str, np.ndarray],
    tol: DetectionTolerance,
    where: tuple[str, list[int]],
) -> GateCheck:
    kind, shape = where
    meter = PanopticQuality(panoptic_categories(module))
    for image in range(len(reference["panoptic"])):
        meter.update(
            reference["panoptic"][image],
            panoptic_segments(
                reference["panoptic"][image],
                reference["segment_labels"][image],
                reference["segment_areas"][image],
            ),
            got["panoptic"][image],
            panoptic_segments(
                got["panoptic"][image], got["segment_labels"][image], got["segment_areas"][image]
            ),
            where=f"gate image {image}",
        )
    result = meter.result()
    pq = result.all.pq if result.all.pq is not None else 1.0
    segments = int(sum(c.tp + c.fn for c in result.per_class))
    return GateCheck(
        "panoptic",
        kind,
        shape,
        pq,
        tol.min_pq,
        f"PQ vs PyTorch's {segments} segments (SQ {result.all.sq or 1.0:.4f}, RQ {result.all.rq or 1.0:.4f})",
        pq >= tol.min_pq,
    )
