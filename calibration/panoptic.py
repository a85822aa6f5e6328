"""Panoptic quality (PQ, SQ, RQ), torch-free, from COCO's panoptic format.

The definition is Kirillov et al., "Panoptic Segmentation" (CVPR 2019), with the rules of COCO's
panoptic evaluation (panopticapi, which mmdet's COCO panoptic evaluation calls):

- A predicted and a ground-truth segment of the same category match when their IoU > 0.5 (so a
  match is unique). Pixels VOID in the ground truth (id 0) are left out of the union: IoU =
  |P ∩ G| / (|P| - |P ∩ VOID| + |G| - |P ∩ G|).
- Per category: TP = matches, FN = unmatched ground truth, FP = unmatched predictions; the IoUs of
  the matches add up. PQ = ΣIoU / (TP + FP/2 + FN/2) = SQ · RQ with SQ = ΣIoU / TP (0 without a
  match) and RQ = TP / (TP + FP/2 + FN/2).
- Crowd regions (ground truth with ``iscrowd`` 1) never match and are never FN; an unmatched
  prediction is not a FP when more than half of its pixels are VOID or crowd of its category.
- PQ, SQ, RQ are the means over the categories that occur (TP + FP + FN > 0), for all, for things
  and for stuff.

Two choices differ from panopticapi without changing COCO figures: a segment's area is counted in
its PNG (panopticapi reads the ground truth's from the JSON, which on COCO holds the same count),
and a category with several crowd segments in one image counts all of them (panopticapi only the
last listed; COCO has at most one per category and image). Ground truth whose PNG and
``segments_info`` disagree is refused, as panopticapi refuses such predictions.

Scores are fractions in [0, 1]; :func:`format_panoptic` prints them in percent, as mmdet does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from litevit.calibration.coco import (
    VOID,
    CategoryTable,
    CocoPanoptic,
    PanopticAnnotation,
    read_json,
    read_panoptic_annotations,
    read_panoptic_png,
)
from litevit.errors import DataError

MATCH_IOU = 0.5  # a match needs IoU strictly above this
IGNORED_FRACTION = 0.5  # an unmatched prediction more than this VOID/crowd is not a false positive


@dataclass
class PQFigures:
    """PQ, SQ, RQ (fractions) over ``n`` categories; None when no category occurs."""

    pq: float | None
    sq: float | None
    rq: float | None
    n: int


@dataclass
class ClassPQ:
    """One category's counts and figures (None when it does not occur: TP + FP + FN = 0)."""

    name: str
    isthing: bool
    tp: int
    fp: int
    fn: int
    iou: float
    pq: float | None
    sq: float | None
    rq: float | None


@dataclass
class PanopticResult:
    images: int
    all: PQFigures
    things: PQFigures
    stuff: PQFigures
    per_class: list[ClassPQ] = field(default_factory=list)  # contiguous-label order

    def scores(self) -> dict[str, float | None]:
        """The nine figures by mmdet's names (PQ, SQ, RQ, PQ_th, ..., RQ_st), fractions."""
        out: dict[str, float | None] = {}
        for suffix, figures in (("", self.all), ("_th", self.things), ("_st", self.stuff)):
            out[f"PQ{suffix}"], out[f"SQ{suffix}"], out[f"RQ{suffix}"] = figures.pq, figures.sq, figures.rq
        return out


