"""Model registry: ``@register_model(cfg)`` on a builder, ``create_model(name)`` to build.

Every registered model carries a :class:`ModelCfg`: what the deployment side needs to feed it
(input size, preprocessing, label set) and what the paper published (parameters, MACs), so
``litevit info`` and the benchmark can put our measurements next to the paper's.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from litevit.errors import InputSizeError, LitevitError, UnknownModelError

SMOKE_IMG_SIZE = (64, 64)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ImageNet mean/std in 0-255 pixel units, as mmseg configs write them.
IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class PaperFigures:
    """What the paper / official README published, for comparison in ``litevit info``."""

    params_m: float | None = None  # millions of parameters
    gmacs: float | None = None  # GMACs (one fused multiply-add = 1), as the release counted
    resolution: tuple[int, int] | None = None  # (H, W) the MACs were measured at
    metric: str = ""  # e.g. "top-1 74.8" or "mIoU 39.3 (ss)"
    source: str = ""  # where the figures come from
    note: str = ""  # why our count may differ


@dataclass(frozen=True)
class ModelCfg:
    """Static description of one registered model variant.

    ``mean``/``std`` are in the unit given by ``pixel_scale``: 1.0 means inputs in [0, 1]
    (timm convention), 255.0 means raw 0-255 pixels (mmseg convention).
    """

    name: str
    family: str  # "lvt" | "elsa" | "mobile_former" | "segvit"
    task: str  # "classification" | "segmentation" | "detection" | "panoptic"
    input_size: tuple[int, int]  # default (H, W)
    num_classes: int
    label_set: str  # "imagenet1k" | "ade20k150" | "coco80" | "coco_panoptic133" | "custom"
    size_divisor: int  # H and W must be multiples of this
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    pixel_scale: float = 1.0
    interpolation: str = "bicubic"
    crop_pct: float | None = 0.875  # classification: resize to size/crop_pct, centre crop
    seg_resize: str | None = None  # segmentation / detection test-time resize rule, in words
    # Segmentation: the published test protocol as data (mmseg test_cfg + test pipeline), run around
    # any runner by litevit.runtime.seg_protocols; see SegTestProtocol there for the fields.
    test_protocol: dict[str, Any] | None = None
    min_size: tuple[int, int] | None = None  # smallest (H, W) the model can take, if any
    checkpoint: str = ""  # official release file and repository
    paper: PaperFigures = field(default_factory=PaperFigures)
    arch: dict[str, Any] = field(default_factory=dict)  # architecture hyper-parameters
    # A few narrow blocks of the same family (random weights, NOT the paper's model): what tests,
    # CI and on-device self-tests build with ``create_model(name, smoke=True)``.
    smoke_arch: dict[str, Any] = field(default_factory=dict)

    def data_config(self) -> dict[str, Any]:
        """Preprocessing facts for export, calibration, serving."""
        return {
            "input_size": (3, *self.input_size),
            "mean": self.mean,
            "std": self.std,
            "pixel_scale": self.pixel_scale,
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
            "seg_resize": self.seg_resize,
            "test_protocol": self.test_protocol,
            "size_divisor": self.size_divisor,
            "label_set": self.label_set,
            "num_classes": self.num_classes,
        }

    def check_img_size(self, img_size: int | Sequence[int]) -> tuple[int, int]:
        """Validate an (H, W) for this model, raising one sentence naming the constraint."""
        h, w = _as_hw(img_size)
        d = self.size_divisor
        if h <= 0 or w <= 0 or h % d or w % d:
            raise InputSizeError(
                f"{self.name} takes images whose height and width are positive multiples of {d}; got {h}x{w}."
            )
        if self.min_size is not None and (h < self.min_size[0] or w < self.min_size[1]):
            raise InputSizeError(
                f"{self.name} takes images of at least {self.min_size[0]}x{self.min_size[1]}; got {h}x{w}."
            )
        return h, w


def _as_hw(img_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(img_size, int):
        return img_size, img_size
    size = tuple(int(s) for s in img_size)
    if len(size) != 2:
        raise InputSizeError(f"an image size is one integer or (height, width); got {img_size!r}.")
    return size  # type: ignore[return-value]


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., Any]
    cfg: ModelCfg
    checkpoint_filter: Callable[[dict[str, Any], Any], dict[str, Any]] | None


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    cfg: ModelCfg,
    checkpoint_filter: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``builder(cfg, **kwargs) -> nn.Module`` under ``cfg.name``.

    ``checkpoint_filter(state_dict, model)`` maps the official release's state dict onto ours.
    """

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        if cfg.name in _REGISTRY:
            raise ValueError(f"model {cfg.name!r} registered twice")
        _REGISTRY[cfg.name] = _Entry(builder, cfg, checkpoint_filter)
        return builder

    return decorator


def _entry(name: str) -> _Entry:
    _import_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(_REGISTRY))}."
        ) from None


def model_cfg(model: Any) -> ModelCfg:
    """The :class:`ModelCfg` of a model made by :func:`create_model` (typed, for tools)."""
    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, ModelCfg):
        raise LitevitError(f"{type(model).__name__} is not a litevit model (it has no ModelCfg).")
    return cfg


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, in registration order."""
    _import_families()
    return [n for n in _REGISTRY if fnmatch.fnmatch(n, pattern)]


def get_model_cfg(name: str) -> ModelCfg:
    return _entry(name).cfg


def get_checkpoint_filter(name: str) -> Callable[[dict[str, Any], Any], dict[str, Any]] | None:
    return _entry(name).checkpoint_filter


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    img_size: int | Sequence[int] | None = None,
    checkpoint_path: str | None = None,
    smoke: bool = False,
    **kwargs: Any,
) -> Any:
    """Build a registered model in eval mode with deterministic initialisation.

    ``num_classes`` and ``img_size`` override the variant's defaults; other keyword arguments
    go to the family's builder (e.g. reduced ``depths`` for tests). ``smoke=True`` builds the
    family's few-block smoke-test architecture (``cfg.smoke_arch``) at 64x64 unless ``img_size``
    says otherwise. ``checkpoint_path`` loads an official checkpoint through
    :func:`litevit.load_pretrained`.
    """
    import torch

    entry = _entry(name)
    cfg = entry.cfg
    changes: dict[str, Any] = {}
    if smoke:
        kwargs = {**cfg.smoke_arch, **kwargs}
        if img_size is None:
            img_size = SMOKE_IMG_SIZE
    if img_size is not None:
        changes["input_size"] = cfg.check_img_size(img_size)
    if num_classes is not None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1; got {num_classes}.")
        changes["num_classes"] = num_classes
        if num_classes != cfg.num_classes:
            changes["label_set"] = "custom"
    if kwargs:
        changes["arch"] = {**cfg.arch, **kwargs}
    cfg = dataclasses.replace(cfg, **changes)
    # Deterministic init: the same name and arguments always give the same weights.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = entry.builder(cfg, **kwargs)
    model.cfg = cfg
    model.eval()
    if checkpoint_path is not None:
        from litevit.models._pretrained import load_pretrained

        load_pretrained(model, checkpoint_path)
    return model


def _import_families() -> None:
    # Importing the family modules runs their @register_model decorators.
    from litevit.models import detection, elsa, lvt, mobile_former, segvit  # noqa: F401
