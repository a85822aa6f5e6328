"""Helpers shared by the semantic-segmentation models (LVT-SegFormer, SegViT)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def segmentation_labels(logits: torch.Tensor, out_hw: Sequence[int]) -> torch.Tensor:
    """Per-pixel class labels from a segmentation model's logits.

    ``logits`` (B, classes, h, w), usually at a fraction of the input resolution, are resized
    bilinearly (``align_corners=False``) to ``out_hw`` = (H, W) and arg-maxed over classes, as
    mmseg's ``EncoderDecoder`` does at test time (resize the logits, not the labels). Returns an
    int64 (B, H, W) label map.
    """
    if logits.ndim != 4:
        raise ValueError(
            f"segmentation logits must be (batch, classes, height, width); got {tuple(logits.shape)}."
        )
    height, width = (int(s) for s in out_hw)
    if tuple(logits.shape[-2:]) != (height, width):
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return logits.argmax(dim=1)