class PanopticQuality:
    """Accumulates TP, FP, FN and matched IoU per category over images (:meth:`update`)."""

    def __init__(self, categories: CategoryTable) -> None:
        self.categories = categories
        self._label_of = categories.label_of()
        count = len(categories)
        self.tp = np.zeros(count, np.int64)
        self.fp = np.zeros(count, np.int64)
        self.fn = np.zeros(count, np.int64)
        self.iou = np.zeros(count, np.float64)
        self.images = 0

    def update(
        self,
        gt_ids: np.ndarray,
        gt_segments: Sequence[Mapping[str, Any]],
        pred_ids: np.ndarray,
        pred_segments: Sequence[Mapping[str, Any]],
        where: str = "an image",
    ) -> None:
        """Score one image: (H, W) segment-id maps (0 = VOID) and their ``segments_info`` entries
        (``id``, ``category_id``, and ``iscrowd`` for the ground truth). ``where`` names the image
        in refusals."""
        if gt_ids.shape != pred_ids.shape:
            raise DataError(
                f"the prediction for {where} is {pred_ids.shape[1]}x{pred_ids.shape[0]} but its ground "
                f"truth is {gt_ids.shape[1]}x{gt_ids.shape[0]}."
            )
        gt_dense, gt_order = _dense_ids(gt_ids, gt_segments, f"the ground truth of {where}")
        pred_dense, pred_order = _dense_ids(pred_ids, pred_segments, f"the prediction for {where}")
        for segment in pred_order:
            if segment.get("category_id") not in self._label_of:
                raise DataError(
                    f"the prediction for {where}: segment {segment['id']} has category_id "
                    f"{segment.get('category_id')!r}, which is not a category of the ground truth."
                )
        n_gt, n_pred = len(gt_order), len(pred_order)
        # joint[g, p]: pixels of ground-truth segment g-1 and predicted segment p-1 (0: VOID).
        joint = np.bincount(
            (gt_dense * (n_pred + 1) + pred_dense).ravel(), minlength=(n_gt + 1) * (n_pred + 1)
        ).reshape(n_gt + 1, n_pred + 1)
        gt_area = joint[1:].sum(axis=1)
        pred_area = joint[:, 1:].sum(axis=0)
        pred_void = joint[0, 1:]
        gt_label = np.array([self._label_of[s["category_id"]] for s in gt_order], np.int64)
        pred_label = np.array([self._label_of[s["category_id"]] for s in pred_order], np.int64)
        crowd = np.array([bool(s.get("iscrowd", 0)) for s in gt_order], bool)

        overlap = joint[1:, 1:]
        union = pred_area[None, :] - pred_void[None, :] + gt_area[:, None] - overlap
        same = (gt_label[:, None] == pred_label[None, :]) & ~crowd[:, None]
        iou = np.where(same & (overlap > 0), overlap / np.maximum(union, 1), 0.0)
        matched = iou > MATCH_IOU
        gt_hit = matched.any(axis=1)
        pred_hit = matched.any(axis=0)
        rows, cols = np.nonzero(matched)
        np.add.at(self.tp, gt_label[rows], 1)
        np.add.at(self.iou, gt_label[rows], iou[rows, cols])
        np.add.at(self.fn, gt_label[~gt_hit & ~crowd], 1)
        # Unmatched predictions: VOID pixels plus crowd pixels of their own category.
        crowd_same = (crowd[:, None] & (gt_label[:, None] == pred_label[None, :])) * overlap
        ignored = pred_void + crowd_same.sum(axis=0)
        false_positive = ~pred_hit & (ignored <= IGNORED_FRACTION * pred_area)
        np.add.at(self.fp, pred_label[false_positive], 1)
        self.images += 1

    def result(self) -> PanopticResult:
        occurs = (self.tp + self.fp + self.fn) > 0
        denominator = self.tp + 0.5 * self.fp + 0.5 * self.fn
        per_class = []
        for k in range(len(self.categories)):
            pq = sq = rq = None
            if occurs[k]:
                pq = float(self.iou[k] / denominator[k])
                sq = float(self.iou[k] / self.tp[k]) if self.tp[k] else 0.0
                rq = float(self.tp[k] / denominator[k])
            per_class.append(
                ClassPQ(
                    self.categories.names[k],
                    self.categories.isthing[k],
                    int(self.tp[k]),
                    int(self.fp[k]),
                    int(self.fn[k]),
                    float(self.iou[k]),
                    pq,
                    sq,
                    rq,
                )
            )
        return PanopticResult(
            images=self.images,
            all=_mean(per_class),
            things=_mean([c for c in per_class if c.isthing]),
            stuff=_mean([c for c in per_class if not c.isthing]),
            per_class=per_class,
        )


def _mean(classes: Sequence[ClassPQ]) -> PQFigures:
    occurring = [c for c in classes if c.pq is not None]
    if not occurring:
        return PQFigures(None, None, None, 0)
    n = len(occurring)
    return PQFigures(
        sum(c.pq for c in occurring) / n,  # type: ignore[misc]
        sum(c.sq for c in occurring) / n,  # type: ignore[misc]
        sum(c.rq for c in occurring) / n,  # type: ignore[misc]
        n,
    )


def _dense_ids(
    ids: np.ndarray, segments: Sequence[Mapping[str, Any]], what: str
) -> tuple[np.ndarray, list[Mapping[str, Any]]]:
    """Segment ids -> 0 (VOID) or 1 + the segment's position in id order; refuses ids without a
    ``segments_info`` entry and entries without pixels, as panopticapi does for predictions."""
    order = sorted(segments, key=lambda segment: segment["id"])
    seg_ids = np.array([segment["id"] for segment in order], np.int64)
    if len(set(seg_ids.tolist())) != len(seg_ids):
        raise DataError(f"{what} lists a segment id more than once.")
    present, inverse = np.unique(np.asarray(ids, np.int64), return_inverse=True)
    labelled = present[present != VOID]
    unlisted = np.setdiff1d(labelled, seg_ids)
    if unlisted.size:
        raise DataError(
            f"{what} has segment id {int(unlisted[0])} in its PNG but not in its segments_info "
            f"({unlisted.size} such id(s)); every non-zero id needs an entry (0 is VOID)."
        )
    empty = np.setdiff1d(seg_ids, labelled)
    if empty.size:
        raise DataError(
            f"{what} lists segment {int(empty[0])} in its segments_info but has no pixel of it in its PNG."
        )
    lookup = np.searchsorted(seg_ids, present) + 1
    lookup[present == VOID] = 0
    return lookup[inverse.reshape(ids.shape)], order


