"""Detector outputs compared with a reference, detection by detection (torch-free).

Used by the export's parity gate (ONNX Runtime against PyTorch, :mod:`litevit.export.detection`)
and by ``litevit build``'s engine parity (TensorRT against ONNX Runtime). Outputs are compared as
detections, not element by element: their order and the padding of empty slots are not part of
the result. With the tolerances of :data:`DETECTION_TOLERANCES`:

* **pre-NMS candidates** (export gate only): the boxes and scores that enter a
  ``NonMaxSuppression``. Of an image's valid candidates (score > -0.5; -1 marks padding), a
  reference candidate is *matched* when some candidate has its score within ``score_atol`` and
  every box coordinate within ``box_atol + box_rtol x extent`` (extent: the reference box's
  larger side; the boxes carry mmcv's class offsets, so a tolerance relative to the coordinates
  would grow with the class). Order is free: equal scores (a trained RPN saturates many at
  1.0) may be ranked either way;
* **detections**, per image, matched by IoU: greedily in decreasing reference score, each
  reference detection takes the unmatched candidate detection of the same label with the highest
  box IoU, if that is at least ``min_box_iou``; a pair whose every coordinate is within the box
  tolerance counts as IoU 1 (a box clipped to zero width has no IoU, even with itself); an
  unmatched detection that tied for the last of the K places (the other side is full and its
  lowest score is within ``score_atol``) is not held against the match, and detections whose box
  has zero area (clipped flat against the image border: they overlap nothing, so they cannot
  change AP, and which of them survive is a matter of near-ties) are left out; then the matched
  fraction (of the larger count), the largest score difference of matched pairs and, for
  pasted masks, the smallest mask IoU of matched pairs (28 x 28 probabilities: the largest
  difference);
* **panoptic**: PQ of the candidate's segment map against the reference's as the ground truth
  (:class:`litevit.calibration.panoptic.PanopticQuality`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from litevit._compat import strict_zip
from litevit.calibration.coco import CategoryTable
from litevit.calibration.panoptic import PanopticQuality

_VALID = -0.5  # candidate scores above this are real; the detectors' INVALID_SCORE (-1) marks padding


@dataclass(frozen=True)
class DetectionTolerance:
    box_atol: float  # pixels
    box_rtol: float  # of the box's larger side
    score_atol: float  # pre-NMS and detections
    min_candidates_matched: float  # pre-NMS: fraction of the reference's valid candidates
    min_box_iou: float  # detections: a pair's IoU
    min_matched: float  # detections: matched pairs / max(reference count, candidate count)
    min_mask_iou: float  # detections: pasted masks of a matched pair
    max_mask_prob_diff: float  # detections: 28 x 28 mask probabilities of a matched pair
    min_pq: float  # panoptic: PQ against the reference's segments


DETECTION_TOLERANCES = {
    "fp32": DetectionTolerance(
        box_atol=1e-2,  # float32's spacing at mmcv's class offsets (80 x 1345) is 0.008
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
        box_atol=0.5,
        box_rtol=1e-2,
        score_atol=2e-2,
        # FP16 moves scores by ~1e-3, which changes which near-equal candidates make a top-K cut:
        # with random weights every class score is near 1/81 and up to a fifth of the RCNN's
        # candidates change (ELSA-Swin-T at 800 x 1344: 82 % matched); with box coordinates in
        # float16 (rule 4 off) 0.3 % match.
        min_candidates_matched=0.75,
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
    at_least: bool = True  # the value must be >= limit (else <= limit)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
            "tolerance": asdict(DETECTION_TOLERANCES[self.precision]),
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
        lines = ["  ".join(cell.ljust(w) for cell, w in strict_zip(row, widths)).rstrip() for row in rows]
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
    ref_b, ref_s = ref_boxes[ref_valid].astype(np.float64), ref_scores[ref_valid].astype(np.float64)
    order = np.argsort(scores[valid], kind="stable")
    cand_b, cand_s = boxes[valid][order].astype(np.float64), scores[valid][order].astype(np.float64)
    if len(ref_s) == 0:
        return (1.0 if len(cand_s) == 0 else 0.0), 0.0, 0
    # Candidates whose score is within score_atol of each reference candidate's: a slice of the
    # sorted scores (ties and near-ties in any order).
    extent = np.maximum(ref_b[:, 2] - ref_b[:, 0], ref_b[:, 3] - ref_b[:, 1])
    low = np.searchsorted(cand_s, ref_s - tol.score_atol, "left")
    high = np.searchsorted(cand_s, ref_s + tol.score_atol, "right")
    worst = 0.0
    matched = 0
    for i in range(len(ref_s)):
        near = slice(low[i], high[i])
        close = np.all(np.abs(cand_b[near] - ref_b[i]) <= tol.box_atol + tol.box_rtol * extent[i], axis=1)
        if close.any():
            matched += 1
            worst = max(worst, float(np.abs(cand_s[near][close] - ref_s[i]).min()))
    return matched / len(ref_s), worst, len(ref_s)


@dataclass
class DetectionMatch:
    """Matched (reference, candidate) pairs of one image; ``excused``: unmatched detections at the
    K cut-off (see :func:`excused_at_cutoff`), which do not count against the match."""

    pairs: list[tuple[int, int]]
    count_ref: int
    count: int
    excused: int = 0

    @property
    def fraction(self) -> float:
        larger = max(self.count_ref, self.count)
        if not larger:
            return 1.0
        unmatched = max(self.count_ref, self.count) - len(self.pairs)
        return 1.0 - max(unmatched - self.excused, 0) / larger


def _has_area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def excused_at_cutoff(
    unmatched_scores: np.ndarray, other_scores: np.ndarray, slots: int, tol: DetectionTolerance
) -> int:
    """How many unmatched detections of one side lost (or won) the last of the other side's
    ``slots`` (K) places to an equal score: the other side is full and the detection scores within
    ``score_atol`` of its lowest kept score. Equal scores may be ranked either way."""
    if len(other_scores) < slots or not len(unmatched_scores):
        return 0
    return int(np.sum(np.abs(unmatched_scores - other_scores.min()) <= tol.score_atol))


def box_similarity(a: np.ndarray, b: np.ndarray, tol: DetectionTolerance) -> np.ndarray:
    """(N, M) IoU, or 1 where two boxes have every coordinate within the box tolerance: boxes of
    zero area (clipped to an image border) have no IoU but can still be the same box."""
    close = np.all(
        np.abs(a[:, None].astype(np.float64) - b[None])
        <= tol.box_atol + tol.box_rtol * np.maximum(a[:, 2] - a[:, 0], a[:, 3] - a[:, 1])[:, None, None],
        axis=-1,
    )
    return np.where(close, 1.0, box_iou(a, b))


def match_detections(
    ref_boxes: np.ndarray,
    ref_labels: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    tol: DetectionTolerance,
) -> DetectionMatch:
    """One image's valid detections (reference in decreasing score), matched by IoU (module
    docstring; :func:`box_similarity`): (reference index, candidate index) pairs."""
    similarity = box_similarity(ref_boxes, boxes, tol)
    similarity[ref_labels[:, None] != labels[None, :]] = -1.0
    taken = np.zeros(len(boxes), bool)
    pairs = []
    for i in range(len(ref_boxes)):
        row = np.where(taken, -1.0, similarity[i])
        if len(row) and row.max() >= tol.min_box_iou:
            j = int(row.argmax())
            taken[j] = True
            pairs.append((i, j))
    return DetectionMatch(pairs, len(ref_boxes), len(boxes))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def label_table(count: int) -> CategoryTable:
    """Labels 0..count-1 as categories (id = label + 1): what comparing two outputs of one model
    needs, whatever its classes are called."""
    return CategoryTable(
        tuple(range(1, count + 1)), tuple(f"class {label}" for label in range(count)), (True,) * count
    )


def panoptic_segments(
    segment_map: np.ndarray, segment_labels: np.ndarray, segment_areas: np.ndarray
) -> list[dict[str, Any]]:
    """One image's segments (``id``, ``label``, ``iscrowd`` 0) for the ids present in the map."""
    present = set(np.unique(segment_map).tolist()) - {0}
    return [
        {"id": slot + 1, "label": int(segment_labels[slot]), "iscrowd": 0}
        for slot in range(len(segment_labels))
        if slot + 1 in present and segment_areas[slot] > 0
    ]


