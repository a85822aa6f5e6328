"""Detector outputs -> COCO results (box/mask AP) and COCO panoptic predictions (PQ), torch-free.

The contract with a detector's runtime post-processing, per image (batch axis already sliced):

``detections_to_coco(image_id, geometry, categories, boxes, scores, labels, count, masks=None)``

=========  ===============================  =====================================================
boxes      float  [K, 4]                    x1, y1, x2, y2 in network-input (canvas) pixels
scores     float  [K]                       detection scores
labels     int    [K]                       contiguous labels 0..C-1 (``categories`` order)
count      int                              rows ``0..count-1`` are detections; the rest (up to
                                            the graph's static K) is padding and is ignored
masks      float or bool [K, Hc, Wc]        optional: each detection's mask on the whole canvas,
                                            probabilities in [0, 1] or binary
=========  ===============================  =====================================================

``panoptic_to_coco(geometry, categories, segment_map, segments)``

=============  =========================  ===================================================
segment_map    int [Hc, Wc]               segment id per canvas pixel, 0 = VOID (unlabelled)
segments       sequence of mappings       one per non-zero id of the map: ``{"id": int,
                                          "label": int (contiguous)}``; an ``"isthing"`` entry,
                                          if present, must agree with the category
=============  =========================  ===================================================

:class:`ImageGeometry` says where the image sits on the canvas: resized from ``height x width`` to
``resized_height x resized_width`` and placed at (``top``, ``left``) of the ``canvas_height x
canvas_width`` network input (mmdet pads at the bottom and right: top = left = 0).
:meth:`ImageGeometry.keep_ratio` is mmdet's test-time resize (``Resize(img_scale=(1333, 800),
keep_ratio=True)`` + ``Pad(size_divisor=32)``).

What comes out follows mmdet 2.x's COCO evaluation: boxes clipped to the image, divided by the
resize scale per axis and written ``[x, y, x2 - x, y2 - y]`` in original-image pixels; masks
cropped to the image's part of the canvas, resized bilinearly (half-pixel centres) to the
original size and kept where ``>= 0.5`` (mmdet's ``mask_thr_binary``), then RLE-encoded
with pycocotools (the mask record's score is the box's, as in mmdet). Panoptic maps are cropped
and resized nearest-neighbour; segments renumbered 1..n in id order, and ones the resize leaves
without pixels dropped. mmdet pastes masks into the original image directly from the 28 x 28
RoI masks (and fuses panoptic results at the original size): a canvas output resized here can
differ from that at segment edges.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litevit._deps import require
from litevit._io import ensure_writable_dir, write_bytes, write_json
from litevit.calibration.coco import VOID, CategoryTable, panoptic_png
from litevit.runtime.bench import _linear_taps, resize_nearest

MASK_THRESHOLD = 0.5  # mmdet's mask_thr_binary
MMDET_INSTANCE_OFFSET = 1000  # mmdet 2.x's INSTANCE_OFFSET in panoptic results


@dataclass(frozen=True)
class ImageGeometry:
    """Where an image sits on the network's input canvas (all sizes in pixels)."""

    height: int
    width: int
    resized_height: int
    resized_width: int
    canvas_height: int
    canvas_width: int
    top: int = 0
    left: int = 0

    def __post_init__(self) -> None:
        if min(self.height, self.width, self.resized_height, self.resized_width) <= 0:
            raise ValueError(f"image sizes must be positive: {self}")
        if (
            self.top < 0
            or self.left < 0
            or self.top + self.resized_height > self.canvas_height
            or self.left + self.resized_width > self.canvas_width
        ):
            raise ValueError(f"the resized image does not fit on the canvas: {self}")

    @classmethod
    def keep_ratio(
        cls, height: int, width: int, scale: tuple[int, int] = (1333, 800), size_divisor: int = 32
    ) -> ImageGeometry:
        """mmdet's test-time geometry: the largest resize with the long side <= max(scale) and the
        short side <= min(scale), sizes rounded half up (mmcv's ``rescale_size``), then padding at
        the bottom and right to a multiple of ``size_divisor``."""
        factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
        resized_width, resized_height = int(width * factor + 0.5), int(height * factor + 0.5)
        return cls(
            height,
            width,
            resized_height,
            resized_width,
            math.ceil(resized_height / size_divisor) * size_divisor,
            math.ceil(resized_width / size_divisor) * size_divisor,
        )

    @property
    def scale_factor(self) -> tuple[float, float]:
        """(width scale, height scale): mmdet's ``scale_factor`` per axis."""
        return self.resized_width / self.width, self.resized_height / self.height

    def crop(self, canvas: np.ndarray) -> np.ndarray:
        """The image's part of (..., Hc, Wc) canvas arrays."""
        if canvas.shape[-2:] != (self.canvas_height, self.canvas_width):
            raise ValueError(
                f"expected arrays on the {self.canvas_height}x{self.canvas_width} canvas (height x width); "
                f"got {canvas.shape[-2]}x{canvas.shape[-1]}"
            )
        return canvas[
            ..., self.top : self.top + self.resized_height, self.left : self.left + self.resized_width
        ]