# --------------------------------------------------------------------------------------------
# Files


def ground_truth_ids(
    ground_truth: CocoPanoptic, image_id: int
) -> tuple[np.ndarray, tuple[dict[str, Any], ...]]:
    """One image's ground-truth id map (read from its PNG, size checked) and segments."""
    image = ground_truth.image_of.get(image_id)
    if image is None:
        raise DataError(f"image id {image_id} is not in {ground_truth.annotation_file}.")
    annotation = ground_truth.annotations[image_id]
    return read_panoptic_png(annotation.png, (image.height, image.width)), annotation.segments


def evaluate_panoptic(
    ground_truth: CocoPanoptic,
    predictions: Iterable[tuple[int, np.ndarray, Sequence[Mapping[str, Any]]]],
) -> PanopticResult:
    """PQ of ``predictions``, ``(image_id, id map (H, W), segments_info)`` per image, over the
    images they cover (:mod:`.det_results` makes them from model outputs)."""
    meter = PanopticQuality(ground_truth.categories)
    seen: set[int] = set()
    for image_id, pred_ids, pred_segments in predictions:
        if image_id in seen:
            raise DataError(f"image {image_id} is predicted more than once.")
        seen.add(image_id)
        gt_ids, gt_segments = ground_truth_ids(ground_truth, image_id)
        meter.update(gt_ids, gt_segments, pred_ids, pred_segments, where=f"image {image_id}")
    if not seen:
        raise DataError("no panoptic prediction to score.")
    return meter.result()


def load_panoptic_predictions(
    ground_truth: CocoPanoptic,
    pred_json: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str] | None = None,
) -> dict[int, PanopticAnnotation]:
    """Predictions in COCO's panoptic format: a JSON with ``annotations`` (image_id, file_name,
    segments_info) and their PNGs in ``pred_dir`` (default: the JSON's path without ``.json``, as
    panopticapi). Every ground-truth image must be predicted."""
    file = Path(pred_json)
    data = read_json(file, "panoptic predictions file")
    if not isinstance(data, dict):
        raise DataError(f"{str(file)} must hold an object with an 'annotations' list.")
    folder = Path(pred_dir) if pred_dir is not None else file.with_suffix("")
    predictions = read_panoptic_annotations(
        data.get("annotations"), str(file), folder, ground_truth.categories
    )
    stray = sorted(set(predictions) - set(ground_truth.annotations))
    if stray:
        raise DataError(
            f"{str(file)} predicts image {stray[0]}, which is not in {ground_truth.annotation_file}."
        )
    missing = sorted(set(ground_truth.annotations) - set(predictions))
    if missing:
        raise DataError(
            f"{str(file)} has no prediction for image {missing[0]} ({len(missing)} image(s) missing)."
        )
    return predictions


def evaluate_panoptic_files(
    ground_truth: CocoPanoptic,
    pred_json: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str] | None = None,
) -> PanopticResult:
    """PQ of predictions in COCO's panoptic format (:func:`load_panoptic_predictions`)."""
    predictions = load_panoptic_predictions(ground_truth, pred_json, pred_dir)
    image_of = ground_truth.image_of
    return evaluate_panoptic(
        ground_truth,
        (
            (
                image_id,
                read_panoptic_png(ann.png, (image_of[image_id].height, image_of[image_id].width)),
                ann.segments,
            )
            for image_id, ann in predictions.items()
        ),
    )


# --------------------------------------------------------------------------------------------
# Output


def format_panoptic(result: PanopticResult, classwise: bool = False) -> str:
    """mmdet's panoptic table (All / Things / Stuff, percent), and per class when asked."""

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.3f}"

    rows = [["", "PQ", "SQ", "RQ", "categories"]]
    for name, figures in (("All", result.all), ("Things", result.things), ("Stuff", result.stuff)):
        rows.append([name, percent(figures.pq), percent(figures.sq), percent(figures.rq), str(figures.n)])
    text = "Panoptic Evaluation Results:\n" + _ascii_table(rows)
    if classwise:
        class_rows = [["category", "PQ", "SQ", "RQ", "TP", "FP", "FN"]]
        for c in result.per_class:
            if c.pq is not None:
                class_rows.append(
                    [c.name, percent(c.pq), percent(c.sq), percent(c.rq), str(c.tp), str(c.fp), str(c.fn)]
                )
        text += "\nPer-class results:\n" + _ascii_table(class_rows)
    return text


def _ascii_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [rule]
    for index, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
        if index == 0:
            lines.append(rule)
    lines.append(rule)
    return "\n".join(lines)


__all__ = [
    "ClassPQ",
    "PQFigures",
    "PanopticQuality",
    "PanopticResult",
    "evaluate_panoptic",
    "evaluate_panoptic_files",
    "format_panoptic",
    "ground_truth_ids",
    "load_panoptic_predictions",
]
