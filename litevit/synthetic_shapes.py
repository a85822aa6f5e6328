"""Synthetic shapes: a tiny labelled data set for detectors, in COCO's instances and panoptic layouts.

Each image shows a few filled shapes (the thing classes circle, square, triangle, each in its own
colour) on two or three horizontal bands of textured "stuff" (sky, grass, wall). Shapes never
overlap and lie wholly inside the image, so every shape's mask is the shape; every pixel belongs
to one segment (no VOID). Deterministic by seed: image ``i`` depends only on ``(seed, i)`` and the
size, not on how many images are written. numpy and Pillow only.

Category ids interleave things and stuff and skip numbers, like COCO's, so that code mapping ids
to contiguous labels (things by id, then stuff by id) is exercised: circle 1, sky 2, square 3,
grass 4, wall 5, triangle 6 -> labels circle 0, square 1, triangle 2, sky 3, grass 4, wall 5.

For tests and the trained detector fixture; never a stand-in for the user's data.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litevit._io import ensure_writable_dir, write_bytes, write_json
from litevit.calibration.coco import ANNOTATIONS, IMAGES, MAX_SEGMENT_ID, mask_box, mask_to_rle, panoptic_png

CATEGORIES: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "circle", "isthing": 1, "color": [220, 40, 40]},
    {"id": 2, "name": "sky", "isthing": 0, "color": [120, 175, 235]},
    {"id": 3, "name": "square", "isthing": 1, "color": [40, 70, 210]},
    {"id": 4, "name": "grass", "isthing": 0, "color": [70, 150, 60]},
    {"id": 5, "name": "wall", "isthing": 0, "color": [150, 125, 105]},
    {"id": 6, "name": "triangle", "isthing": 1, "color": [240, 205, 30]},
)
THINGS = tuple(c for c in CATEGORIES if c["isthing"])
STUFF = tuple(c for c in CATEGORIES if not c["isthing"])
MAX_SHAPES = 4


@dataclass
class ShapesScene:
    """One image and its segments: every pixel in exactly one mask; things first (in drawing
    order), then the stuff bands."""

    image: np.ndarray  # (H, W, 3) uint8
    masks: list[np.ndarray]  # (H, W) bool each
    category_ids: list[int]
    isthing: list[bool]


@dataclass(frozen=True)
class ShapesDataset:
    """Where :func:`write_shapes_dataset` put things."""

    root: Path
    image_dir: Path
    instances_json: Path
    panoptic_json: Path
    panoptic_dir: Path
    count: int


def shapes_scene(index: int, seed: int = 0, size: tuple[int, int] = (96, 96)) -> ShapesScene:
    """Image ``index`` of the data set with ``seed``, ``size`` = (height, width)."""
    height, width = size
    if min(height, width) < 32:
        raise ValueError(f"shapes images are at least 32x32 pixels; got {height}x{width}")
    rng = np.random.default_rng([seed, index])
    yy, xx = np.mgrid[0:height, 0:width]

    # Stuff: two or three bands of distinct classes, top to bottom, each at least a fifth high.
    bands = rng.permutation(len(STUFF))[: rng.integers(2, 4)]
    lowest = height // 5
    heights = lowest + rng.multinomial(height - len(bands) * lowest, [1 / len(bands)] * len(bands))
    edges = [0, *np.cumsum(heights).tolist()]
    image = np.zeros((height, width, 3), np.float32)
    stuff_masks, stuff_ids = [], []
    for band, (top, bottom) in zip(bands, zip(edges[:-1], edges[1:])):
        category = STUFF[band]
        mask = (yy >= top) & (yy < bottom)
        image[mask] = _texture(category["name"], category["color"], rng, yy, xx)[mask]
        stuff_masks.append(mask)
        stuff_ids.append(category["id"])

    # Things: up to MAX_SHAPES shapes, a gap of at least 2 pixels between their boxes.
    thing_masks, thing_ids, taken = [], [], np.zeros((height, width), bool)
    for _ in range(rng.integers(1, MAX_SHAPES + 1)):
        for _attempt in range(20):
            category = THINGS[rng.integers(len(THINGS))]
            half = int(rng.integers(max(4, min(height, width) // 12), min(height, width) // 5 + 1))
            cy = int(rng.integers(half + 1, height - half - 1))
            cx = int(rng.integers(half + 1, width - half - 1))
            if taken[max(cy - half - 2, 0) : cy + half + 3, max(cx - half - 2, 0) : cx + half + 3].any():
                continue
            mask = _shape(category["name"], cy, cx, half, yy, xx)
            taken[cy - half : cy + half + 1, cx - half : cx + half + 1] = True
            shade = np.asarray(category["color"], np.float32) + rng.uniform(-20, 20, 3)
            light = 1 + 0.08 * ((yy - cy) / half)[..., None]  # lit from above
            image[mask] = np.clip(shade * light, 0, 255)[mask]
            thing_masks.append(mask)
            thing_ids.append(category["id"])
            break
    for mask in thing_masks:
        for stuff_mask in stuff_masks:
            stuff_mask &= ~mask
    keep = [k for k, mask in enumerate(stuff_masks) if mask.any()]
    pixels = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).round().astype(np.uint8)
    return ShapesScene(
        image=pixels,
        masks=thing_masks + [stuff_masks[k] for k in keep],
        category_ids=thing_ids + [stuff_ids[k] for k in keep],
        isthing=[True] * len(thing_masks) + [False] * len(keep),
    )


def _shape(name: str, cy: int, cx: int, half: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    if name == "circle":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= half * half
    if name == "square":
        return (np.abs(yy - cy) <= half) & (np.abs(xx - cx) <= half)
    # Triangle, apex up: rows cy-half..cy+half, half-width growing from 0 to half.
    rows = yy - (cy - half)
    return (rows >= 0) & (rows <= 2 * half) & (np.abs(xx - cx) * 2 <= rows)


def _texture(
    name: str, color: Sequence[int], rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """(H, W, 3) float picture of one stuff class over the whole image."""
    base = np.asarray(color, np.float32) + rng.uniform(-15, 15, 3)
    height = yy.shape[0]
    if name == "sky":  # brighter towards the horizon
        return base * (0.85 + 0.3 * yy / height)[..., None] * np.ones(3)
    if name == "grass":  # blades: vertical streaks
        phase = rng.uniform(0, 2 * np.pi)
        streaks = 1 + 0.15 * np.sin(xx * 1.7 + phase) * np.sin(yy * 0.3)
        return base * streaks[..., None]
    # wall: bricks 6 px high and 12 px wide, rows offset by half a brick, dark mortar.
    offset = int(rng.integers(12))
    mortar = (yy % 6 == 0) | ((xx + offset + 6 * ((yy // 6) % 2)) % 12 == 0)
    return base * np.where(mortar, 0.6, 1.0)[..., None]


# --------------------------------------------------------------------------------------------
# Files


def write_shapes_dataset(
    root: str | os.PathLike[str],
    count: int,
    *,
    size: tuple[int, int] = (96, 96),
    seed: int = 0,
    split: str = "val",
) -> ShapesDataset:
    """Write ``count`` scenes in both COCO layouts (``litevit.calibration.coco``): ``images/``,
    ``annotations/instances_<split>.json``, ``annotations/panoptic_<split>.json`` and its PNG folder.
    Image ids are 1..count; instance masks are uncompressed RLE."""
    from PIL import Image

    folder = ensure_writable_dir(root)
    image_dir = ensure_writable_dir(folder / IMAGES)
    panoptic_dir = ensure_writable_dir(folder / ANNOTATIONS / f"panoptic_{split}")
    rng = np.random.default_rng(seed)
    images: list[dict[str, Any]] = []
    instances: list[dict[str, Any]] = []
    panoptic: list[dict[str, Any]] = []
    for index in range(count):
        scene = shapes_scene(index, seed, size)
        image_id, name = index + 1, f"{index:06d}"
        buffer = io.BytesIO()
        Image.fromarray(scene.image).save(buffer, format="PNG")
        write_bytes(image_dir / f"{name}.png", buffer.getvalue())
        images.append({"id": image_id, "file_name": f"{name}.png", "height": size[0], "width": size[1]})
        # Random segment ids over the whole 24-bit range exercise all three channels of the PNG.
        segment_ids = rng.choice(MAX_SEGMENT_ID - 1, len(scene.masks), replace=False) + 1
        id_map = np.zeros(size, np.int64)
        segments_info = []
        for mask, category_id, isthing, segment_id in zip(
            scene.masks, scene.category_ids, scene.isthing, segment_ids.tolist()
        ):
            id_map[mask] = segment_id
            box, area = mask_box(mask), int(mask.sum())
            segments_info.append(
                {"id": segment_id, "category_id": category_id, "iscrowd": 0, "bbox": box, "area": area}
            )
            if isthing:
                instances.append(
                    {
                        "id": len(instances) + 1,
                        "image_id": image_id,
                        "category_id": category_id,
                        "segmentation": mask_to_rle(mask),
                        "area": area,
                        "bbox": box,
                        "iscrowd": 0,
                    }
                )
        write_bytes(panoptic_dir / f"{name}.png", panoptic_png(id_map))
        panoptic.append({"image_id": image_id, "file_name": f"{name}.png", "segments_info": segments_info})
    info = {"description": f"litevit synthetic shapes, seed {seed}, {size[0]}x{size[1]}"}
    things = [{"id": c["id"], "name": c["name"], "supercategory": "shape"} for c in THINGS]
    instances_json = folder / ANNOTATIONS / f"instances_{split}.json"
    panoptic_json = folder / ANNOTATIONS / f"panoptic_{split}.json"
    write_json(
        instances_json, {"info": info, "images": images, "annotations": instances, "categories": things}
    )
    write_json(
        panoptic_json,
        {
            "info": info,
            "images": images,
            "annotations": panoptic,
            "categories": [dict(c) for c in CATEGORIES],
        },
    )
    return ShapesDataset(folder, image_dir, instances_json, panoptic_json, panoptic_dir, count)
