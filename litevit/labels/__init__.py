"""Class names shipped as package data: ImageNet-1k and the segmentation label sets (with palettes).

Facts copied from packages that ship them: ImageNet-1k ids and lemmas from timm 1.0.31
(``timm/data/_info``), ADE20K-150 names and palette from mmsegmentation 1.2.2
(``mmseg/datasets/ade.py``), COCO-Stuff-171 and PASCAL-Context (60 with background, 59 without)
from mmsegmentation 0.24.0 (``COCOStuffDataset``, ``PascalContextDataset``,
``PascalContextDataset59``), the version SegViT was trained and tested with.

:data:`REDUCE_ZERO_LABEL` says how each segmentation data set's label PNGs are read, as the
mmseg dataset class fixes it: ``True`` means PNG value 0 is ignored and value k is class k - 1
(ADE20K; COCO-Stuff-10k, whose converted masks hold 1..171 with 0 unlabelled; PASCAL-Context-59);
``False`` means value k is class k (PASCAL-Context with background). 255 is ignored in both.
"""

from __future__ import annotations

import functools
from pathlib import Path

from litevit.errors import LitevitError

LABEL_SETS = ("imagenet1k", "ade20k150", "cocostuff171", "pascal_context60", "pascal_context59")
SEGMENTATION_LABEL_SETS = LABEL_SETS[1:]
REDUCE_ZERO_LABEL = {
    "ade20k150": True,
    "cocostuff171": True,
    "pascal_context60": False,
    "pascal_context59": True,
}


@functools.lru_cache(maxsize=None)
def _rows(label_set: str) -> tuple[tuple[str, str], ...]:
    if label_set not in LABEL_SETS:
        raise LitevitError(f"unknown label set {label_set!r}; known: {', '.join(LABEL_SETS)}.")
    text = (Path(__file__).parent / f"{label_set}.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return tuple((a, b) for a, b in rows)


def class_names(label_set: str) -> list[str]:
    """Human-readable class names in class-index order."""
    if label_set == "imagenet1k":
        return [lemmas.split(",")[0] for _, lemmas in _rows(label_set)]
    return [name for name, _ in _rows(label_set)]


def imagenet_synsets() -> list[str]:
    """WordNet ids (``n01440764`` ...) of the ImageNet-1k classes, in class-index order."""
    return [wnid for wnid, _ in _rows("imagenet1k")]


def palette(label_set: str) -> list[tuple[int, int, int]]:
    """RGB colour per class of a segmentation label set (mmseg's palette), for PNG label maps."""
    if label_set not in SEGMENTATION_LABEL_SETS:
        raise LitevitError(
            f"label set {label_set!r} has no palette; segmentation label sets: "
            f"{', '.join(SEGMENTATION_LABEL_SETS)}."
        )
    return [tuple(int(c) for c in rgb.split(",")) for _, rgb in _rows(label_set)]  # type: ignore[misc]


def ade20k_palette() -> list[tuple[int, int, int]]:
    """RGB colour per ADE20K class, for PNG label maps."""
    return palette("ade20k150")
