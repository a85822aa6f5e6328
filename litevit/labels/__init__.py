"""Class names shipped as package data: ImageNet-1k, ADE20K-150 (with its palette) and COCO.

Facts copied from packages that ship them: ImageNet-1k ids and lemmas from timm 1.0.31
(``timm/data/_info``), ADE20K-150 names and palette from mmsegmentation 1.2.2
(``mmseg/datasets/ade.py``), the COCO panoptic categories (ids, names, thing/stuff, colours)
from cocodataset/panopticapi ``panoptic_coco_categories.json``. ``coco80`` is its first 80
rows (the COCO instance categories, same ids), ``coco_panoptic133`` all 133: class index i of a
detector or panoptic model is row i, in the order of mmdet's ``CocoDataset``/``CocoPanopticDataset``.
"""

from __future__ import annotations

import functools
from typing import Any
from pathlib import Path

from litevit.errors import LitevitError

LABEL_SETS = ("imagenet1k", "ade20k150", "coco80", "coco_panoptic133")
# Label sets that are the first rows of another set's file.
_FILES = {"coco80": ("coco_panoptic133", 80)}
_COCO = ("coco80", "coco_panoptic133")


@functools.lru_cache(maxsize=None)
def _table(label_set: str) -> tuple[tuple[str, ...], ...]:
    if label_set not in LABEL_SETS:
        raise LitevitError(f"unknown label set {label_set!r}; known: {', '.join(LABEL_SETS)}.")
    name, count = _FILES.get(label_set, (label_set, None))
    text = (Path(__file__).parent / f"{name}.tsv").read_text(encoding="utf-8")
    rows = [tuple(line.split("\t")) for line in text.splitlines() if line and not line.startswith("#")]
    return tuple(rows[:count] if count is not None else rows)


def _rows(label_set: str) -> tuple[tuple[str, str], ...]:
    return tuple((row[0], row[1]) for row in _table(label_set))


def class_names(label_set: str) -> list[str]:
    """Human-readable class names in class-index order."""
    if label_set == "imagenet1k":
        return [lemmas.split(",")[0] for _, lemmas in _rows(label_set)]
    if label_set in _COCO:
        return [name for _, name in _rows(label_set)]
    return [name for name, _ in _rows(label_set)]


def coco_categories(label_set: str) -> list[dict[str, Any]]:
    """COCO categories in class-index order, as annotation files write them: ``id``, ``name``,
    ``isthing`` (0/1) and ``color`` (RGB)."""
    if label_set not in _COCO:
        raise LitevitError(f"{label_set!r} is not a COCO label set; COCO sets: {', '.join(_COCO)}.")
    return [
        {"id": int(cid), "name": name, "isthing": int(isthing), "color": [int(c) for c in rgb.split(",")]}
        for cid, name, isthing, rgb in _table(label_set)
    ]


def imagenet_synsets() -> list[str]:
    """WordNet ids (``n01440764`` ...) of the ImageNet-1k classes, in class-index order."""
    return [wnid for wnid, _ in _rows("imagenet1k")]


def ade20k_palette() -> list[tuple[int, int, int]]:
    """RGB colour per ADE20K class, for PNG label maps."""
    return [tuple(int(c) for c in rgb.split(",")) for _, rgb in _rows("ade20k150")]  # type: ignore[misc]
