"""``litevit val``: an artefact's accuracy on the user's own labelled images, per backend x precision.

This is how a user learns what FP16 or INT8 cost them: every requested runner sees the same
decoded, preprocessed images (the artefact's own preprocessing, :mod:`litevit.calibration.images`)
and is scored the same way; each row shows its difference from FP32 on the same backend.

Data layouts:

- **Classifiers**: an ImageFolder-style folder, ``DIR/<class>/<image>.jpg|png`` (files may sit in
  sub-folders of a class folder). Class folder -> class index, the first rule that applies:

  1. every folder name is an integer: it *is* the class index (``0`` .. ``num_classes - 1``);
  2. every folder name is an ImageNet WordNet id (``n01440764``) and the model's label set is
     ImageNet-1k: the id's position in that label set;
  3. otherwise torchvision's ImageFolder convention: the folder's position in sorted order.

  A folder that maps to no class of the model is refused, never skipped. Top-1, and top-5 when
  the model has at least 5 classes.
- **Segmenters**: image/mask pairs in the ADE20K layout, ``DIR/images/X.jpg`` with
  ``DIR/annotations/X.png`` (the same relative path, ``.png``). Masks are single-channel class
  values read the way mmseg reads ADE20K (``reduce_zero_label``): 0 is "other" and ignored,
  ``k`` is class ``k - 1``, 255 is ignored. Masks follow their image's geometry with
  nearest-neighbour, and pixels are scored at the graph's input size (the paper scores at the
  original image size). mIoU (mean over classes present in the masks or the predictions, as
  mmseg's nan-mean) and pixel accuracy, from one confusion matrix per runner.

Files that cannot be decoded are counted, named and excluded, never replaced. Batches: the
artefact's batch when its batch axis is fixed (a short last batch is padded with zeros and the
padding's outputs dropped); ``batch`` (default 8) when it is dynamic.

Torch-free: the artefact runs through :mod:`litevit.runtime.runners`. The paper's figure comes
from the manifest (the export writes it there), or from the model registry for older artefacts.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from litevit._deps import has
from litevit._io import write_json
from litevit._progress import Progress
from litevit._compat import strict_zip
from litevit.artifacts import DETECTION_TASKS, read_manifest
from litevit.calibration.images import (
    Preprocessing,
    describe_unreadable,
    unreadable_reason,
    evenly_spaced,
    list_images,
    load_images,
)
from litevit.errors import DataError, LitevitError
from litevit.runtime.bench import resize_bilinear
from litevit.runtime.runners import BACKENDS, PRECISIONS, Runner, open_runner

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_DYNAMIC_BATCH = 8
SEG_IMAGES = "images"
SEG_MASKS = "annotations"
# mmseg's ADE20K reading: 0 ("other") and 255 are ignored, k is class k - 1.
MASK_IGNORE_VALUES = (0, 255)
MASK_RULE = "mask value 0 and 255 = ignored, k = class k-1 (mmseg's reduce_zero_label, as for ADE20K)"
_WORDNET_ID = re.compile(r"n\d{8}")
_IGNORED = -1  # internal label of ignored pixels


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class ValRow:
    """One backend x precision: scores in percent; ``delta`` is the main score minus the same
    backend's FP32 score, in points (None for FP32 itself or when FP32 was not run)."""

    backend: str
    precision: str
    images: int
    scores: dict[str, float]
    delta: float | None = None
    per_class_iou: list[float | None] | None = None  # segmentation, percent; None: class absent


@dataclass
class ValResult:
    """Everything ``litevit val`` found; ``to_dict`` is what ``--json`` writes."""

    artifact: str
    model: str
    task: str
    data: str
    metric: str  # the main score: "top-1" or "mIoU"
    columns: list[str]  # score names, in table order
    batch: int
    images: int
    unreadable: list[tuple[str, str]]  # (path relative to the data folder, reason)
    label_rule: str
    paper: str  # the paper's figure, or "n/a"
    paper_note: str  # why n/a, or where the figure comes from
    rows: list[ValRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "litevit.val/1",
            **{key: value for key, value in asdict(self).items() if key not in ("rows", "unreadable")},
            "unreadable": [{"path": path, "reason": reason} for path, reason in self.unreadable],
            "rows": [asdict(row) for row in self.rows],
        }


