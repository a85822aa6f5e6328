"""Class names shipped as package data: ImageNet-1k, ADE20K-150 (with its palette) and COCO.

Facts copied from packages that ship them: ImageNet-1k ids and lemmas from timm 1.0.31
(``timm/data/_info``), ADE20K-150 names and palette from mmsegmentation 1.2.2
(``mmseg/datasets/ade.py``), the COCO panoptic categories (ids, names, thing/stuff, colours) from
cocodataset/panopticapi (``panoptic_coco_categories.json``).

COCO's two label sets share one table, in category-id order: ``coco80`` is the 80 thing classes
of COCO instances (ids 1..90 with gaps -> labels 0..79), ``coco_panoptic133`` adds the 53 stuff
classes of COCO panoptic after them (labels 80..132), the order mmdet's COCO datasets use.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

from litevit.errors import LitevitError

LABEL_SETS = ("imagenet1k", "ade20k150", "coco80", "coco_panoptic133")
# The file each label set is read from.
_TABLE_OF = {"coco80": "coco_panoptic133"}


class Category(NamedTuple):
    """One COCO category: its id in COCO files, name, thing (countable) or stuff, and colour."""

    id: int
    name: str
    isthing: bool
    color: tuple[int, int, int]


@functools.lru_cache(maxsize=None)
def _rows(label_set: str) -> tuple[tuple[str, ...], ...]:
    if label_set not in LABEL_SETS:
        raise LitevitError(f"unknown label set {label_set!r}; known: {', '.join(LABEL_SETS)}.")
    table = _TABLE_OF.get(label_set, label_set)
    text = (Path(__file__).parent / f"{table}.tsv").read_text(encoding="utf-8")
    return tuple(tuple(line.split("\t")) for line in text.splitlines() if line and not line.startswith("#"))


def class_names(label_set: str) -> list[str]:
    """Human-readable class names in class-index order."""
    if label_set == "imagenet1k":
        return [lemmas.split(",")[0] for _, lemmas in _rows(label_set)]
    if label_set in ("coco80", "coco_panoptic133"):
        return [category.name for category in coco_categories(label_set)]
    return [name for name, _ in _rows(label_set)]


def imagenet_synsets() -> list[str]:
    """WordNet ids (``n01440764`` ...) of the ImageNet-1k classes, in class-index order."""
    return [wnid for wnid, _ in _rows("imagenet1k")]


def ade20k_palette() -> list[tuple[int, int, int]]:
    """RGB colour per ADE20K class, for PNG label maps."""
    return [_rgb(rgb) for _, rgb in _rows("ade20k150")]


def coco_categories(label_set: str = "coco_panoptic133") -> list[Category]:
    """The COCO categories of ``coco80`` (things only) or ``coco_panoptic133`` (things, then stuff),
    in class-index order: the category of contiguous label ``k`` is ``coco_categories(...)[k]``."""
    if label_set not in ("coco80", "coco_panoptic133"):
        raise LitevitError(f"{label_set!r} is not a COCO label set; COCO's are coco80 and coco_panoptic133.")
    categories = [
        Category(int(cid), name, isthing == "1", _rgb(rgb)) for cid, isthing, name, rgb in _rows(label_set)
    ]
    things = [category for category in categories if category.isthing]
    if label_set == "coco80":
        return things
    return things + [category for category in categories if not category.isthing]


def _rgb(text: str) -> tuple[int, int, int]:
    red, green, blue = (int(value) for value in text.split(","))
    return red, green, blue
