"""``litevit val`` for detectors: box and mask AP (COCO instances layout) and PQ (COCO panoptic
layout) on the user's data, per backend x precision.

Data layouts (``litevit.calibration.coco``): Mask R-CNN models are scored on
``DIR/annotations/instances_<split>.json`` with the images in ``DIR/images/`` (or ``DIR/<split>/``);
Panoptic FPN models on ``DIR/annotations/panoptic_<split>.json`` with its PNGs in
``DIR/annotations/panoptic_<split>/``. ``--split`` names the split when there are several.

Every image is decoded once (RGB), pre-processed as mmdet's test pipeline
(:mod:`litevit.runtime.detection`: keep-ratio resize, normalise, pad), run one image at a time on
every runner (images differ in size; a graph with a fixed batch gets zero rows, whose outputs are
dropped), post-processed to the original image size and scored as mmdet 2.x's COCO evaluation:

- **detection**: COCO results (boxes ``[x, y, w, h]`` in original pixels, masks as RLE) scored by
  pycocotools' COCOeval (:func:`litevit.calibration.coco_ap.evaluate_coco`) over the images run:
  box AP, AP50, AP75 and, with masks, mask AP, AP50, AP75 (percent);
- **panoptic**: PQ, SQ, RQ over all classes, things and stuff (COCO's rules,
  :class:`litevit.calibration.panoptic.PanopticQuality`), percent.

The model's classes are its COCO label set (``coco80``, ``coco_panoptic133``); a model trained on
other data (label set ``custom``) predicts the data's categories in contiguous order, things then
stuff (mmdet's convention; :func:`litevit.runtime.detection.model_categories`). Data whose
categories the model does not predict is refused; detections of categories the data lacks are
dropped before scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from litevit._progress import Progress
from litevit.calibration.coco import CocoInstances, CocoPanoptic, read_coco_instances, read_coco_panoptic
from litevit.calibration.coco_ap import evaluate_coco
from litevit.calibration.det_results import detections_to_coco, encode_masks
from litevit.calibration.images import describe_unreadable, unreadable_reason
from litevit.calibration.panoptic import PanopticQuality, ground_truth_ids
from litevit.calibration.val.common import ValResult, ValRow, paper_figure, run_padded
from litevit.errors import DataError
from litevit.runtime.detection import DetectionPreprocessing, model_categories, postprocess
from litevit.runtime.runners import open_runner

AP_NAMES = ("AP", "AP50", "AP75")
PQ_COLUMNS = ("PQ", "SQ", "RQ", "PQ_th", "PQ_st")


def detection_columns(task: str, has_masks: bool) -> list[str]:
    if task == "panoptic":
        return list(PQ_COLUMNS)
    kinds = ("box", "mask") if has_masks else ("box",)
    return [f"{kind} {name}" for kind in kinds for name in AP_NAMES]


def validate_detection(
    folder: Path,
    manifest: dict[str, Any],
    root: Path,
    keys: Sequence[tuple[str, str]],
    *,
    split: str | None,
    limit: int | None,
    threads: int | None,
    progress: bool,
) -> ValResult:
    """``litevit val`` on a detector artefact (module docstring); rows in ``keys`` order, each with
    its difference from the same backend's FP32 row in the main score (box AP or PQ)."""
    scores, images, unreadable, columns, notes = score_detection(
        folder, manifest, root, keys, split=split, limit=limit, threads=threads, progress=progress
    )
    paper, paper_note = paper_figure(manifest)
    result = ValResult(
        artifact=str(folder),
        model=manifest["model"],
        task=manifest["task"],
        data=str(root),
        metric=columns[0],
        columns=columns,
        batch=1,
        images=images,
        unreadable=[(path.relative_to(root).as_posix(), reason) for path, reason in unreadable],
        label_rule="COCO category ids; the model's classes in contiguous order (things, then stuff)",
        paper=paper,
        paper_note=paper_note,
        notes=notes,
    )
    for (backend, precision), row in zip(keys, scores):
        result.rows.append(ValRow(backend, precision, images, row))
    result.add_deltas()
    if unreadable:
        result.notes.append(f"excluded {describe_unreadable(unreadable, root, limit=10)}")
    return result