# --------------------------------------------------------------------------------------------
# Classification: class folders -> class indices


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


def _labelled_images(root: Path, num_classes: int, label_set: str) -> tuple[list[Path], list[int], str]:
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


# --------------------------------------------------------------------------------------------
# Segmentation: image/mask pairs


def _image_mask_pairs(root: Path) -> dict[Path, Path]:
    """Every image under ``root/images`` with its mask under ``root/annotations``."""
    if not root.is_dir():
        raise DataError(f"the data folder {str(root)!r} does not exist or is not a folder.")
    for name in (SEG_IMAGES, SEG_MASKS):
        if not (root / name).is_dir():
            raise DataError(
                f"the data folder {str(root)!r} has no {name}/ folder: a segmenter is validated on image/"
                f"mask pairs, DIR/{SEG_IMAGES}/X.jpg with DIR/{SEG_MASKS}/X.png (ADE20K layout)."
            )
    images = list_images(root / SEG_IMAGES, what="image folder")
    mask_of = {
        image: root / SEG_MASKS / image.relative_to(root / SEG_IMAGES).with_suffix(".png") for image in images
    }
    unpaired = [image for image, mask in mask_of.items() if not mask.is_file()]
    if unpaired:
        first = unpaired[0].relative_to(root / SEG_IMAGES)
        raise DataError(
            f"{len(unpaired)} image(s) have no mask, e.g. {SEG_IMAGES}/{first.as_posix()} (expected "
            f"{SEG_MASKS}/{first.with_suffix('.png').as_posix()})."
        )
    return mask_of


def _mask_labels(mask: Image.Image, prep: Preprocessing, name: str, num_classes: int) -> np.ndarray:
    """A mask in the image's geometry (nearest-neighbour) -> int64 labels, ``_IGNORED`` where ignored."""
    from PIL import Image as PILImage

    if mask.mode not in ("L", "P", "I", "I;16"):
        raise DataError(
            f"the mask {name} is a {mask.mode} image; masks hold one class value per pixel (8- or 16-bit "
            f"single channel, {MASK_RULE})."
        )
    values = np.asarray(prep.geometry(mask, PILImage.Resampling.NEAREST)).astype(np.int64)
    label = values - 1
    label[np.isin(values, MASK_IGNORE_VALUES)] = _IGNORED
    beyond = label >= num_classes
    if beyond.any():
        raise DataError(
            f"the mask {name} holds value {int(values[beyond].max())}, beyond the model's {num_classes} "
            f"classes ({MASK_RULE})."
        )
    return label


def _load_pairs(
    pairs: Sequence[tuple[Path, Path]], prep: Preprocessing, root: Path, num_classes: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[Path, str]]]:
    """Preprocessed images (N, 3, H, W), their masks' labels (N, H, W), and the unreadable files."""
    from PIL import Image as PILImage

    arrays, masks, unreadable = [], [], []
    for image_path, mask_path in pairs:
        current = image_path
        try:
            with PILImage.open(image_path) as image:
                image.load()
                pixels = prep(image)
                size = image.size
            current = mask_path
            with PILImage.open(mask_path) as mask:
                mask.load()
                if mask.size != size:
                    raise DataError(
                        f"the mask {mask_path.relative_to(root).as_posix()} is {mask.size[0]}x{mask.size[1]} "
                        f"but its image is {size[0]}x{size[1]}."
                    )
                labels = _mask_labels(mask, prep, mask_path.relative_to(root).as_posix(), num_classes)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three for bad files
            unreadable.append((current, unreadable_reason(exc)))
            continue
        arrays.append(pixels)
        masks.append(labels)
    if not arrays:
        return (
            np.zeros((0, 3, prep.height, prep.width), np.float32),
            np.zeros((0, prep.height, prep.width), np.int64),
            unreadable,
        )
    return np.stack(arrays), np.stack(masks), unreadable


# --------------------------------------------------------------------------------------------
# Scores


class _TopK:
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


