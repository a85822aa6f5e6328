"""``litevit val`` for segmenters: image/label-PNG pairs, mIoU and pixel accuracy from one confusion matrix.

Layout: ``DIR/images/X.jpg|png`` with ``DIR/annotations/X.png`` (the same relative path), or
``X_labelTrainIds.png`` (the name mmseg's COCO-Stuff converters write). Label PNGs hold one class
value per pixel, read as the data set's mmseg class reads them (:data:`litevit.labels.REDUCE_ZERO_LABEL`,
overridable): with ``reduce_zero_label`` value 0 is ignored and k is class k - 1 (ADE20K,
COCO-Stuff-10k, PASCAL-Context-59); without it k is class k (PASCAL-Context with background);
255 is ignored in both. A value beyond the model's classes is refused, naming the file.

Two protocols:

- ``test`` (the published one, what mmseg's ``tools/test.py`` does): each image runs through the
  model's test protocol (:mod:`litevit.runtime.seg_protocols`: keep-ratio resize, whole image or
  sliding windows through the graph, optionally multi-scale + flip) and is scored at its
  **original size** against its unresized label PNG. Needs an artefact with class-score output
  (``--seg-output logits``), and one exported with ``--dynamic-hw`` for whole-image protocols
  (sliding windows run at the window size the SegViT artefacts are exported at).
- ``resize`` (any artefact): the whole image resized to the graph's input size, labels
  nearest-neighbour to the same grid, scored at that size; quick, but not the paper's protocol.

mIoU is the mean over classes present in the labels or the predictions (mmseg's nan-mean).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from litevit._progress import Progress
from litevit.calibration.images import Preprocessing, evenly_spaced, list_images, unreadable_reason
from litevit.calibration.val.classification import Scored
from litevit.calibration.val.common import run_batch
from litevit.errors import DataError
from litevit.runtime.bench import resize_bilinear
from litevit.runtime.runners import Runner
from litevit.runtime.seg_protocols import GraphScores, SegTestProtocol, predict

if TYPE_CHECKING:
    from PIL import Image

SEG_IMAGES = "images"
SEG_MASKS = "annotations"
MASK_SUFFIXES = (".png", "_labelTrainIds.png")
SEG_PROTOCOLS = ("resize", "test")
IGNORE_INDEX = 255
IGNORED = -1  # internal label of ignored pixels


def mask_rule(reduce_zero_label: bool) -> str:
    if reduce_zero_label:
        return "mask value 0 and 255 = ignored, k = class k-1 (mmseg's reduce_zero_label, as for ADE20K)"
    return (
        "mask value 255 = ignored, k = class k (no reduce_zero_label, as for PASCAL-Context with background)"
    )


MASK_RULE = mask_rule(True)


def reduce_zero_label_for(label_set: str, override: bool | None) -> bool:
    """The data set's rule (mmseg's dataset class), unless the user said otherwise; the ADE20K rule
    for label sets litevit does not know."""
    if override is not None:
        return override
    from litevit.labels import REDUCE_ZERO_LABEL

    return REDUCE_ZERO_LABEL.get(label_set, True)


def image_mask_pairs(root: Path) -> dict[Path, Path]:
    """Every image under ``root/images`` with its label PNG under ``root/annotations``."""
    if not root.is_dir():
        raise DataError(f"the data folder {str(root)!r} does not exist or is not a folder.")
    for name in (SEG_IMAGES, SEG_MASKS):
        if not (root / name).is_dir():
            raise DataError(
                f"the data folder {str(root)!r} has no {name}/ folder: a segmenter is validated on image/"
                f"mask pairs, DIR/{SEG_IMAGES}/X.jpg with DIR/{SEG_MASKS}/X.png (ADE20K layout)."
            )
    images = list_images(root / SEG_IMAGES, what="image folder")
    mask_of: dict[Path, Path] = {}
    unpaired = []
    for image in images:
        stem = (root / SEG_MASKS / image.relative_to(root / SEG_IMAGES)).with_suffix("")
        candidates = [stem.with_name(stem.name + suffix) for suffix in MASK_SUFFIXES]
        found = [path for path in candidates if path.is_file()]
        if found:
            mask_of[image] = found[0]
        else:
            unpaired.append(image)
    if unpaired:
        first = unpaired[0].relative_to(root / SEG_IMAGES)
        raise DataError(
            f"{len(unpaired)} image(s) have no mask, e.g. {SEG_IMAGES}/{first.as_posix()} (expected "
            f"{SEG_MASKS}/{first.with_suffix('.png').as_posix()} or the _labelTrainIds.png name)."
        )
    return mask_of


def mask_labels(values: np.ndarray, name: str, num_classes: int, reduce_zero_label: bool) -> np.ndarray:
    """Label PNG values -> int64 class labels, :data:`IGNORED` where ignored."""
    values = values.astype(np.int64)
    label = values - 1 if reduce_zero_label else values.copy()
    ignored = values == IGNORE_INDEX
    if reduce_zero_label:
        ignored |= values == 0
    label[ignored] = IGNORED
    beyond = label >= num_classes
    if beyond.any():
        raise DataError(
            f"the mask {name} holds value {int(values[beyond].max())}, beyond the model's {num_classes} "
            f"classes ({mask_rule(reduce_zero_label)})."
        )
    return label


def _mask_values(mask: Image.Image, name: str, reduce_zero_label: bool) -> Image.Image:
    if mask.mode not in ("L", "P", "I", "I;16"):
        raise DataError(
            f"the mask {name} is a {mask.mode} image; masks hold one class value per pixel (8- or 16-bit "
            f"single channel, {mask_rule(reduce_zero_label)})."
        )
    return mask


def _read_pair(
    image_path: Path, mask_path: Path, root: Path
) -> tuple[Image.Image | None, Image.Image | None, tuple[Path, str] | None]:
    """Decode an image (RGB) and its mask, or say which file could not be read and why."""
    from PIL import Image as PILImage

    current = image_path
    try:
        with PILImage.open(image_path) as image:
            image.load()
            rgb = image.convert("RGB")
        current = mask_path
        with PILImage.open(mask_path) as mask:
            mask.load()
            if mask.size != rgb.size:
                raise DataError(
                    f"the mask {mask_path.relative_to(root).as_posix()} is {mask.size[0]}x{mask.size[1]} "
                    f"but its image is {rgb.size[0]}x{rgb.size[1]}."
                )
            return rgb, mask.copy(), None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three for bad files
        return None, None, (current, unreadable_reason(exc))


class Confusion:
    """Confusion matrix (rows: mask class, columns: predicted class) over non-ignored pixels."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def update(self, predicted: np.ndarray, labels: np.ndarray) -> None:
        scored = labels != IGNORED
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