def score_detection(
    folder: Path,
    manifest: dict[str, Any],
    root: Path,
    keys: Sequence[tuple[str, str]],
    *,
    split: str | None,
    limit: int | None,
    threads: int | None,
    progress: bool,
) -> tuple[list[dict[str, float]], int, list[tuple[Path, str]], list[str], list[str]]:
    """Scores per (backend, precision) in ``keys`` order, images scored, unreadable images,
    column names and notes."""
    from PIL import Image

    panoptic = manifest["task"] == "panoptic"
    data: CocoInstances | CocoPanoptic = (
        read_coco_panoptic(root, split) if panoptic else read_coco_instances(root, split)
    )
    table = model_categories(manifest, data.categories)
    data.categories.check_predicted_by(table, str(data.annotation_file), manifest["model"])
    prep = DetectionPreprocessing.from_manifest(manifest)
    has_masks = any(output["name"] == "masks" for output in manifest["outputs"])
    images = list(data.images)
    if limit is not None and limit < len(images):
        images = [images[(i * len(images)) // limit] for i in range(limit)]

    runners = {}
    try:
        for backend, precision in keys:
            runners[backend, precision] = open_runner(folder, backend, precision=precision, threads=threads)
        records: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in keys}
        meters = {key: PanopticQuality(data.categories) for key in keys} if panoptic else {}
        known = set(data.categories.ids)
        unreadable: list[tuple[Path, str]] = []
        scored: list[int] = []
        bar = Progress(progress, len(images), f"val {manifest['model']}", unit="images")
        for image in images:
            try:
                with Image.open(image.path) as picture:
                    pixels = np.asarray(picture.convert("RGB"))
            except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three for bad files
                unreadable.append((image.path, unreadable_reason(exc)))
                bar.update(1)
                continue
            if pixels.shape[:2] != (image.height, image.width):
                raise DataError(
                    f"{image.path}: the picture is {pixels.shape[1]}x{pixels.shape[0]} but "
                    f"{data.annotation_file.name} says {image.width}x{image.height}."
                )
            feeds, (geometry,) = prep.batch([pixels])
            scored.append(image.id)
            for key, runner in runners.items():
                outputs = run_padded(runner, feeds)
                result = postprocess(outputs, 0, geometry, table, masks=has_masks and not panoptic)
                if panoptic:
                    assert isinstance(data, CocoPanoptic) and result.panoptic is not None
                    meters[key].update(
                        *ground_truth_ids(data, image.id),
                        result.panoptic,
                        result.segments or [],
                        where=f"image {image.id}",
                    )
                    continue
                found = detections_to_coco(
                    image.id,
                    geometry,
                    table,
                    outputs["boxes"][0],
                    outputs["scores"][0],
                    outputs["labels"][0],
                    int(outputs["num_detections"][0]),
                )
                if result.masks is not None:
                    for record, rle in zip(found, encode_masks(result.masks)):
                        record["segmentation"] = rle
                records[key].extend(record for record in found if record["category_id"] in known)
            bar.update(1)
        bar.close()
    finally:
        for runner in runners.values():
            runner.close()
    if not scored:
        raise DataError(f"no readable image in {str(root)!r}: {describe_unreadable(unreadable, root)}.")

    columns = detection_columns(manifest["task"], has_masks)
    notes = [f"scored at each image's original size; test scale {prep.scale[0]}x{prep.scale[1]} (keep ratio)"]
    if len(images) < len(data.images):
        notes.append(
            f"--limit {limit}: {len(images)} of {len(data.images)} images, spread evenly over the file"
        )
    if prep.canvas is not None:
        notes.append(
            f"the graph's canvas is fixed at {prep.canvas[0]}x{prep.canvas[1]}: images whose keep-ratio size "
            f"does not fit were scaled down further (export with --dynamic-hw for mmdet's sizes)"
        )
    scores = []
    for key in keys:
        if panoptic:
            figures = meters[key].result().scores()
            scores.append({name: 100.0 * (figures[name] or 0.0) for name in PQ_COLUMNS})
            continue
        assert isinstance(data, CocoInstances)
        evaluation = evaluate_coco(
            data,
            records[key],
            iou_types=("bbox", "segm") if has_masks else ("bbox",),
            image_ids=scored,
            source=f"{key[0]} {key[1]} detections",
        )
        row = {}
        for kind, iou_type in (("box", "bbox"), ("mask", "segm")):
            if iou_type in evaluation.results:
                for name in AP_NAMES:
                    value = evaluation.results[iou_type].scores[name]
                    row[f"{kind} {name}"] = 100.0 * (value or 0.0)
        scores.append(row)
    return scores, len(scored), unreadable, columns, notes