# --------------------------------------------------------------------------------------------
# Detection and instance segmentation


def detections_to_coco(
    image_id: int,
    geometry: ImageGeometry,
    categories: CategoryTable,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    count: int,
    masks: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """One image's detections as COCO result records (module docstring: contract and rules),
    with ``segmentation`` when ``masks`` are given."""
    count = int(count)
    if not 0 <= count <= len(boxes) or not len(boxes) == len(scores) == len(labels):
        raise ValueError(
            f"boxes, scores and labels must have one row per detection slot and 0 <= count <= K; got "
            f"{len(boxes)}, {len(scores)}, {len(labels)} rows and count {count}"
        )
    labels = np.asarray(labels[:count]).astype(np.int64)
    if count and (labels.min() < 0 or labels.max() >= len(categories)):
        raise ValueError(
            f"labels must lie in 0..{len(categories) - 1}; got {int(labels.min())}..{int(labels.max())}"
        )
    xyxy = rescale_boxes(geometry, boxes[:count])
    records = [
        {
            "image_id": image_id,
            "category_id": categories.ids[label],
            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
            "score": float(score),
        }
        for (x1, y1, x2, y2), score, label in zip(xyxy, np.asarray(scores[:count]), labels.tolist())
    ]
    if masks is not None:
        if len(masks) != len(boxes):
            raise ValueError(f"masks must have one row per detection slot ({len(boxes)}); got {len(masks)}")
        for record, rle in zip(records, encode_masks(paste_masks(geometry, masks[:count]))):
            record["segmentation"] = rle
    return records


def rescale_boxes(geometry: ImageGeometry, boxes: np.ndarray) -> np.ndarray:
    """(n, 4) x1, y1, x2, y2 canvas boxes -> float64 boxes in original-image pixels: clipped to the
    resized image, divided by the resize scale per axis (mmdet's ``rescale=True``)."""
    w_scale, h_scale = geometry.scale_factor
    xyxy = np.asarray(boxes, np.float64).reshape(-1, 4) - [geometry.left, geometry.top] * 2
    xyxy = np.clip(xyxy, 0, [geometry.resized_width, geometry.resized_height] * 2)
    return xyxy / [w_scale, h_scale, w_scale, h_scale]


def paste_masks(geometry: ImageGeometry, masks: np.ndarray) -> np.ndarray:
    """(K, Hc, Wc) canvas masks (probabilities or binary) -> (K, H, W) bool at the original size:
    crop, bilinear resize (half-pixel centres), ``>= 0.5``."""
    cropped = geometry.crop(np.asarray(masks))
    out = np.zeros((len(cropped), geometry.height, geometry.width), bool)
    row_low, row_high, row_frac = _linear_taps(geometry.resized_height, geometry.height)
    col_low, col_high, col_frac = _linear_taps(geometry.resized_width, geometry.width)
    for k, mask in enumerate(cropped):
        source = mask.astype(np.float32, copy=False)
        # A bilinear value is a convex mix of its four taps: it reaches the threshold only where
        # some tap does, so only output pixels with a tap on such a source pixel are computed.
        rows = np.flatnonzero((source >= MASK_THRESHOLD).any(axis=1))
        cols = np.flatnonzero((source >= MASK_THRESHOLD).any(axis=0))
        if not rows.size:
            continue
        y0, y1 = np.searchsorted(row_high, rows[0], "left"), np.searchsorted(row_low, rows[-1], "right")
        x0, x1 = np.searchsorted(col_high, cols[0], "left"), np.searchsorted(col_low, cols[-1], "right")
        fy, fx = row_frac[y0:y1, None], col_frac[x0:x1]
        band = source[row_low[y0:y1]] * (1 - fy) + source[row_high[y0:y1]] * fy
        window = band[:, col_low[x0:x1]] * (1 - fx) + band[:, col_high[x0:x1]] * fx
        out[k, y0:y1, x0:x1] = window >= MASK_THRESHOLD
    return out


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """(K, H, W) bool -> compressed RLEs (pycocotools), ``counts`` as str for JSON."""
    require("pycocotools")
    from pycocotools import mask as mask_utils

    if not len(masks):
        return []
    rles = mask_utils.encode(np.asfortranarray(np.moveaxis(masks.astype(np.uint8), 0, -1)))
    for rle in rles:
        rle["counts"] = str(rle["counts"], "ascii")  # bytes -> str, for JSON
    return rles


# --------------------------------------------------------------------------------------------
# Panoptic segmentation


def panoptic_to_coco(
    geometry: ImageGeometry,
    categories: CategoryTable,
    segment_map: np.ndarray,
    segments: Sequence[Mapping[str, Any]],
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A canvas segment map and its segments -> the (H, W) id map at the original size and its
    COCO ``segments_info`` (``id``, ``category_id``, ``isthing``, ``area``); module docstring."""
    resized = resize_nearest(geometry.crop(np.asarray(segment_map)), (geometry.height, geometry.width))
    order = sorted(segments, key=lambda segment: int(segment["id"]))
    given = np.array([int(segment["id"]) for segment in order], np.int64)
    if len(set(given.tolist())) != len(given) or (given == VOID).any():
        raise ValueError("segment ids must be unique and non-zero (0 is VOID)")
    present, inverse, areas = np.unique(resized, return_inverse=True, return_counts=True)
    unlisted = np.setdiff1d(present[present != VOID], given)
    if unlisted.size:
        raise ValueError(f"segment id {int(unlisted[0])} is in the map but has no entry in segments")
    area_of = dict(zip(present.tolist(), areas.tolist()))
    kept = [segment for segment in order if int(segment["id"]) in area_of]
    new_id = {int(segment["id"]): index + 1 for index, segment in enumerate(kept)}
    lookup = np.array([new_id.get(value, VOID) for value in present.tolist()], np.int64)
    info = []
    for segment in kept:
        label = int(segment["label"])
        if not 0 <= label < len(categories):
            raise ValueError(
                f"segment {segment['id']} has label {label}; labels lie in 0..{len(categories) - 1}"
            )
        isthing = categories.isthing[label]
        if "isthing" in segment and bool(segment["isthing"]) != isthing:
            raise ValueError(
                f"segment {segment['id']} says isthing={segment['isthing']} but {categories.names[label]!r} "
                f"is {'a thing' if isthing else 'stuff'}"
            )
        info.append(
            {
                "id": new_id[int(segment["id"])],
                "category_id": categories.ids[label],
                "isthing": int(isthing),
                "area": int(area_of[int(segment["id"])]),
            }
        )
    return lookup[inverse.reshape(resized.shape)], info


def segments_from_mmdet(
    panoptic: np.ndarray, num_classes: int, instance_offset: int = MMDET_INSTANCE_OFFSET
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """mmdet 2.x's panoptic result (per pixel ``label + instance * instance_offset``, VOID where
    ``label == num_classes``) -> a segment map and segments for :func:`panoptic_to_coco`."""
    values = np.asarray(panoptic, np.int64)
    void = values % instance_offset == num_classes
    segment_map = np.where(void, VOID, values + 1)  # + 1: label 0 without an instance is not VOID
    segments = [
        {"id": int(value) + 1, "label": int(value) % instance_offset}
        for value in np.unique(values[~void]).tolist()
    ]
    return segment_map, segments


def write_panoptic_predictions(
    json_path: str | os.PathLike[str],
    predictions: Iterable[tuple[int, str, np.ndarray, Sequence[Mapping[str, Any]]]],
) -> Path:
    """Write ``(image_id, png_name, id map, segments_info)`` per image in COCO's panoptic format:
    ``json_path`` with its PNGs in the folder of the same name without ``.json`` (panopticapi's
    default). Returns the PNG folder."""
    json_file = Path(json_path)
    png_dir = ensure_writable_dir(json_file.with_suffix(""))
    annotations = []
    for image_id, png_name, ids, segments_info in predictions:
        write_bytes(png_dir / png_name, panoptic_png(ids))
        annotations.append(
            {"image_id": image_id, "file_name": png_name, "segments_info": list(segments_info)}
        )
    write_json(json_file, {"annotations": annotations})
    return png_dir


__all__ = [
    "MASK_THRESHOLD",
    "ImageGeometry",
    "detections_to_coco",
    "encode_masks",
    "panoptic_to_coco",
    "paste_masks",
    "rescale_boxes",
    "segments_from_mmdet",
    "write_panoptic_predictions",
]
