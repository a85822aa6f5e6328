"""The published segmentation test protocols, run around any runner (ONNX Runtime, torch, TensorRT).

mmsegmentation exports whole-image graphs only; its test tool wraps them in a protocol: a
keep-ratio resize, whole-image or sliding-window inference, optional multi-scale + flip
augmentation, and a resize of the scores back to the original image, where mIoU is scored. This
module does the same on the host with numpy, feeding an exported graph through the
:class:`~litevit.runtime.runners.Runner` interface, so a TensorRT engine on a Jetson is tested
the way the paper tested the PyTorch model. Semantics, per mmseg 0.11 (ELSA) and 0.24 (SegViT),
which agree on all of it:

* **Resize** (``Resize(keep_ratio=True)`` + ``mmcv.imrescale``): scale factor
  ``min(max(scale) / long side, min(scale) / short side)``, new size ``int(side * factor + 0.5)``.
  With mmseg 0.24's ``min_size`` the target short side is ``max(min(scale), min_size)`` with no
  cap on the long side. SegFormer's ``AlignedResize`` (``size_divisor``) then resizes once more to
  multiples of the divisor. Pixels are resized as uint8 with bilinear interpolation at half-pixel
  centres, no anti-aliasing, rounded (OpenCV's ``INTER_LINEAR``, which mmcv uses), then
  normalised with the model's mean and std.
* **Whole** (``test_cfg.mode='whole'``): the resized image in one graph run.
* **Slide** (``mode='slide'``): windows of ``crop_size`` at ``stride``, ``h_grids =
  max(h - crop + stride - 1, 0) // stride + 1`` (likewise w), each window's origin clamped so it
  ends inside the image (windows are never padded; one smaller than the crop only when the image
  is); scores summed into a canvas and divided by the per-pixel window count. The windows of one
  image go through the graph in batches.
* Every graph output is first resized bilinearly (``align_corners=False``) to the size it was fed
  (``encode_decode``), then to the original image (``rescale=True``).
* **Multi-scale + flip** (``tools/test.py --aug-test``): ``img_scale`` times each ratio
  (0.5 ... 1.75), each also flipped horizontally; every run's scores at the original size go
  through a softmax over classes, flipped runs are flipped back, and the mean is taken before the
  argmax (``EncoderDecoder.aug_test``). A single run skips the softmax (the argmax is the same).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Tuple

import numpy as np

from litevit.errors import LitevitError
from litevit.runtime.bench import resize_bilinear
from litevit.runtime.runners import Runner

MODES = ("whole", "slide")
DEFAULT_WINDOW_BATCH = 8

# (y1, y2, x1, x2) of one window
Window = Tuple[int, int, int, int]


@dataclass(frozen=True)
class SegTestProtocol:
    """One model's test protocol (the ``test_protocol`` of its manifest's ``data_config``)."""

    mode: str
    img_scale: tuple[int, int]
    min_size: int | None = None
    size_divisor: int | None = None
    crop_size: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    ratios: tuple[float, ...] = (1.0,)
    flip: bool = False
    aug_ratios: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
    source: str = ""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SegTestProtocol:
        """From ``ModelCfg.test_protocol`` (as written into a manifest); single-scale, no flip."""
        mode = config.get("mode")
        if mode not in MODES:
            raise LitevitError(f"unknown test protocol mode {mode!r}; known: {', '.join(MODES)}.")

        def pair(value: Any) -> tuple[int, int] | None:
            return None if value is None else (int(value[0]), int(value[1]))

        protocol = cls(
            mode=mode,
            img_scale=(int(config["img_scale"][0]), int(config["img_scale"][1])),
            min_size=config.get("min_size"),
            size_divisor=config.get("size_divisor"),
            crop_size=pair(config.get("crop_size")),
            stride=pair(config.get("stride")),
            aug_ratios=tuple(float(r) for r in config.get("aug_ratios") or (1.0,)),
            source=str(config.get("source", "")),
        )
        if mode == "slide" and (protocol.crop_size is None or protocol.stride is None):
            raise LitevitError("a sliding-window test protocol needs crop_size and stride.")
        return protocol

    def with_aug(self) -> SegTestProtocol:
        """The multi-scale + flip variant (mmseg ``--aug-test``)."""
        return replace(self, ratios=self.aug_ratios, flip=True)

    def scales(self) -> list[tuple[int, int]]:
        """``MultiScaleFlipAug``'s scales: ``(int(long * ratio), int(short * ratio))`` per ratio."""
        return [(int(self.img_scale[0] * r), int(self.img_scale[1] * r)) for r in self.ratios]

    def runs(self) -> list[tuple[tuple[int, int], bool]]:
        """Every (scale, flipped) run, in mmseg's order."""
        flips = (False, True) if self.flip else (False,)
        return [(scale, flipped) for scale in self.scales() for flipped in flips]

    def describe(self) -> str:
        resize = f"keep-ratio resize to {self.img_scale[0]}x{self.img_scale[1]}"
        if self.min_size is not None:
            resize += f" (min_size {self.min_size})"
        if self.size_divisor:
            resize += f", aligned to multiples of {self.size_divisor}"
        if self.mode == "slide":
            assert self.crop_size is not None and self.stride is not None
            infer = (
                f"sliding {self.crop_size[0]}x{self.crop_size[1]} windows at stride "
                f"{self.stride[0]}x{self.stride[1]}, scores averaged"
            )
        else:
            infer = "whole image"
        aug = (
            f"multi-scale {', '.join(f'{r:g}' for r in self.ratios)}{' + flip' if self.flip else ''}, "
            "softmax averaged"
            if len(self.runs()) > 1
            else "single scale"
        )
        return f"{resize}; {infer}; {aug}; scores resized to the original image"


