"""COCO data for detectors: the instances and panoptic layouts, categories, panoptic ids.

Torch-free, and pycocotools-free but for filling in an absent mask area: what ``litevit val`` reads
for detection, instance and panoptic segmentation, and what the metrics (:mod:`.coco_ap`,
:mod:`.panoptic`) and the synthetic shapes data (:mod:`litevit.synthetic_shapes`) share.

Layouts (``split`` is e.g. ``val2017``; it may be left out when there is one annotation file):

- **Instances** (box and mask AP): ``DIR/annotations/instances_<split>.json`` and the images in
  ``DIR/images/`` or, as COCO ships them, ``DIR/<split>/``.
- **Panoptic** (PQ): ``DIR/annotations/panoptic_<split>.json``, its PNGs in
  ``DIR/annotations/panoptic_<split>/`` (COCO's and mmdet's layout) and the images as above.

Categories: contiguous labels follow mmdet's COCO datasets: things in category-id order, then
stuff in category-id order (an instances file has things only). COCO's own tables are
``litevit.labels.coco_categories``.

Panoptic PNGs hold one segment id per pixel as RGB: ``id = R + 256 G + 256² B``; id 0 is VOID
(unlabelled). Every non-zero id of a ground-truth PNG has an entry in its ``segments_info`` and
every entry has pixels; anything else is refused in one sentence naming the file.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from litevit.errors import DataError

ANNOTATIONS = "annotations"
IMAGES = "images"
VOID = 0
# 2**24: the largest id an RGB PNG can hold, plus one.
MAX_SEGMENT_ID = 256**3


# --------------------------------------------------------------------------------------------
# Categories


@dataclass(frozen=True)
class CategoryTable:
    """A data set's categories in contiguous-label order: things by id, then stuff by id
    (mmdet's order; for COCO, labels 0..79 are the things and 80..132 the stuff)."""

    ids: tuple[int, ...]
    names: tuple[str, ...]
    isthing: tuple[bool, ...]

    @classmethod
    def from_coco(cls, categories: Any, source: str) -> CategoryTable:
        """From a COCO file's ``categories`` list (``isthing`` absent: a thing, as in instances
        files). ``source`` names the file in the refusals."""
        if not isinstance(categories, list) or not categories:
            raise DataError(f"{source}: 'categories' must be a non-empty list of {{id, name}} objects.")
        rows = []
        for index, category in enumerate(categories):
            if not isinstance(category, dict) or not _is_int(category.get("id")):
                raise DataError(f"{source}: categories[{index}] has no integer 'id'.")
            if not isinstance(category.get("name"), str):
                raise DataError(f"{source}: category {category['id']} has no 'name'.")
            rows.append((int(category["id"]), category["name"], bool(category.get("isthing", 1))))
        ids = [row[0] for row in rows]
        if len(set(ids)) != len(ids):
            duplicate = next(cid for cid in ids if ids.count(cid) > 1)
            raise DataError(f"{source}: category id {duplicate} appears more than once.")
        if any(cid <= 0 for cid in ids):
            raise DataError(f"{source}: category ids must be positive (0 is VOID in panoptic files).")
        ordered = sorted(rows, key=lambda row: (not row[2], row[0]))
        return cls(
            tuple(row[0] for row in ordered),
            tuple(row[1] for row in ordered),
            tuple(row[2] for row in ordered),
        )

    @classmethod
    def from_label_set(cls, label_set: str) -> CategoryTable:
        """COCO's shipped tables: ``coco80`` (instances) or ``coco_panoptic133``."""
        from litevit.labels import coco_categories

        categories = coco_categories(label_set)
        return cls(
            tuple(c.id for c in categories),
            tuple(c.name for c in categories),
            tuple(c.isthing for c in categories),
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_things(self) -> int:
        return sum(self.isthing)

    def label_of(self) -> dict[int, int]:
        """Category id -> contiguous label."""
        return {cid: label for label, cid in enumerate(self.ids)}

    def isthing_of(self) -> dict[int, bool]:
        """Category id -> thing (True) or stuff."""
        return dict(zip(self.ids, self.isthing))

    def to_coco(self) -> list[dict[str, Any]]:
        return [
            {"id": cid, "name": name, "isthing": int(thing)}
            for cid, name, thing in zip(self.ids, self.names, self.isthing)
        ]

    def check_predicted_by(self, model: CategoryTable, source: str, model_name: str) -> None:
        """Refuse data (``self``, from ``source``) with a category the model does not predict: an id
        it lacks, or one it knows by another name or as thing/stuff the other way round."""
        known = {cid: (name, thing) for cid, name, thing in zip(model.ids, model.names, model.isthing)}
        for cid, name, thing in zip(self.ids, self.names, self.isthing):
            if cid not in known:
                raise DataError(f"{source}: category {cid} ({name!r}) is not one that {model_name} predicts.")
            if known[cid][0] != name:
                raise DataError(
                    f"{source}: category {cid} is {name!r} but {known[cid][0]!r} for {model_name}; the "
                    f"data's category ids must be the model's."
                )
            if known[cid][1] != thing:
                raise DataError(
                    f"{source}: category {cid} ({name!r}) is {'a thing' if thing else 'stuff'} but "
                    f"{'a thing' if known[cid][1] else 'stuff'} for {model_name}."
                )


# --------------------------------------------------------------------------------------------
# Panoptic ids and masks


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (...) int64 segment ids, ``R + 256 G + 256² B``."""
    colour = rgb.astype(np.int64)
    return colour[..., 0] + 256 * colour[..., 1] + 256 * 256 * colour[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """(...) segment ids in [0, 2**24) -> (..., 3) uint8 RGB (inverse of :func:`rgb_to_id`)."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= MAX_SEGMENT_ID):
        raise DataError(f"panoptic segment ids must lie in [0, {MAX_SEGMENT_ID}); got {int(ids.max())}.")
    return np.stack([ids % 256, (ids // 256) % 256, ids // (256 * 256)], axis=-1).astype(np.uint8)


def panoptic_png(ids: np.ndarray) -> bytes:
    """An (H, W) id map as COCO's RGB panoptic PNG (encoded, for :func:`litevit._io.write_bytes`)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(id_to_rgb(ids)).save(buffer, format="PNG")
    return buffer.getvalue()


def read_panoptic_png(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> np.ndarray:
    """A panoptic PNG -> (H, W) int64 segment ids; ``size`` (height, width) is checked when given."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode != "RGB":
                raise DataError(
                    f"the panoptic PNG {str(path)!r} is a {image.mode} image; panoptic PNGs are RGB, "
                    f"segment id = R + 256*G + 256^2*B."
                )
            ids = rgb_to_id(np.asarray(image))
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three for bad files
        raise DataError(f"the panoptic PNG {str(path)!r} cannot be read: {exc}.") from None
    if size is not None and ids.shape != tuple(size):
        raise DataError(
            f"the panoptic PNG {str(path)!r} is {ids.shape[1]}x{ids.shape[0]} but its image is "
            f"{size[1]}x{size[0]}."
        )
    return ids


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> COCO's uncompressed RLE, ``{"size": [H, W], "counts": [...]}``: run lengths
    of the column-major pixels, starting with a run of zeros (pycocotools reads it as is)."""
    flat = np.asarray(mask, dtype=bool).T.reshape(-1)
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def mask_box(mask: np.ndarray) -> list[float]:
    """COCO ``[x, y, width, height]`` of a non-empty mask's pixels (width = last column - first + 1,
    as pycocotools' toBbox)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


# --------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class CocoImage:
    """One ``images`` entry, with the path of its file."""

    id: int
    file_name: str
    width: int
    height: int
    path: Path


@dataclass
class CocoInstances:
    """A COCO instances file, checked (:func:`load_instances_json`): ``dataset`` is its JSON with
    ``area`` and ``iscrowd`` filled in where absent, ready for pycocotools."""

    annotation_file: Path
    image_dir: Path
    images: list[CocoImage]
    categories: CategoryTable
    dataset: dict[str, Any]


@dataclass(frozen=True)
class PanopticAnnotation:
    """One image's panoptic ground truth: its PNG and ``segments_info`` (id, category_id, iscrowd)."""

    image_id: int
    png: Path
    segments: tuple[dict[str, Any], ...]


@dataclass
class CocoPanoptic:
    """A COCO panoptic file, checked: images, one annotation per image, categories."""

    annotation_file: Path
    png_dir: Path
    image_dir: Path
    images: list[CocoImage]
    annotations: dict[int, PanopticAnnotation]
    categories: CategoryTable
    image_of: dict[int, CocoImage] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.image_of = {image.id: image for image in self.images}


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    """A JSON file, or one sentence saying why it cannot be read."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"the {what} {str(file)!r} does not exist.")
    try:
        with open(file, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"the {what} {str(file)!r} is not valid JSON: {exc}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"the {what} {str(file)!r} cannot be read: {exc}.") from None


def load_instances_json(path: str | os.PathLike[str], image_dir: str | os.PathLike[str]) -> CocoInstances:
    """Read and check a COCO instances file; image paths are ``image_dir / file_name`` (not checked
    here: :func:`read_coco_instances` does)."""
    file = Path(path)
    data = read_json(file, "annotation file")
    source = str(file)
    _require_lists(data, source, ("images", "annotations", "categories"))
    categories = CategoryTable.from_coco(data["categories"], source)
    images = _images(data["images"], source, Path(image_dir))
    size_of = {image.id: (image.height, image.width) for image in images}
    category_ids = set(categories.ids)
    seen: set[int] = set()
    for index, ann in enumerate(data["annotations"]):
        where = f"{source}: annotations[{index}]"
        if not isinstance(ann, dict) or not _is_int(ann.get("id")):
            raise DataError(f"{where} has no integer 'id'.")
        where = f"{source}: annotation {ann['id']}"
        if ann["id"] in seen:
            raise DataError(f"{where} appears more than once (annotation ids are unique).")
        seen.add(ann["id"])
        if ann.get("image_id") not in size_of:
            raise DataError(f"{where} refers to image_id {ann.get('image_id')!r}, which is not in 'images'.")
        if ann.get("category_id") not in category_ids:
            raise DataError(
                f"{where} has category_id {ann.get('category_id')!r}, which is not in 'categories'."
            )
        box = ann.get("bbox")
        if not _is_box(box):
            raise DataError(f"{where} has no valid 'bbox' ([x, y, width, height], width and height >= 0).")
        if "segmentation" in ann:
            check_segmentation(ann["segmentation"], size_of[ann["image_id"]], where)
        ann.setdefault("iscrowd", 0)
        if "area" not in ann:
            ann["area"] = _area(ann, size_of[ann["image_id"]])
        elif not _is_number(ann["area"]):
            raise DataError(f"{where} has a non-numeric 'area'.")
    return CocoInstances(file, Path(image_dir), images, categories, data)


def load_panoptic_json(
    path: str | os.PathLike[str], png_dir: str | os.PathLike[str], image_dir: str | os.PathLike[str]
) -> CocoPanoptic:
    """Read and check a COCO panoptic file (the PNGs themselves are read when scored)."""
    file = Path(path)
    data = read_json(file, "panoptic annotation file")
    source = str(file)
    _require_lists(data, source, ("images", "annotations", "categories"))
    categories = CategoryTable.from_coco(data["categories"], source)
    images = _images(data["images"], source, Path(image_dir))
    known = {image.id for image in images}
    annotations = read_panoptic_annotations(data["annotations"], source, Path(png_dir), categories)
    stray = sorted(set(annotations) - known)
    if stray:
        raise DataError(f"{source}: an annotation refers to image_id {stray[0]}, which is not in 'images'.")
    missing = [image for image in images if image.id not in annotations]
    if missing:
        raise DataError(
            f"{source}: {len(missing)} image(s) have no panoptic annotation, e.g. image {missing[0].id} "
            f"({missing[0].file_name})."
        )
    return CocoPanoptic(file, Path(png_dir), Path(image_dir), images, annotations, categories)


def read_panoptic_annotations(
    annotations: Any, source: str, png_dir: Path, categories: CategoryTable
) -> dict[int, PanopticAnnotation]:
    """A panoptic file's ``annotations`` list (ground truth or predictions) -> per image id, checked:
    one entry per image, a ``file_name``, and ``segments_info`` entries with unique non-zero ids of
    known categories."""
    if not isinstance(annotations, list):
        raise DataError(f"{source}: 'annotations' must be a list.")
    known = set(categories.ids)
    out: dict[int, PanopticAnnotation] = {}
    for index, ann in enumerate(annotations):
        if not isinstance(ann, dict) or not _is_int(ann.get("image_id")):
            raise DataError(f"{source}: annotations[{index}] has no integer 'image_id'.")
        where = f"{source}: the annotation of image {ann['image_id']}"
        if ann["image_id"] in out:
            raise DataError(f"{where} appears more than once.")
        if not isinstance(ann.get("file_name"), str):
            raise DataError(f"{where} has no 'file_name' (its PNG).")
        segments = ann.get("segments_info")
        if not isinstance(segments, list):
            raise DataError(f"{where} has no 'segments_info' list.")
        ids: set[int] = set()
        for segment in segments:
            if not isinstance(segment, dict) or not _is_int(segment.get("id")):
                raise DataError(f"{where} has a segment without an integer 'id'.")
            sid = segment["id"]
            if not 0 < sid < MAX_SEGMENT_ID:
                raise DataError(
                    f"{where} has segment id {sid}; ids lie in 1..{MAX_SEGMENT_ID - 1} (0 is VOID)."
                )
            if sid in ids:
                raise DataError(f"{where} has segment id {sid} more than once.")
            ids.add(sid)
            if segment.get("category_id") not in known:
                raise DataError(
                    f"{where}: segment {sid} has category_id {segment.get('category_id')!r}, which is not "
                    f"in the categories."
                )
        out[ann["image_id"]] = PanopticAnnotation(
            ann["image_id"], png_dir / ann["file_name"], tuple(segments)
        )
    return out


# --------------------------------------------------------------------------------------------
# Layouts


def read_coco_instances(data: str | os.PathLike[str], split: str | None = None) -> CocoInstances:
    """``DIR/annotations/instances_<split>.json`` + its images (module docstring), checked; every
    listed image must exist."""
    root = _data_folder(data)
    annotation_file, split = _annotation_file(root, "instances", split)
    image_dir = _image_dir(root, split)
    instances = load_instances_json(annotation_file, image_dir)
    _check_image_files(instances.images, annotation_file, root)
    return instances


def read_coco_panoptic(data: str | os.PathLike[str], split: str | None = None) -> CocoPanoptic:
    """``DIR/annotations/panoptic_<split>.json`` + ``DIR/annotations/panoptic_<split>/`` PNGs + the
    images (module docstring), checked; every listed image and PNG must exist."""
    root = _data_folder(data)
    annotation_file, split = _annotation_file(root, "panoptic", split)
    png_dir = annotation_file.with_suffix("")
    if not png_dir.is_dir():
        raise DataError(
            f"the panoptic PNG folder {str(png_dir)!r} does not exist: the PNGs of "
            f"{annotation_file.name} go in {ANNOTATIONS}/{png_dir.name}/ (COCO's layout)."
        )
    panoptic = load_panoptic_json(annotation_file, png_dir, _image_dir(root, split))
    _check_image_files(panoptic.images, annotation_file, root)
    missing = [ann.png for ann in panoptic.annotations.values() if not ann.png.is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} panoptic PNG(s) listed in {annotation_file.name} are missing, e.g. "
            f"{missing[0].relative_to(root).as_posix()}."
        )
    return panoptic


def _data_folder(data: str | os.PathLike[str]) -> Path:
    root = Path(data)
    if not root.is_dir():
        raise DataError(f"the data folder {str(root)!r} does not exist or is not a folder.")
    return root


def _annotation_file(root: Path, kind: str, split: str | None) -> tuple[Path, str]:
    """``annotations/<kind>_<split>.json`` and its split; without ``split``, the only such file."""
    layout = f"DIR/{ANNOTATIONS}/{kind}_<split>.json with the images in DIR/{IMAGES}/ or DIR/<split>/" + (
        f" and the PNGs in DIR/{ANNOTATIONS}/{kind}_<split>/" if kind == "panoptic" else ""
    )
    if split is not None:
        file = root / ANNOTATIONS / f"{kind}_{split}.json"
        if not file.is_file():
            raise DataError(f"the data folder {str(root)!r} has no {ANNOTATIONS}/{file.name} ({layout}).")
        return file, split
    found = sorted((root / ANNOTATIONS).glob(f"{kind}_*.json"))
    if not found:
        raise DataError(
            f"the data folder {str(root)!r} has no {ANNOTATIONS}/{kind}_*.json: the COCO {kind} layout is "
            f"{layout}."
        )
    if len(found) > 1:
        raise DataError(
            f"the data folder {str(root)!r} has {len(found)} {kind} files "
            f"({', '.join(f.name for f in found)}); name the split to use."
        )
    return found[0], found[0].stem[len(kind) + 1 :]


def _image_dir(root: Path, split: str) -> Path:
    for folder in (root / IMAGES, root / split):
        if folder.is_dir():
            return folder
    raise DataError(f"the data folder {str(root)!r} has neither {IMAGES}/ nor {split}/ (the images).")


def _check_image_files(images: Sequence[CocoImage], annotation_file: Path, root: Path) -> None:
    missing = [image for image in images if not image.path.is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} image(s) listed in {annotation_file.name} are missing, e.g. "
            f"{missing[0].path.relative_to(root).as_posix()} (image {missing[0].id})."
        )


# --------------------------------------------------------------------------------------------
# Checks


def check_segmentation(segmentation: Any, size: tuple[int, int], where: str) -> None:
    """A COCO ``segmentation``: polygons (a list of flat ``[x0, y0, x1, y1, ...]`` lists) or RLE
    (``{"size": [H, W], "counts": str or list}``) of the image's ``size`` (height, width)."""
    if isinstance(segmentation, list):
        if not all(
            isinstance(polygon, list) and polygon and all(_is_number(v) for v in polygon)
            for polygon in segmentation
        ):
            raise DataError(
                f"{where} has a 'segmentation' list that is not polygons (lists of x, y numbers)."
            )
        return
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise DataError(f"{where} has a 'segmentation' that is neither polygons nor RLE ({{size, counts}}).")
    if list(segmentation["size"]) != [size[0], size[1]]:
        raise DataError(
            f"{where} has an RLE of size {segmentation['size']} but its image is [height, width] = "
            f"[{size[0]}, {size[1]}]."
        )
    counts = segmentation["counts"]
    if isinstance(counts, list):
        if not all(_is_int(c) and c >= 0 for c in counts) or sum(counts) != size[0] * size[1]:
            raise DataError(f"{where} has RLE counts that do not add up to its {size[0]}x{size[1]} pixels.")
    elif not isinstance(counts, (str, bytes)):
        raise DataError(f"{where} has RLE counts that are neither a string nor a list of run lengths.")


def _require_lists(data: Any, source: str, keys: Sequence[str]) -> None:
    if not isinstance(data, dict):
        raise DataError(f"{source} is not a COCO file: it holds a {type(data).__name__}, not an object.")
    for key in keys:
        if not isinstance(data.get(key), list):
            raise DataError(f"{source} has no {key!r} list (a COCO file has {', '.join(keys)}).")


def _images(entries: list[Any], source: str, image_dir: Path) -> list[CocoImage]:
    images = []
    seen: set[int] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not _is_int(entry.get("id")):
            raise DataError(f"{source}: images[{index}] has no integer 'id'.")
        if entry["id"] in seen:
            raise DataError(f"{source}: image id {entry['id']} appears more than once.")
        seen.add(entry["id"])
        if not isinstance(entry.get("file_name"), str):
            raise DataError(f"{source}: image {entry['id']} has no 'file_name'.")
        for key in ("width", "height"):
            if not _is_int(entry.get(key)) or entry[key] <= 0:
                raise DataError(f"{source}: image {entry['id']} has no positive integer {key!r}.")
        images.append(
            CocoImage(
                entry["id"],
                entry["file_name"],
                entry["width"],
                entry["height"],
                image_dir / entry["file_name"],
            )
        )
    return images


def _area(ann: Mapping[str, Any], size: tuple[int, int]) -> float:
    """An annotation's area where its file leaves it out: the mask's pixels, else the box's."""
    segmentation = ann.get("segmentation")
    if segmentation is None:
        return float(ann["bbox"][2] * ann["bbox"][3])
    from litevit._deps import require

    require("pycocotools")
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, size[0], size[1]))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, size[0], size[1])
    else:
        rle = segmentation
    return float(mask_utils.area(rle))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_box(box: Any) -> bool:
    return (
        isinstance(box, list)
        and len(box) == 4
        and all(_is_number(v) for v in box)
        and box[2] >= 0
        and box[3] >= 0
    )