def score_segmenter(
    runners: dict[tuple[str, str], Runner],
    manifest: dict[str, Any],
    root: Path,
    chunk: int,
    limit: int | None,
    progress: bool,
    protocol: SegTestProtocol | None,
    reduce_zero_label: bool | None,
) -> Scored:
    """mIoU of every runner: by the published ``protocol`` at each image's original size, or, with
    ``protocol=None``, with the image resized to the graph's input size."""
    from PIL import Image as PILImage

    data_config = manifest["data_config"]
    num_classes = int(data_config["num_classes"])
    reduce_zero = reduce_zero_label_for(data_config.get("label_set", "custom"), reduce_zero_label)
    mask_of = image_mask_pairs(root)
    paths = list(mask_of)
    chosen = evenly_spaced(paths, limit) if limit is not None else paths
    meters = {key: Confusion(num_classes) for key in runners}
    graphs = (
        {key: GraphScores(runner, manifest, chunk) for key, runner in runners.items()} if protocol else {}
    )
    prep = Preprocessing.from_manifest(manifest)
    seg_output = manifest.get("seg_output") or "logits"
    unreadable: list[tuple[Path, str]] = []
    scored = 0
    bar = Progress(progress, len(chosen), f"val {manifest['model']}", unit="images")
    step = 1 if protocol else chunk
    for start in range(0, len(chosen), step):
        images, truths = [], []
        for image_path in chosen[start : start + step]:
            image, mask, problem = _read_pair(image_path, mask_of[image_path], root)
            if problem is not None:
                unreadable.append(problem)
                continue
            assert image is not None and mask is not None
            name = mask_of[image_path].relative_to(root).as_posix()
            _mask_values(mask, name, reduce_zero)
            if protocol:
                images.append(np.asarray(image, dtype=np.uint8))
                truths.append(mask_labels(np.asarray(mask), name, num_classes, reduce_zero))
            else:
                images.append(prep(image))
                grid = np.asarray(prep.geometry(mask, PILImage.Resampling.NEAREST))
                truths.append(mask_labels(grid, name, num_classes, reduce_zero))
        scored += len(images)
        if images and protocol:
            for key in runners:
                meters[key].update(predict(images[0], protocol, graphs[key], data_config), truths[0])
        elif images:
            batch = np.stack(images)
            truth = np.stack(truths)
            for key, runner in runners.items():
                output = run_batch(runner, batch)
                meters[key].update(segmentation_labels(output, seg_output, (prep.height, prep.width)), truth)
        bar.update(min(step, len(chosen) - start))
    bar.close()
    if scored and not any(meter.matrix.any() for meter in meters.values()):
        raise DataError(
            f"every mask pixel in {str(root)!r} is ignored ({mask_rule(reduce_zero)}): nothing to score."
        )
    return Scored(dict(meters), scored, len(paths), unreadable, mask_rule(reduce_zero), ["mIoU", "pixel acc"])