# --------------------------------------------------------------------------------------------
# Geometry


def rescale_size(
    width: int, height: int, scale: tuple[int, int], min_size: int | None = None
) -> tuple[int, int]:
    """(new width, new height) of mmseg's keep-ratio ``Resize`` (+ ``min_size``) via ``mmcv.imrescale``."""
    target: tuple[float, float] = (float(scale[0]), float(scale[1]))
    if min_size is not None:
        short = min_size if min(scale) < min_size else min(scale)
        target = (
            (short * height / width, float(short))
            if height > width
            else (float(short), short * width / height)
        )
    factor = min(max(target) / max(height, width), min(target) / min(height, width))
    return int(width * factor + 0.5), int(height * factor + 0.5)


def resize_uint8(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8 at ``size`` = (h, w): bilinear at half-pixel centres, no
    anti-aliasing, rounded (what OpenCV's INTER_LINEAR gives up to its fixed-point rounding)."""
    if image.shape[:2] == tuple(size):
        return image
    resized = resize_bilinear(image.transpose(2, 0, 1).astype(np.float32), size)
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def protocol_input(image: np.ndarray, protocol: SegTestProtocol, scale: tuple[int, int]) -> np.ndarray:
    """The image mmseg's test pipeline feeds the model for one scale (uint8 HWC, RGB)."""
    height, width = image.shape[:2]
    new_w, new_h = rescale_size(width, height, scale, protocol.min_size)
    resized = resize_uint8(image, (new_h, new_w))
    divisor = protocol.size_divisor
    if divisor:
        aligned = (math.ceil(new_h / divisor) * divisor, math.ceil(new_w / divisor) * divisor)
        resized = resize_uint8(resized, aligned)
    return resized


def normalize(image: np.ndarray, data_config: dict[str, Any]) -> np.ndarray:
    """uint8 HWC RGB -> float32 CHW in the model's units (pixel scale, mean, std)."""
    pixels = image.astype(np.float32) * np.float32(float(data_config["pixel_scale"]) / 255.0)
    pixels -= np.asarray(data_config["mean"], dtype=np.float32)
    pixels /= np.asarray(data_config["std"], dtype=np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def slide_windows(height: int, width: int, crop: tuple[int, int], stride: tuple[int, int]) -> list[Window]:
    """mmseg ``slide_inference``'s windows (y1, y2, x1, x2), row by row."""
    h_grids = max(height - crop[0] + stride[0] - 1, 0) // stride[0] + 1
    w_grids = max(width - crop[1] + stride[1] - 1, 0) // stride[1] + 1
    windows = []
    for row in range(h_grids):
        for col in range(w_grids):
            y2 = min(row * stride[0] + crop[0], height)
            x2 = min(col * stride[1] + crop[1], width)
            windows.append((max(y2 - crop[0], 0), y2, max(x2 - crop[1], 0), x2))
    return windows


def softmax(scores: np.ndarray, axis: int = 0) -> np.ndarray:
    shifted = scores - scores.max(axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted


# --------------------------------------------------------------------------------------------
# The graph, batched


class GraphScores:
    """Class scores of a batch of normalised images through one runner, at the size they were fed.

    Takes an artefact whose output is class scores (``--seg-output logits``). A fixed batch axis
    gets zero padding (its outputs are dropped); a dynamic one takes up to ``batch`` at a time.
    ``calls`` counts graph runs (for reports).
    """

    def __init__(self, runner: Runner, manifest: dict[str, Any], batch: int | None = None) -> None:
        seg_output = manifest.get("seg_output") or "logits"
        if seg_output != "logits":
            raise LitevitError(
                f"the test protocols average class scores, but {manifest['model']}'s artefact outputs "
                f"{seg_output}: export it with --seg-output logits."
            )
        self.runner = runner
        info = runner.inputs()[0]
        self.input_name = info.name
        self.dtype = np.dtype(info.dtype)
        self.fixed_batch = info.shape[0] if isinstance(info.shape[0], int) and info.shape[0] > 0 else None
        self.fixed_hw = (
            (int(info.shape[2]), int(info.shape[3]))
            if all(isinstance(d, int) and d > 0 for d in info.shape[2:])
            else None
        )
        self.batch = self.fixed_batch or batch or DEFAULT_WINDOW_BATCH
        self.output_name = runner.outputs()[0].name
        self.calls = 0

    def check_size(self, size: tuple[int, int], what: str) -> None:
        if self.fixed_hw is not None and tuple(size) != self.fixed_hw:
            raise LitevitError(
                f"the protocol feeds {what} of {size[0]}x{size[1]}, but the artefact was exported for "
                f"{self.fixed_hw[0]}x{self.fixed_hw[1]} only: re-export it with --dynamic-hw"
                + (" (or at the window size)" if what == "windows" else "")
                + "."
            )

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) -> (N, C, h, w) scores, resized to (h, w) when the graph returns another size."""
        outputs = []
        for start in range(0, len(images), self.batch):
            part = images[start : start + self.batch]
            count = len(part)
            if self.fixed_batch is not None and count < self.fixed_batch:
                part = np.concatenate(
                    [part, np.zeros((self.fixed_batch - count, *part.shape[1:]), part.dtype)]
                )
            result = self.runner.infer({self.input_name: part.astype(self.dtype, copy=False)})
            self.calls += 1
            outputs.append(np.asarray(result[self.output_name][:count], dtype=np.float32))
        scores = np.concatenate(outputs)
        if scores.shape[-2:] != images.shape[-2:]:
            scores = resize_bilinear(scores, images.shape[-2:])
        return scores


def infer_scores(image: np.ndarray, protocol: SegTestProtocol, graph: GraphScores) -> np.ndarray:
    """One normalised image (3, h, w) -> class scores (C, h, w) by whole or sliding-window inference."""
    height, width = image.shape[-2:]
    if protocol.mode == "whole":
        graph.check_size((height, width), "whole images")
        return graph(image[None])[0]
    assert protocol.crop_size is not None and protocol.stride is not None
    windows = slide_windows(height, width, protocol.crop_size, protocol.stride)
    for y1, y2, x1, x2 in windows:
        graph.check_size((y2 - y1, x2 - x1), "windows")
    crops = np.stack([image[:, y1:y2, x1:x2] for y1, y2, x1, x2 in windows])
    scores = graph(crops)
    canvas = np.zeros((scores.shape[1], height, width), np.float32)
    count = np.zeros((height, width), np.float32)
    for (y1, y2, x1, x2), window_scores in zip(windows, scores):
        canvas[:, y1:y2, x1:x2] += window_scores
        count[y1:y2, x1:x2] += 1.0
    return canvas / count


def predict(
    image: np.ndarray,
    protocol: SegTestProtocol,
    graph: GraphScores,
    data_config: dict[str, Any],
    scores_at_original: Callable[[np.ndarray], None] | None = None,
) -> np.ndarray:
    """One uint8 RGB image (H, W, 3) -> int64 labels (H, W) at the original size, by the protocol.

    ``scores_at_original`` (tests, reports) receives the aggregated (C, H, W) scores.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise LitevitError(f"predict takes an (H, W, 3) uint8 RGB image; got {image.dtype} {image.shape}.")
    height, width = image.shape[:2]
    runs = protocol.runs()
    total: np.ndarray | None = None
    for scale, flipped in runs:
        resized = protocol_input(image, protocol, scale)
        if flipped:
            resized = resized[:, ::-1]
        scores = resize_bilinear(
            infer_scores(normalize(resized, data_config), protocol, graph), (height, width)
        )
        if len(runs) > 1:
            scores = softmax(scores, axis=0)
        if flipped:
            scores = scores[:, :, ::-1]
        total = scores if total is None else total + scores
    assert total is not None
    total = total / np.float32(len(runs))
    if scores_at_original is not None:
        scores_at_original(total)
    return total.argmax(axis=0)


def protocol_for(manifest: dict[str, Any], aug: bool = False) -> SegTestProtocol:
    """The artefact's published test protocol; one sentence when its manifest has none."""
    config = (manifest.get("data_config") or {}).get("test_protocol")
    if not config:
        raise LitevitError(
            f"{manifest['model']}'s artefact records no test protocol (exported before litevit knew it, or "
            f"not a segmentation model with a published one): re-export it."
        )
    protocol = SegTestProtocol.from_config(config)
    return protocol.with_aug() if aug else protocol


def check_artifact(manifest: dict[str, Any], protocol: SegTestProtocol) -> None:
    """Refuse, before any work, an artefact the protocol cannot run (one sentence each)."""
    seg_output = manifest.get("seg_output") or "logits"
    if seg_output != "logits":
        raise LitevitError(
            f"the test protocol averages class scores, but this {manifest['model']} artefact outputs "
            f"{seg_output}: export it with --seg-output logits."
        )
    axes = {str(axis) for axis in manifest.get("dynamic_axes", {}).get("input", {})}
    dynamic_hw = {"2", "3"} <= axes
    if protocol.mode == "whole" and not dynamic_hw:
        raise LitevitError(
            f"{manifest['model']}'s test protocol runs each image whole at its own resized size, but the "
            f"artefact takes {manifest['img_size'][0]}x{manifest['img_size'][1]} only: export it with "
            f"--dynamic-hw."
        )
    if protocol.mode == "slide" and not dynamic_hw:
        assert protocol.crop_size is not None
        if tuple(manifest["img_size"]) != tuple(protocol.crop_size):
            raise LitevitError(
                f"{manifest['model']}'s test protocol slides {protocol.crop_size[0]}x{protocol.crop_size[1]} "
                f"windows, but the artefact takes {manifest['img_size'][0]}x{manifest['img_size'][1]}: "
                f"export it at the window size or with --dynamic-hw."
            )


def window_count(height: int, width: int, protocol: SegTestProtocol) -> int:
    """How many graph inputs one image of (height, width) takes, over every run of the protocol."""
    total = 0
    for scale, _ in protocol.runs():
        new_w, new_h = rescale_size(width, height, scale, protocol.min_size)
        if protocol.mode == "slide":
            assert protocol.crop_size is not None and protocol.stride is not None
            total += len(slide_windows(new_h, new_w, protocol.crop_size, protocol.stride))
        else:
            total += 1
    return total


__all__ = [
    "MODES",
    "check_artifact",
    "GraphScores",
    "SegTestProtocol",
    "infer_scores",
    "normalize",
    "predict",
    "protocol_for",
    "rescale_size",
    "resize_uint8",
    "slide_windows",
    "softmax",
    "protocol_input",
    "window_count",
]
