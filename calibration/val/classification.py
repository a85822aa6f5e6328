"""``litevit val`` for classifiers: ImageFolder-style class folders, top-1 / top-5.

Layout: ``DIR/<class>/<image>.jpg|png`` (files may sit in sub-folders of a class folder). Class
folder -> class index, the first rule that applies:

1. every folder name is an integer: it *is* the class index (``0`` .. ``num_classes - 1``);
2. every folder name is an ImageNet WordNet id (``n01440764``) and the model's label set is
   ImageNet-1k: the id's position in that label set;
3. otherwise torchvision's ImageFolder convention: the folder's position in sorted order.

A folder that maps to no class of the model is refused, never skipped. Top-1, and top-5 when the
model has at least 5 classes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litevit._compat import strict_zip
from litevit._progress import Progress
from litevit.calibration.images import Preprocessing, evenly_spaced, list_images, load_images
from litevit.calibration.val.common import run_batch
from litevit.errors import DataError
from litevit.runtime.runners import Runner

_WORDNET_ID = re.compile(r"n\d{8}")


@dataclass(frozen=True)
class ClassMapping:
    """Which class index each class folder holds, and the rule (in words) that decided it."""

    index_of: dict[str, int]
    rule: str


def class_mapping(folder_names: Sequence[str], num_classes: int, label_set: str) -> ClassMapping:
    """Map class folder names to the model's class indices (module docstring: the three rules).

    Raises :class:`DataError` naming a folder that maps to no class of the model.
    """
    names = sorted(folder_names)
    if all(name.isdigit() for name in names):
        out_of_range = [name for name in names if int(name) >= num_classes]
        if out_of_range:
            raise DataError(
                f"class folder {out_of_range[0]!r} maps to no class: folder names that are all integers "
                f"are class indices, and the model has classes 0..{num_classes - 1}."
            )
        return ClassMapping(
            {name: int(name) for name in names}, "folder names are class indices (all are integers)"
        )
    if label_set == "imagenet1k" and all(_WORDNET_ID.fullmatch(name) for name in names):
        from litevit.labels import imagenet_synsets

        synsets = {wnid: index for index, wnid in enumerate(imagenet_synsets())}
        unknown = [name for name in names if name not in synsets]
        if unknown:
            raise DataError(
                f"class folder {unknown[0]!r} maps to no class: it looks like a WordNet id but is not "
                f"one of the ImageNet-1k classes."
            )
        return ClassMapping(
            {name: synsets[name] for name in names},
            "folder names are ImageNet WordNet ids, mapped through the imagenet1k label set",
        )
    if len(names) > num_classes:
        raise DataError(
            f"class folder {names[num_classes]!r} maps to no class: there are {len(names)} class folders "
            f"(sorted order gives class indices) and the model has {num_classes} classes."
        )
    return ClassMapping(
        {name: index for index, name in enumerate(names)},
        "class index = position of the folder name in sorted order (ImageFolder convention; the names "
        "are neither all integers nor all ImageNet WordNet ids)",
    )


def labelled_images(root: Path, num_classes: int, label_set: str) -> tuple[list[Path], list[int], str]:
    """Every image under ``root``'s class folders with its class index, and the mapping rule."""
    paths = list_images(root, what="data folder")
    class_folders = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    if not class_folders:
        raise DataError(
            f"the data folder {str(root)!r} has no class folders: a classifier is validated on "
            f"DIR/<class>/<image> (ImageFolder layout)."
        )
    loose = [path for path in paths if path.parent == root]
    if loose:
        raise DataError(
            f"{len(loose)} image(s) in {str(root)!r} are outside any class folder (e.g. {loose[0].name}); "
            f"a classifier is validated on DIR/<class>/<image>."
        )
    mapping = class_mapping(class_folders, num_classes, label_set)
    labels = [mapping.index_of[path.relative_to(root).parts[0]] for path in paths]
    return paths, labels, mapping.rule


class TopK:
    """Top-1 and top-k hits of one runner."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.count = 0
        self.top1 = 0
        self.topk = 0

    def update(self, logits: np.ndarray, labels: np.ndarray) -> None:
        # Stable sort of the negated scores: ties go to the lower class index, as argmax does.
        ranked = np.argsort(-logits.astype(np.float32), axis=1, kind="stable")[:, : self.k]
        self.count += len(labels)
        self.top1 += int((ranked[:, 0] == labels).sum())
        self.topk += int((ranked == labels[:, None]).any(axis=1).sum())

    def scores(self) -> dict[str, float]:
        scores = {"top-1": 100.0 * self.top1 / self.count}
        if self.k >= 5:
            scores["top-5"] = 100.0 * self.topk / self.count
        return scores


@dataclass
class Scored:
    """What one task's scoring loop returns to ``validate``."""

    meters: dict[tuple[str, str], Any]
    images: int
    total: int  # images listed before --limit
    unreadable: list[tuple[Path, str]]
    label_rule: str
    columns: list[str]


def score_classifier(
    runners: dict[tuple[str, str], Runner],
    manifest: dict[str, Any],
    root: Path,
    chunk: int,
    limit: int | None,
    progress: bool,
) -> Scored:
    """Top-1/top-5 of every runner on ``root``'s class folders; each chunk decoded once."""
    data_config = manifest["data_config"]
    num_classes = int(data_config["num_classes"])
    paths, labels, rule = labelled_images(root, num_classes, data_config["label_set"])
    label_of = dict(strict_zip(paths, labels))
    chosen = evenly_spaced(paths, limit) if limit is not None else paths
    prep = Preprocessing.from_manifest(manifest)
    meters = {key: TopK(min(5, num_classes)) for key in runners}
    unreadable: list[tuple[Path, str]] = []
    scored = 0
    bar = Progress(progress, len(chosen), f"val {manifest['model']}", unit="images")
    for start in range(0, len(chosen), chunk):
        part = chosen[start : start + chunk]
        loaded = load_images(part, prep)
        unreadable.extend(loaded.unreadable)
        scored += len(loaded.arrays)
        if len(loaded.arrays):
            truth = np.asarray([label_of[path] for path in loaded.paths], np.int64)
            for key, runner in runners.items():
                meters[key].update(run_batch(runner, loaded.arrays), truth)
        bar.update(len(part))
    bar.close()
    columns = ["top-1", "top-5"] if num_classes >= 5 else ["top-1"]
    return Scored(dict(meters), scored, len(paths), unreadable, rule, columns)
