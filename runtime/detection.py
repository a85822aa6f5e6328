"""Detector pre- and post-processing on the host (numpy, torch-free): a picture -> the graph's two
inputs, and the graph's outputs -> detections and segments in the picture's own pixels.

Pre-processing, mmdet 2.x's test pipeline (``Resize(img_scale=(1333, 800), keep_ratio=True)``,
``Normalize``, ``Pad(size_divisor=32)``, ``ImageToTensor``):

1. RGB uint8 pixels, resized keeping the aspect ratio to the largest size with the long side <=
   1333 and the short side <= 800 (mmcv's ``rescale_size``: sides rounded half up); bilinear with
   half-pixel centres and no antialiasing, as mmcv's ``cv2.INTER_LINEAR`` (cv2 computes uint8 in
   fixed point, so pixels can differ from it by a unit);
2. normalised with the model's mean/std (0-255 units);
3. padded with zeros at the bottom and right to multiples of 32 (after normalising, as mmdet does);
   a batch is padded to its largest canvas (mmdet's collate). A graph exported without
   ``--dynamic-hw`` has one canvas: an image whose keep-ratio size does not fit on it (a portrait
   picture on the landscape 800 x 1344 canvas) is scaled down further until it does, which is NOT
   mmdet's size for that picture; export with ``--dynamic-hw`` for mmdet's sizes;
4. ``image_shapes`` = (resized height, resized width, original height, original width) per image.

The test scale is the manifest's ``detection.test_scale`` (1333 x 800 for the official models; an
export at another size uses its own long and short side).

Post-processing, per image (mmdet's ``simple_test(rescale=True)``): boxes clipped to the resized
image and divided by the resize scale per axis (original pixels, x1, y1, x2, y2); masks at the
original size: ``--det-masks canvas`` crops the canvas masks and resizes them bilinearly
(:func:`litevit.calibration.det_results.paste_masks`), ``--det-masks roi`` pastes the 28 x 28
probabilities into the original image as mmdet's ``_do_paste_mask`` (bilinear ``grid_sample``,
``align_corners=False``, zero padding) does, then ``>= 0.5``; Panoptic FPN's canvas segment map is
cropped and resized nearest-neighbour to the original size, its segments renumbered 1..n
(:func:`litevit.calibration.det_results.panoptic_to_coco`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from litevit.artifacts import DETECTION_TASKS
from litevit.calibration.coco import CategoryTable
from litevit.calibration.det_results import (
    ImageGeometry,
    MASK_THRESHOLD,
    panoptic_to_coco,
    paste_masks,
    rescale_boxes,
)
from litevit.errors import LitevitError
from litevit.runtime.bench import resize_bilinear

INPUT_NAME = "input"
IMAGE_SHAPES = "image_shapes"


def is_detector(manifest: Mapping[str, Any]) -> bool:
    return manifest.get("task") in DETECTION_TASKS


# --------------------------------------------------------------------------------------------
# Pre-processing


@dataclass(frozen=True)
class DetectionPreprocessing:
    """A detector artefact's test pipeline (module docstring)."""

    scale: tuple[int, int]  # (long side, short side) limits of the keep-ratio resize
    size_divisor: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pixel_scale: float
    canvas: tuple[int, int] | None  # the graph's fixed (H, W), or None when H and W are dynamic
    min_canvas: tuple[int, int]  # the smallest canvas the model takes

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> DetectionPreprocessing:
        if not is_detector(manifest):
            raise LitevitError(f"{manifest.get('model')} is a {manifest.get('task')} model, not a detector.")
        config = manifest["data_config"]
        scale = manifest["detection"]["test_scale"]
        axes = manifest.get("dynamic_axes", {}).get(INPUT_NAME, {})
        dynamic_hw = {"2", "3"} <= {str(axis) for axis in axes}
        hw_range = manifest.get("hw_range") or {}
        divisor = int(config["size_divisor"])
        return cls(
            scale=(int(max(scale)), int(min(scale))),
            size_divisor=divisor,
            mean=tuple(float(v) for v in config["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in config["std"]),  # type: ignore[arg-type]
            pixel_scale=float(config["pixel_scale"]),
            canvas=None if dynamic_hw else (int(manifest["img_size"][0]), int(manifest["img_size"][1])),
            min_canvas=tuple(hw_range.get("min") or (divisor, divisor)),  # type: ignore[arg-type]
        )

    def geometry(self, height: int, width: int) -> ImageGeometry:
        """Where an image of ``height`` x ``width`` goes on the canvas."""
        if height < 1 or width < 1:
            raise LitevitError(f"an image of {width}x{height} pixels cannot be detected in.")
        factor = min(self.scale[0] / max(height, width), self.scale[1] / min(height, width))
        if self.canvas is not None:
            factor = min(factor, self.canvas[0] / height, self.canvas[1] / width)
        resized_h = max(1, int(height * factor + 0.5))
        resized_w = max(1, int(width * factor + 0.5))
        if self.canvas is not None:
            # Rounding half up can pass the canvas by a pixel.
            resized_h, resized_w = min(resized_h, self.canvas[0]), min(resized_w, self.canvas[1])
            canvas_h, canvas_w = self.canvas
        else:
            canvas_h = max(self._padded(resized_h), self.min_canvas[0])
            canvas_w = max(self._padded(resized_w), self.min_canvas[1])
        return ImageGeometry(height, width, resized_h, resized_w, canvas_h, canvas_w)

    def _padded(self, side: int) -> int:
        return math.ceil(side / self.size_divisor) * self.size_divisor

    def image_shapes(self, geometry: ImageGeometry) -> np.ndarray:
        return np.asarray(
            [geometry.resized_height, geometry.resized_width, geometry.height, geometry.width], np.float32
        )

    def pixels(self, image: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (3, Hc, Wc) float32 canvas: resized, normalised, zero-padded."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise LitevitError(f"expected an (H, W, 3) RGB image; got an array of shape {image.shape}.")
        chw = image.transpose(2, 0, 1).astype(np.float32)
        resized = resize_bilinear(chw, (geometry.resized_height, geometry.resized_width))
        resized *= np.float32(self.pixel_scale / 255.0)
        resized -= np.asarray(self.mean, np.float32)[:, None, None]
        resized /= np.asarray(self.std, np.float32)[:, None, None]
        canvas = np.zeros((3, geometry.canvas_height, geometry.canvas_width), np.float32)
        canvas[:, : geometry.resized_height, : geometry.resized_width] = resized
        return canvas

    def batch(self, images: Sequence[np.ndarray]) -> tuple[dict[str, np.ndarray], list[ImageGeometry]]:
        """The graph's feeds for ``images`` (each (H, W, 3) uint8 RGB) and each image's geometry;
        a batch is padded to its largest canvas."""
        if not images:
            raise LitevitError("a detector batch needs at least one image.")
        geometries = [self.geometry(image.shape[0], image.shape[1]) for image in images]
        height = max(g.canvas_height for g in geometries)
        width = max(g.canvas_width for g in geometries)
        placed = [
            ImageGeometry(g.height, g.width, g.resized_height, g.resized_width, height, width)
            for g in geometries
        ]
        canvases = np.zeros((len(images), 3, height, width), np.float32)
        for i, (image, geometry) in enumerate(zip(images, placed)):
            canvases[i] = self.pixels(image, geometry)
        shapes = np.stack([self.image_shapes(geometry) for geometry in placed])
        return {INPUT_NAME: canvases, IMAGE_SHAPES: shapes}, placed


# --------------------------------------------------------------------------------------------
# Post-processing


@dataclass
class ImageDetections:
    """One image's results in its original pixels.

    ``boxes`` (n, 4) x1, y1, x2, y2; ``scores`` (n,); ``labels`` (n,) contiguous class indices;
    ``masks`` (n, H, W) bool or None (no masks asked for); Panoptic FPN: ``panoptic`` (H, W)
    int64 segment ids (0 = void) and ``segments`` [{"id", "label", "isthing", "area"}]."""

    geometry: ImageGeometry
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None
    panoptic: np.ndarray | None = None
    segments: list[dict[str, Any]] | None = None


def paste_roi_masks(probabilities: np.ndarray, boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """mmdet's ``_do_paste_mask`` on the host: (n, M, M) mask probabilities in their boxes (n, 4)
    (original pixels) -> (n, H, W) bool, ``>= 0.5``, as mmdet pastes on a GPU (the whole image:
    bilinear ``grid_sample``, ``align_corners=False``, zero padding). The sampling is separable,
    so each mask is two small matrix products over a window: the box widened by one mask cell and
    a pixel, outside which no sample reaches 0.5 (zero padding halves an edge cell's value half a
    cell out)."""
    out = np.zeros((len(probabilities), height, width), bool)
    for k, (mask, box) in enumerate(zip(probabilities, np.asarray(boxes, np.float64))):
        x0, y0, x1, y1 = (float(v) for v in box)
        top, bottom = _window(y0, y1, mask.shape[0], height)
        left, right = _window(x0, x1, mask.shape[1], width)
        if right <= left or bottom <= top:
            continue
        rows = _paste_weights(y0, y1, np.arange(top, bottom), mask.shape[0])
        cols = _paste_weights(x0, x1, np.arange(left, right), mask.shape[1])
        out[k, top:bottom, left:right] = rows @ mask.astype(np.float64) @ cols.T >= MASK_THRESHOLD
    return out


def _window(low: float, high: float, cells: int, length: int) -> tuple[int, int]:
    extent = high - low
    if extent == 0:
        return 0, length  # every pixel samples the map's centre (see _paste_weights)
    margin = abs(extent) / cells + 1
    start = max(int(math.floor(min(low, high) - margin)), 0)
    return start, min(int(math.ceil(max(low, high) + margin)), length)


def _paste_weights(low: float, high: float, pixels: np.ndarray, size: int) -> np.ndarray:
    """(len(pixels), size) bilinear weights sampling a ``size`` map spanning [low, high] at the
    pixel centres (``grid_sample``, ``align_corners=False``, zeros outside). mmdet divides by the
    box's extent and replaces the infinities of a zero-size box by 0: the map's centre."""
    extent = high - low
    normalised = (pixels + 0.5 - low) / extent * 2 - 1 if extent != 0 else np.zeros(len(pixels))
    coords = ((normalised + 1) * size - 1) / 2
    floor = np.floor(coords)
    frac = coords - floor
    cells = np.arange(size)
    return (cells == floor[:, None]) * (1 - frac)[:, None] + (cells == floor[:, None] + 1) * frac[:, None]


def model_categories(manifest: Mapping[str, Any], data: CategoryTable | None = None) -> CategoryTable:
    """The classes a detector artefact predicts, in its label order: its COCO label set's table;
    for a model trained on other data (label set ``custom``), ``data``'s categories when their
    number matches (a model trained on a COCO-format data set predicts its categories in
    contiguous order, things then stuff, as mmdet does), else "class N" entries with the
    things/stuff split of the model's configuration."""
    config = manifest["data_config"]
    label_set = config.get("label_set")
    if label_set in ("coco80", "coco_panoptic133"):
        return CategoryTable.from_label_set(label_set)
    count = int(config["num_classes"])
    if data is not None and len(data) == count:
        return data
    panoptic = ((manifest.get("arch") or {}).get("detector") or {}).get("panoptic")
    things = int(panoptic["num_things"]) if panoptic else count
    return CategoryTable(
        tuple(range(1, count + 1)),
        tuple(f"class {label}" for label in range(count)),
        tuple(label < things for label in range(count)),
    )


def postprocess(
    outputs: Mapping[str, np.ndarray],
    index: int,
    geometry: ImageGeometry,
    categories: CategoryTable,
    *,
    masks: bool = True,
) -> ImageDetections:
    """Image ``index`` of a batch's graph outputs -> :class:`ImageDetections` (module docstring).
    ``masks=False`` skips the instance masks (their paste is the slow part)."""
    count = int(outputs["num_detections"][index])
    boxes = rescale_boxes(geometry, outputs["boxes"][index, :count])
    result = ImageDetections(
        geometry,
        boxes,
        np.asarray(outputs["scores"][index, :count], np.float32),
        np.asarray(outputs["labels"][index, :count], np.int64),
    )
    if masks and "masks" in outputs:
        instance = outputs["masks"][index, :count]
        if instance.dtype == np.bool_:
            result.masks = paste_masks(geometry, instance)
        else:
            result.masks = paste_roi_masks(instance, boxes, geometry.height, geometry.width)
    if "panoptic" in outputs:
        labels = outputs["segment_labels"][index]
        areas = outputs["segment_areas"][index]
        segment_map = outputs["panoptic"][index]
        present = set(np.unique(segment_map).tolist())
        segments = [
            {"id": slot + 1, "label": int(labels[slot])}
            for slot in range(len(labels))
            if areas[slot] > 0 and slot + 1 in present
        ]
        ids, info = panoptic_to_coco(geometry, categories, segment_map, segments)
        label_of = categories.label_of()
        result.panoptic = ids
        result.segments = [{**entry, "label": label_of[entry["category_id"]]} for entry in info]
    return result


__all__ = [
    "DetectionPreprocessing",
    "ImageDetections",
    "is_detector",
    "model_categories",
    "paste_roi_masks",
    "postprocess",
]
