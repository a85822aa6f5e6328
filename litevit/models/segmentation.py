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
