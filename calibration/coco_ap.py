"""COCO box and mask AP with pycocotools, the way mmdet 2.x's COCO evaluation runs it.

Ground truth: a checked COCO instances file (:func:`litevit.calibration.coco.load_instances_json`
or :func:`~litevit.calibration.coco.read_coco_instances`). Predictions: COCO's results format, one
record per detection, ``{"image_id", "category_id", "score", "bbox": [x, y, w, h],
"segmentation": RLE}`` in original-image pixels, RLE compressed as ``pycocotools.mask.encode``
gives it (``counts`` a string). :mod:`.det_results` makes these from model outputs.

What mmdet 2.x does and this does too: ``COCOeval`` over every category and every scored image,
``maxDets = [100, 300, 1000]`` (so AP is read at 100 detections and AP50 ... APl at 1000, which
is the same for models that keep at most 100 per image), and for mask AP the records' ``bbox`` is
dropped so that small/medium/large are decided by the mask's area (mmdet >= 2.12). Scores are
pycocotools' fractions in [0, 1]; ``None`` where pycocotools gives -1 (no ground truth in that
area range). Per-class AP is mmdet's ``classwise`` figure (IoU 0.50:0.95, all areas).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from litevit._deps import require
from litevit.calibration.coco import CocoInstances, _is_box, _is_int, _is_number, read_json
from litevit.errors import DataError

IOU_TYPES = ("bbox", "segm")
# COCOeval.stats order; the first six are the AP figures mmdet prints as {type}_mAP, _50, ...
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR@100", "AR@300", "AR@1000", "ARs", "ARm", "ARl")
AP_NAMES = STAT_NAMES[:6]
_MMDET_SUFFIX = {
    "AP": "mAP",
    "AP50": "mAP_50",
    "AP75": "mAP_75",
    "APs": "mAP_s",
    "APm": "mAP_m",
    "APl": "mAP_l",
}
MAX_DETS = [100, 300, 1000]  # mmdet 2.x's proposal_nums, which it passes as COCOeval's maxDets


@dataclass
class CocoScores:
    """One IoU type's figures: ``scores`` (AP, AP50, AP75, APs, APm, APl), ``stats`` (all twelve of
    COCOeval, -1 kept), per-class AP in contiguous-label order (None: the class has no ground truth),
    and pycocotools' printed summary."""

    iou_type: str
    scores: dict[str, float | None]
    stats: list[float]
    per_class: list[float | None]
    summary: str


@dataclass
class CocoEvaluation:
    images: int
    detections: int
    results: dict[str, CocoScores] = field(default_factory=dict)


