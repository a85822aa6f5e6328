"""Class names shipped as package data: ImageNet-1k and ADE20K-150 (with its palette).

Facts copied from packages that ship them: ImageNet-1k ids and lemmas from timm 1.0.31
(``timm/data/_info``), ADE20K-150 names and palette from mmsegmentation 1.2.2
(``mmseg/datasets/ade.py``).
"""

from __future__ import annotations

import functools
from pathlib import Path

from litevit.errors import LitevitError

LABEL_SETS = ("imagenet1k", "ade20k150")


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


def ade20k_palette() -> list[tuple[int, int, int]]:
    """RGB colour per ADE20K class, for PNG label maps."""
    return [tuple(int(c) for c in rgb.split(",")) for _, rgb in _rows("ade20k150")]  # type: ignore[misc]
