"""Helpers shared by the semantic-segmentation models (LVT-SegFormer, SegViT)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def resize_logits(logits: torch.Tensor, out_hw: Sequence[int]) -> torch.Tensor:
    """Segmentation logits (B, classes, h, w) resized bilinearly (``align_corners=False``) to
    ``out_hw`` = (H, W), as mmseg's ``EncoderDecoder`` does at test time (resize the logits,
    not the labels); unchanged when already that size."""
    if logits.ndim != 4:
        raise ValueError(
            f"segmentation logits must be (batch, classes, height, width); got {tuple(logits.shape)}."
        )
    if tuple(logits.shape[-2:]) == tuple(out_hw):
        return logits
    return F.interpolate(logits, size=tuple(out_hw), mode="bilinear", align_corners=False)


def segmentation_labels(logits: torch.Tensor, out_hw: Sequence[int]) -> torch.Tensor:
    """Per-pixel class labels: :func:`resize_logits` to ``out_hw``, then argmax over classes.

    Returns an int64 (B, H, W) label map.
    """
    return resize_logits(logits, out_hw).argmax(dim=1)


# mmseg tools/test.py --aug-test: MultiScaleFlipAug img_ratios, with horizontal flips.
MMSEG_AUG_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def mmseg_test_protocol(
    mode: str,
    img_scale: tuple[int, int],
    source: str,
    *,
    min_size: int | None = None,
    size_divisor: int | None = None,
    crop_size: int | None = None,
    stride: int | None = None,
) -> dict[str, object]:
    """A model's published test protocol as data for ``ModelCfg.test_protocol`` (JSON-ready).

    ``mode``: mmseg ``test_cfg.mode``, "whole" or "slide" (square ``crop_size`` windows at
    ``stride``). ``img_scale``: the test pipeline's keep-ratio ``Resize`` scale (long, short);
    ``min_size``: mmseg 0.24's ``Resize(min_size=...)``; ``size_divisor``: SegFormer's
    ``AlignedResize``. ``litevit.runtime.seg_protocols.SegTestProtocol`` runs it.
    """
    if mode not in ("whole", "slide"):
        raise ValueError(f"mode must be 'whole' or 'slide'; got {mode!r}")
    if (mode == "slide") != (crop_size is not None and stride is not None):
        raise ValueError("crop_size and stride are given exactly for mode 'slide'")
    return {
        "mode": mode,
        "img_scale": list(img_scale),
        "min_size": min_size,
        "size_divisor": size_divisor,
        "crop_size": [crop_size, crop_size] if crop_size is not None else None,
        "stride": [stride, stride] if stride is not None else None,
        "aug_ratios": list(MMSEG_AUG_RATIOS),
        "source": source,
    }