def compare_candidates(
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
        strict_zip(calls, nms_names), 1
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


def compare_detections(
    reference: Mapping[str, np.ndarray],
    got: Mapping[str, np.ndarray],
    tol: DetectionTolerance,
    where: tuple[str, list[int]],
    reference_name: str = "PyTorch",
) -> list[GateCheck]:
    kind, shape = where
    fractions, ious, score_diffs, mask_scores = [], [], [], []
    counts = []
    excused = 0
    roi_masks = "masks" in reference and reference["masks"].dtype != np.bool_
    flat = 0
    for image in range(len(reference["num_detections"])):
        n_ref, n = int(reference["num_detections"][image]), int(got["num_detections"][image])
        counts.append(n_ref)
        # Boxes clipped flat against the image border overlap nothing (no effect on AP); which of
        # these near-ties survive is left out of the match.
        ref_index = np.flatnonzero(_has_area(reference["boxes"][image, :n_ref]))
        index = np.flatnonzero(_has_area(got["boxes"][image, :n]))
        flat += n_ref - len(ref_index)
        match = match_detections(
            reference["boxes"][image, ref_index],
            reference["labels"][image, ref_index],
            got["boxes"][image, index],
            got["labels"][image, index],
            tol,
        )
        slots = reference["scores"].shape[1]
        ref_scores, scores = reference["scores"][image, ref_index], got["scores"][image, index]
        ref_left = np.setdiff1d(np.arange(len(ref_index)), [i for i, _ in match.pairs])
        left = np.setdiff1d(np.arange(len(index)), [j for _, j in match.pairs])
        match.excused = max(
            excused_at_cutoff(ref_scores[ref_left], got["scores"][image, :n], slots, tol),
            excused_at_cutoff(scores[left], reference["scores"][image, :n_ref], slots, tol),
        )
        excused += match.excused
        fractions.append(match.fraction)
        for i, j in ((ref_index[a], index[b]) for a, b in match.pairs):
            pair = box_similarity(reference["boxes"][image, i : i + 1], got["boxes"][image, j : j + 1], tol)
            ious.append(float(pair[0, 0]))
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
            f"{reference_name} found {counts}; matched {matched:.2%} "
            f"(IoU >= {tol.min_box_iou:g}, same label), min IoU {min(ious, default=1.0):.5f}"
            + (f"; {excused} tied at the K cut-off" if excused else "")
            + (f"; {flat} of zero area left out" if flat else ""),
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
            at_least=False,
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
                    at_least=False,
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


def compare_panoptic(
    categories: CategoryTable,
    reference: Mapping[str, np.ndarray],
    got: Mapping[str, np.ndarray],
    tol: DetectionTolerance,
    where: tuple[str, list[int]],
    reference_name: str = "PyTorch",
) -> GateCheck:
    """PQ of ``got``'s segment maps against ``reference``'s; ``categories`` in label order
    (category id of label l: ``categories.ids[l]``)."""
    kind, shape = where
    meter = PanopticQuality(categories)

    def segments(outputs: Mapping[str, np.ndarray], image: int) -> list[dict[str, Any]]:
        return [
            {**segment, "category_id": categories.ids[segment["label"]]}
            for segment in panoptic_segments(
                outputs["panoptic"][image], outputs["segment_labels"][image], outputs["segment_areas"][image]
            )
        ]

    for image in range(len(reference["panoptic"])):
        meter.update(
            reference["panoptic"][image],
            segments(reference, image),
            got["panoptic"][image],
            segments(got, image),
            where=f"gate image {image}",
        )
    result = meter.result()
    pq = result.all.pq if result.all.pq is not None else 1.0
    count = int(sum(c.tp + c.fn for c in result.per_class))
    return GateCheck(
        "panoptic",
        kind,
        shape,
        pq,
        tol.min_pq,
        f"PQ vs {reference_name}'s {count} segments "
        f"(SQ {result.all.sq or 1.0:.4f}, RQ {result.all.rq or 1.0:.4f})",
        pq >= tol.min_pq,
    )


def compare_outputs(
    reference: Mapping[str, np.ndarray],
    got: Mapping[str, np.ndarray],
    tol: DetectionTolerance,
    categories: CategoryTable | None,
    where: tuple[str, list[int]],
    reference_name: str = "PyTorch",
) -> list[GateCheck]:
    """Detections (and masks), and the panoptic map when there is one (``categories``: the
    model's classes, needed for a panoptic map)."""
    checks = compare_detections(reference, got, tol, where, reference_name)
    if "panoptic" in reference:
        assert categories is not None, "a panoptic map is compared by class"
        checks.append(compare_panoptic(categories, reference, got, tol, where, reference_name))
    return checks