def load_results_json(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A COCO results file (a JSON list of detection records)."""
    data = read_json(path, "results file")
    if not isinstance(data, list):
        raise DataError(f"the results file {str(path)!r} must hold a list of detection records.")
    return data


def evaluate_coco(
    ground_truth: CocoInstances,
    results: Sequence[dict[str, Any]],
    *,
    iou_types: Sequence[str] = IOU_TYPES,
    image_ids: Sequence[int] | None = None,
    source: str = "the predictions",
) -> CocoEvaluation:
    """Box (``bbox``) and/or mask (``segm``) AP of ``results`` against ``ground_truth`` over
    ``image_ids`` (default: every image of the ground truth; give the ones actually run when some
    were excluded). ``source`` names the predictions in refusals."""
    require("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    for iou_type in iou_types:
        if iou_type not in IOU_TYPES:
            raise DataError(f"unknown IoU type {iou_type!r}; choose from {', '.join(IOU_TYPES)}.")
    dataset = ground_truth.dataset
    size_of = {image.id: (image.height, image.width) for image in ground_truth.images}
    scored = list(size_of) if image_ids is None else list(image_ids)
    unknown = [image_id for image_id in scored if image_id not in size_of]
    if unknown:
        raise DataError(f"image id {unknown[0]} is not in {ground_truth.annotation_file}.")
    if "segm" in iou_types:
        bare = next((ann for ann in dataset["annotations"] if "segmentation" not in ann), None)
        if bare is not None:
            raise DataError(
                f"{ground_truth.annotation_file}: annotation {bare['id']} has no 'segmentation'; mask AP "
                f"needs one for every annotation (score boxes only with iou_types=('bbox',))."
            )
    check_results(results, size_of, set(ground_truth.categories.ids), iou_types, source)

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt = COCO()
        # Copies of the annotations: COCOeval replaces their segmentation with RLE in place.
        coco_gt.dataset = {**dataset, "annotations": [dict(ann) for ann in dataset["annotations"]]}
        coco_gt.createIndex()
    evaluation = CocoEvaluation(images=len(scored), detections=len(results))
    for iou_type in iou_types:
        records = [dict(record) for record in results]
        if iou_type == "segm":
            for record in records:  # mask area decides small/medium/large (mmdet >= 2.12)
                record.pop("bbox", None)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            coco_dt = coco_gt.loadRes(records) if records else _empty_results(coco_gt)
            coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
            coco_eval.params.catIds = list(ground_truth.categories.ids)
            coco_eval.params.imgIds = scored
            coco_eval.params.maxDets = list(MAX_DETS)
            coco_eval.evaluate()
            coco_eval.accumulate()
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            coco_eval.summarize()
        stats = [float(value) for value in coco_eval.stats]
        evaluation.results[iou_type] = CocoScores(
            iou_type=iou_type,
            scores={name: None if value < 0 else value for name, value in zip(AP_NAMES, stats)},
            stats=stats,
            per_class=_per_class(coco_eval.eval["precision"]),
            summary=summary.getvalue().rstrip("\n"),
        )
    return evaluation


def check_results(
    results: Sequence[Any],
    size_of: dict[int, tuple[int, int]],
    category_ids: set[int],
    iou_types: Sequence[str],
    source: str,
) -> None:
    """One sentence for the first detection record that cannot be scored."""
    if not isinstance(results, (list, tuple)):
        raise DataError(f"{source} must be a list of detection records.")
    for index, record in enumerate(results):
        where = f"{source}: record {index}"
        if not isinstance(record, dict):
            raise DataError(f"{where} is not an object.")
        image_id = record.get("image_id")
        if not _is_int(image_id) or image_id not in size_of:
            raise DataError(f"{where} has image_id {image_id!r}, which is not an image of the ground truth.")
        if record.get("category_id") not in category_ids:
            raise DataError(
                f"{where} has category_id {record.get('category_id')!r}, which is not a category of the "
                f"ground truth (COCO category ids, not contiguous labels)."
            )
        if not _is_number(record.get("score")):
            raise DataError(f"{where} has no numeric 'score'.")
        if "bbox" in iou_types and not _is_box(list(record.get("bbox") or ())):
            raise DataError(
                f"{where} has no valid 'bbox' ([x, y, width, height] in original-image pixels); box AP "
                f"needs one."
            )
        if "segm" in iou_types:
            rle = record.get("segmentation")
            if not isinstance(rle, dict) or not isinstance(rle.get("counts"), (str, bytes)):
                raise DataError(
                    f"{where} has no compressed RLE 'segmentation' ({{size, counts}} with string counts, "
                    f"as pycocotools.mask.encode gives); mask AP needs one."
                )
            if list(rle.get("size", ())) != list(size_of[image_id]):
                raise DataError(
                    f"{where} has an RLE of size {rle.get('size')!r} but image {image_id} is [height, width] "
                    f"= {list(size_of[image_id])}."
                )


def _empty_results(coco_gt: Any) -> Any:
    """No detections at all: pycocotools' loadRes cannot take an empty list (mmdet stops there);
    an empty result set scores 0 wherever there is ground truth."""
    from pycocotools.coco import COCO

    empty = COCO()
    empty.dataset = {"images": list(coco_gt.dataset["images"]), "categories": [], "annotations": []}
    empty.createIndex()
    return empty


def _per_class(precision: np.ndarray) -> list[float | None]:
    """mmdet's classwise AP: precision (T, R, K, A, M) at all areas and the last maxDets."""
    out: list[float | None] = []
    for k in range(precision.shape[2]):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        out.append(float(values.mean()) if values.size else None)
    return out


def format_coco_evaluation(evaluation: CocoEvaluation) -> str:
    """pycocotools' summary per IoU type and the figures as mmdet's test tool prints them."""
    lines = []
    for iou_type, result in evaluation.results.items():
        lines.append(f"Evaluating {iou_type}...")
        lines.append(result.summary)
        figures = [
            f"{iou_type}_{_MMDET_SUFFIX[name]}: {result.stats[i]:.3f}" for i, name in enumerate(AP_NAMES)
        ]
        lines.append(", ".join(figures))
        lines.append(f"{iou_type}_mAP_copypaste: " + " ".join(f"{value:.3f}" for value in result.stats[:6]))
    return "\n".join(lines)


__all__ = [
    "AP_NAMES",
    "IOU_TYPES",
    "CocoEvaluation",
    "CocoScores",
    "check_results",
    "evaluate_coco",
    "format_coco_evaluation",
    "load_results_json",
]
