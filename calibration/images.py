"""Image folders and the model's preprocessing, without torch.

Calibration, ``litevit val`` and serving all turn image files into the array the graph takes the
same way: the preprocessing facts come from the artefact's ``manifest.json`` (``data_config``), so
the numbers the engine sees at calibration time are the ones it sees in service.

- Classification (timm's evaluation transform): resize the shorter side to
  ``floor(size / crop_pct)`` with the model's interpolation, centre-crop to the input size.
- Segmentation: resize the whole image to the graph's input size (a fixed-size engine sees the
  whole scene; masks follow with nearest-neighbour, see :meth:`Preprocessing.plan`).

Then pixels go to ``[0, pixel_scale]`` and are normalised with the config's mean and std.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from litevit.errors import DataError

T = TypeVar("T")

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def list_images(root: str | os.PathLike[str], *, what: str = "image folder") -> list[Path]:
    """Every JPEG/PNG under ``root`` (recursive), in a deterministic order: sorted by the path
    relative to ``root``. Raises :class:`DataError` for a missing folder or one with no images."""
    folder = Path(root)
    if not folder.exists():
        raise DataError(f"the {what} {str(folder)!r} does not exist.")
    if not folder.is_dir():
        raise DataError(f"the {what} {str(folder)!r} is not a folder.")
    paths = sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not paths:
        raise DataError(
            f"the {what} {str(folder)!r} has no images (looked for {', '.join(IMAGE_SUFFIXES)} files, "
            f"recursively)."
        )
    return paths


def evenly_spaced(paths: Sequence[T], count: int) -> list[T]:
    """``count`` of ``paths`` spread evenly over the sorted list (every class of a class-per-folder
    layout is represented), or all of them when there are no more than ``count``."""
    if count >= len(paths):
        return list(paths)
    return [paths[(i * len(paths)) // count] for i in range(count)]


@dataclass(frozen=True)
class ResizePlan:
    """Resize to ``size`` (width, height), then crop ``box`` (left, top, right, bottom)."""

    size: tuple[int, int]
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Preprocessing:
    """The model's test-time preprocessing for one graph input size (height, width)."""

    task: str
    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pixel_scale: float
    interpolation: str
    crop_pct: float | None

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], size: Sequence[int] | None = None) -> Preprocessing:
        """From an artefact manifest; ``size`` (H, W) overrides the exported size (dynamic H x W)."""
        config = manifest["data_config"]
        height, width = size if size is not None else manifest["img_size"]
        return cls(
            task=manifest["task"],
            height=int(height),
            width=int(width),
            mean=tuple(float(v) for v in config["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in config["std"]),  # type: ignore[arg-type]
            pixel_scale=float(config["pixel_scale"]),
            interpolation=str(config["interpolation"]),
            crop_pct=None if config.get("crop_pct") is None else float(config["crop_pct"]),
        )

    def fingerprint(self) -> str:
        """SHA-256 of every fact that changes the numbers the graph sees (for calibration keys)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def plan(self, width: int, height: int) -> ResizePlan:
        """Where an image of ``width`` x ``height`` goes: the same plan applies to its mask."""
        if self.task == "classification" and self.crop_pct is not None:
            # timm: scale_size = floor(img_size / crop_pct), applied to the shorter side.
            short = math.floor(min(self.height, self.width) / self.crop_pct)
            if width <= height:
                size = (short, max(short, round(height * short / width)))
            else:
                size = (max(short, round(width * short / height)), short)
            left = (size[0] - self.width) // 2
            top = (size[1] - self.height) // 2
            return ResizePlan(size, (left, top, left + self.width, top + self.height))
        return ResizePlan((self.width, self.height), (0, 0, self.width, self.height))

    def geometry(self, image: Image.Image, resample: int) -> Image.Image:
        """Apply :meth:`plan` to ``image`` with ``resample`` (masks use nearest-neighbour)."""
        plan = self.plan(*image.size)
        resized = image.resize(plan.size, resample=resample)
        return resized if plan.box == (0, 0, *plan.size) else resized.crop(plan.box)

    def __call__(self, image: Image.Image) -> np.ndarray:
        """A PIL image -> float32 (3, H, W), normalised."""
        from PIL import Image as PILImage

        resample = {"bicubic": PILImage.Resampling.BICUBIC, "bilinear": PILImage.Resampling.BILINEAR}.get(
            self.interpolation, PILImage.Resampling.BILINEAR
        )
        pixels = np.asarray(self.geometry(image.convert("RGB"), resample), dtype=np.float32)
        pixels *= self.pixel_scale / 255.0
        pixels -= np.asarray(self.mean, dtype=np.float32)
        pixels /= np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def load(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Read and preprocess one file; raises ``OSError``/``ValueError`` if it is not a readable image."""
        from PIL import Image as PILImage

        with PILImage.open(path) as image:
            image.load()
            return self(image)


@dataclass
class LoadedImages:
    """Preprocessed images stacked as (N, 3, H, W), the files they came from, and the files that
    could not be read, each with the reason."""

    arrays: np.ndarray
    paths: list[Path]
    unreadable: list[tuple[Path, str]]


def load_images(
    paths: Sequence[Path],
    prep: Preprocessing,
    *,
    on_image: Callable[[], None] | None = None,
) -> LoadedImages:
    """Preprocess ``paths`` in order. A file that cannot be decoded is recorded, never replaced."""
    arrays, loaded, unreadable = [], [], []
    for path in paths:
        try:
            arrays.append(prep.load(path))
            loaded.append(path)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three for bad files
            unreadable.append((path, unreadable_reason(exc)))
        if on_image is not None:
            on_image()
    stacked = np.stack(arrays) if arrays else np.zeros((0, 3, prep.height, prep.width), np.float32)
    return LoadedImages(stacked, loaded, unreadable)


def unreadable_reason(exc: BaseException) -> str:
    """The first line of a decoding error, for naming an unreadable file."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe_unreadable(unreadable: Sequence[tuple[Path, str]], root: Path, limit: int = 3) -> str:
    """'3 unreadable files: a.jpg (cannot identify image file), ...' for messages and reports."""
    shown = ", ".join(f"{p.relative_to(root).as_posix()} ({why})" for p, why in unreadable[:limit])
    more = f" and {len(unreadable) - limit} more" if len(unreadable) > limit else ""
    return f"{len(unreadable)} unreadable file{'s' if len(unreadable) != 1 else ''}: {shown}{more}"