class _Confusion:
    """Confusion matrix (rows: mask class, columns: predicted class) over non-ignored pixels."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def update(self, predicted: np.ndarray, labels: np.ndarray) -> None:
        scored = labels != _IGNORED
        pairs = labels[scored] * self.num_classes + predicted[scored].astype(np.int64)
        self.matrix += np.bincount(pairs, minlength=self.num_classes**2).reshape(self.matrix.shape)

    def per_class_iou(self) -> np.ndarray:
        """IoU per class in [0, 1]; NaN for a class in neither the masks nor the predictions."""
        hits = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(axis=0) + self.matrix.sum(axis=1) - hits
        with np.errstate(invalid="ignore", divide="ignore"):
            return hits / union

    def scores(self) -> dict[str, float]:
        """mIoU over the classes seen (mmseg's nan-mean) and pixel accuracy, in percent; the caller
        makes sure some pixel was scored."""
        return {
            "mIoU": 100.0 * float(np.nanmean(self.per_class_iou())),
            "pixel acc": 100.0 * float(np.trace(self.matrix) / self.matrix.sum()),
        }


def segmentation_labels(output: np.ndarray, seg_output: str, size: tuple[int, int]) -> np.ndarray:
    """The graph's output -> (B, H, W) labels at the input size: ``labels`` graphs already did
    it in the graph; ``logits`` graphs give class scores at a lower resolution, resized bilinearly
    (align_corners=False, as the ``labels`` graph and mmseg do) before the argmax."""
    if seg_output == "labels":
        return output
    return resize_bilinear(output.astype(np.float32), size).argmax(axis=1)


# --------------------------------------------------------------------------------------------
# Running


def _checked(items: Sequence[str], known: Sequence[str], what: str) -> tuple[str, ...]:
    """``items`` without repeats, in order; one sentence for an unknown one or none at all."""
    unique = tuple(dict.fromkeys(items))
    if not unique:
        raise LitevitError(f"no {what} given; choose from {', '.join(known)}.")
    for item in unique:
        if item not in known:
            raise LitevitError(f"unknown {what} {item!r}; choose from {', '.join(known)}.")
    return unique


def _comma_list(text: str, known: Sequence[str], what: str) -> tuple[str, ...]:
    return _checked([item.strip() for item in text.split(",") if item.strip()], known, what)


def _batch_size(manifest: dict[str, Any], batch: int | None) -> int:
    exported = manifest["inputs"][0]["shape"][0]
    if isinstance(exported, int) and exported > 0:
        if batch is not None and batch != exported:
            raise LitevitError(
                f"the artefact takes a fixed batch of {exported} (exported without --dynamic-batch); "
                f"--batch {batch} cannot be used with it."
            )
        return exported
    return batch if batch is not None else DEFAULT_DYNAMIC_BATCH


def _run_batch(runner: Runner, images: np.ndarray) -> np.ndarray:
    """The first output for ``images``; a fixed-batch graph gets zero padding, whose outputs are dropped."""
    info = runner.inputs()[0]
    count = len(images)
    if isinstance(info.shape[0], int) and count < info.shape[0]:
        padding = np.zeros((info.shape[0] - count, *images.shape[1:]), images.dtype)
        images = np.concatenate([images, padding])
    output = runner.infer({info.name: images.astype(info.dtype, copy=False)})[runner.outputs()[0].name]
    return output[:count]


def _paper_figure(manifest: dict[str, Any]) -> tuple[str, str]:
    if manifest.get("model_kwargs"):
        return "n/a", (
            f"built with model_kwargs ({', '.join(manifest['model_kwargs'])}), so not the paper's "
            f"{manifest['model']}"
        )
    paper = manifest.get("paper")  # written by the export, so a torch-free target has it
    if paper is None:
        if not has("torch"):
            return "n/a", "this artefact's manifest predates the paper figure and the registry needs torch"
        from dataclasses import asdict

        from litevit.models import get_model_cfg

        paper = asdict(get_model_cfg(manifest["model"]).paper)
    if not paper["metric"]:
        return "n/a", f"no published accuracy is recorded for {manifest['model']}"
    return paper["metric"], f"{paper['source']}; the paper's data and protocol, not yours"


def validate(
    artifact: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    backends: Sequence[str] = ("ort",),
    precisions: Sequence[str] = ("fp32",),
    batch: int | None = None,
    limit: int | None = None,
    threads: int | None = None,
    progress: bool = True,
    split: str | None = None,
) -> ValResult:
    """Score the artefact folder ``artifact`` on the labelled folder ``data`` with every backend x
    precision (module docstring: layouts, rules, metrics).

    ``limit`` takes that many images spread evenly over the sorted file list (every class
    represented); unreadable ones among them are excluded, not replaced. Raises
    :class:`DataError` (one sentence) for data that cannot be scored.
    """
    if limit is not None and limit < 1:
        raise LitevitError(f"--limit must be at least 1; got {limit}.")
    if batch is not None and batch < 1:
        raise LitevitError(f"--batch must be at least 1; got {batch}.")
    keys = [
        (backend, precision)
        for backend in _checked(backends, BACKENDS, "backend")
        for precision in _checked(precisions, PRECISIONS, "precision")
    ]
    folder = Path(artifact)
    manifest = read_manifest(folder)
    task = manifest["task"]
    if task in DETECTION_TASKS:  # COCO data, AP and PQ: litevit.calibration.val_detection
        from litevit.calibration.val_detection import validate_detection

        return validate_detection(
            folder, manifest, Path(data), keys, split=split, limit=limit, threads=threads, progress=progress
        )
    classifier = task == "classification"
    num_classes = int(manifest["data_config"]["num_classes"])
    seg_output = manifest.get("seg_output") or "logits"
    prep = Preprocessing.from_manifest(manifest)
    chunk = _batch_size(manifest, batch)
    root = Path(data)

    if classifier:
        paths, labels, label_rule = _labelled_images(root, num_classes, manifest["data_config"]["label_set"])
        label_of = dict(strict_zip(paths, labels))
    else:
        mask_of = _image_mask_pairs(root)
        paths, label_rule = list(mask_of), MASK_RULE
    chosen = evenly_spaced(paths, limit) if limit is not None else paths

    runners: dict[tuple[str, str], Runner] = {}
    try:
        # Open every runner first: a missing FP16 graph or engine is reported before any work.
        for backend, precision in keys:
            cpu_threads = None if backend == "trt" else threads  # an engine runs on the GPU
            runners[backend, precision] = open_runner(
                folder, backend, precision=precision, threads=cpu_threads
            )
        meters: dict[tuple[str, str], _TopK | _Confusion] = {
            key: _TopK(min(5, num_classes)) if classifier else _Confusion(num_classes) for key in keys
        }
        unreadable: list[tuple[Path, str]] = []
        scored = 0
        bar = Progress(progress, len(chosen), f"val {manifest['model']}", unit="images")
        # Each chunk is decoded once and fed to every runner.
        for start in range(0, len(chosen), chunk):
            part = chosen[start : start + chunk]
            if classifier:
                loaded = load_images(part, prep)
                images, unreadable_here = loaded.arrays, loaded.unreadable
                truth = np.asarray([label_of[path] for path in loaded.paths], np.int64)
            else:
                images, truth, unreadable_here = _load_pairs(
                    [(path, mask_of[path]) for path in part], prep, root, num_classes
                )
            unreadable.extend(unreadable_here)
            scored += len(images)
            if len(images):
                for key, runner in runners.items():
                    output = _run_batch(runner, images)
                    meter = meters[key]
                    if isinstance(meter, _TopK):
                        meter.update(output, truth)
                    else:
                        meter.update(
                            segmentation_labels(output, seg_output, (prep.height, prep.width)), truth
                        )
            bar.update(len(part))
        bar.close()
    finally:
        for runner in runners.values():
            runner.close()

    if not scored:
        raise DataError(f"no readable image in {str(root)!r}: {describe_unreadable(unreadable, root)}.")
    if not classifier and not any(
        meter.matrix.any() for meter in meters.values() if isinstance(meter, _Confusion)
    ):
        raise DataError(f"every mask pixel in {str(root)!r} is ignored ({MASK_RULE}): nothing to score.")

    paper, paper_note = _paper_figure(manifest)
    if classifier:
        columns = ["top-1", "top-5"] if num_classes >= 5 else ["top-1"]
    else:
        columns = ["mIoU", "pixel acc"]
    result = ValResult(
        artifact=str(folder),
        model=manifest["model"],
        task=task,
        data=str(root),
        metric=columns[0],
        columns=columns,
        batch=chunk,
        images=scored,
        unreadable=[(path.relative_to(root).as_posix(), reason) for path, reason in unreadable],
        label_rule=label_rule,
        paper=paper,
        paper_note=paper_note,
    )
    for (backend, precision), meter in meters.items():
        per_class = None
        if isinstance(meter, _Confusion):
            per_class = [None if np.isnan(iou) else 100.0 * float(iou) for iou in meter.per_class_iou()]
        result.rows.append(ValRow(backend, precision, scored, meter.scores(), per_class_iou=per_class))
    fp32 = {row.backend: row.scores[result.metric] for row in result.rows if row.precision == "fp32"}
    for row in result.rows:
        if row.precision != "fp32" and row.backend in fp32:
            row.delta = row.scores[result.metric] - fp32[row.backend]
    if len(chosen) < len(paths):
        result.notes.append(
            f"--limit {limit}: {len(chosen)} of {len(paths)} images, spread evenly over the sorted file list"
        )
    if unreadable:
        result.notes.append(f"excluded {describe_unreadable(unreadable, root, limit=10)}")
    if not classifier:
        result.notes.append(
            f"scored at the graph's input size {prep.height}x{prep.width} (masks resized nearest-neighbour); "
            f"the paper scores at each image's original size"
        )
    return result


# --------------------------------------------------------------------------------------------
# Output and command line


def format_val(result: ValResult) -> str:
    """The table (one row per backend x precision) and what a reader needs to trust it."""
    delta_name = f"Δ{result.metric} vs fp32"
    header = ["model", "backend", "precision", "images", *result.columns, delta_name, "paper"]
    rows = [header]
    for row in result.rows:
        rows.append(
            [
                result.model,
                row.backend,
                row.precision,
                str(row.images),
                *(f"{row.scores[name]:.2f}" for name in result.columns),
                "-" if row.delta is None else f"{row.delta:+.2f}",
                result.paper,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    table = "\n".join(
        "  ".join(cell.ljust(width) for cell, width in strict_zip(r, widths)).rstrip() for r in rows
    )
    lines = [
        f"{result.model} ({result.task}) on {result.data}: {result.images} images, batch {result.batch}",
        f"labels: {result.label_rule}",
        table,
        f"paper: {result.paper} ({result.paper_note})",
        *result.notes,
    ]
    return "\n".join(lines)


def configure_val_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``litevit val ARTIFACT --data DIR ...``."""
    parser.add_argument("artifact", help="artefact folder written by litevit-export (holds manifest.json)")
    parser.add_argument(
        "--data",
        required=True,
        help=f"labelled images: DIR/<class>/*.jpg|png for classifiers; DIR/{SEG_IMAGES}/X.jpg + "
        f"DIR/{SEG_MASKS}/X.png for segmenters ({MASK_RULE}); COCO instances / panoptic layouts for "
        f"detectors (DIR/annotations/instances_<split>.json or panoptic_<split>.json, DIR/images/)",
    )
    parser.add_argument(
        "--backend", default="ort", help=f"comma-separated, of {','.join(BACKENDS)} (default ort)"
    )
    parser.add_argument(
        "--precision", default="fp32", help=f"comma-separated, of {','.join(PRECISIONS)} (default fp32)"
    )
    parser.add_argument("--limit", type=int, help="score N images spread evenly over the folder")
    parser.add_argument(
        "--split", help="detectors: the COCO split to score when DIR/annotations holds several"
    )
    parser.add_argument(
        "--batch",
        type=int,
        help=f"batch for a dynamic-batch artefact (default {DEFAULT_DYNAMIC_BATCH}); fixed ones keep theirs",
    )
    parser.add_argument("--threads", type=int, help="CPU threads per runner (ONNX Runtime, torch)")
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON to OUT")


def run_val(args: argparse.Namespace) -> int:
    """``litevit val``: print the table, write ``--json``; exit 0."""
    result = validate(
        args.artifact,
        args.data,
        backends=_comma_list(args.backend, BACKENDS, "backend"),
        precisions=_comma_list(args.precision, PRECISIONS, "precision"),
        batch=args.batch,
        limit=args.limit,
        threads=args.threads,
        progress=True,
        split=args.split,
    )
    print(format_val(result))
    if args.json:
        write_json(args.json, result.to_dict())
        print(f"wrote {args.json}")
    return 0


__all__ = [
    "ClassMapping",
    "ValResult",
    "ValRow",
    "class_mapping",
    "configure_val_parser",
    "format_val",
    "run_val",
    "segmentation_labels",
    "validate",
]
