"""UPerNet decode head (PPM + FPN) and the FCN auxiliary head, as mmsegmentation 0.11 builds them.

Xiao et al., "Unified Perceptual Parsing for Scene Understanding", ECCV 2018. The layout and key
names follow mmseg 0.11 (``mmseg/models/decode_heads/{uper_head,psp_head,fcn_head}.py``, the
version the ELSA repository ships under ``seg/``): every conv is an mmcv ``ConvModule`` (conv
without bias, BatchNorm under the name ``bn``, ReLU), and the classifier is ``conv_seg``.

:class:`UPerHead` in eval mode:

* PPM on the deepest map: adaptive average pooling to 1, 2, 3 and 6 bins, a 1x1 ConvModule each,
  bilinear resize (``align_corners=False``) back to the map; the map and the four pooled branches
  are concatenated and fused by a 3x3 ConvModule (``bottleneck``);
* FPN: 1x1 lateral ConvModules on the other maps, top-down sum with bilinear resizes, a 3x3
  ConvModule on each but the top, all levels resized to the finest and concatenated, a 3x3
  ``fpn_bottleneck``; dropout (training only) and ``conv_seg`` give logits at the finest level.

**Exact adaptive pooling for any input size.** ``nn.AdaptiveAvgPool2d`` splits a side of length n
into bins ``[floor(i n / b), ceil((i + 1) n / b))``; it equals a fixed-kernel AveragePool only
when b divides n, and the exporter cannot write it at all when n is dynamic. It is linear and
separable, so :func:`adaptive_avg_pool_matrix` writes it as two matrix products,
``P_h @ x @ P_w^T``, with the (b, n) averaging matrices built from the input's shape
(Range, comparisons, Cast, ReduceSum, Div, MatMul: standard ONNX that every TensorRT release
from 8.5 parses, at any size, in FP32 and FP16). At a fixed export size the matrices are
constants. ``tests/models/test_upernet.py`` compares it with ``F.adaptive_avg_pool2d`` at sizes
that do not divide.

:class:`FCNHead` is mmseg's auxiliary head (one 3x3 ConvModule, ``conv_seg``): it only adds a
loss in training, but its weights are in the released checkpoints and counted in the published
parameter figures, so segmentors keep it as ``auxiliary_head`` (run by
``forward_auxiliary``, never by ``forward`` or an exported graph).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

PPM_BINS = (1, 2, 3, 6)


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """mmseg ``resize`` as the UPerNet configs call it: bilinear, ``align_corners=False``."""
    return F.interpolate(x, size=(size[0], size[1]), mode="bilinear", align_corners=False)


def adaptive_avg_pool_matrix(length: int | torch.SymInt, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, length) matrix ``P`` with ``P @ v`` = ``adaptive_avg_pool1d(v, bins)`` for a vector ``v``.

    Row i averages the positions ``[floor(i * length / bins), ceil((i + 1) * length / bins))``,
    PyTorch's (and mmseg's) bin edges. Edges are computed in float32: ``i * length / bins`` is at
    least ``1 / bins`` away from an integer unless it is one, and exact then, so floor and ceil
    are exact for any length below 2**16.
    """
    positions = torch.arange(length, device=like.device, dtype=torch.float32)  # type: ignore[arg-type]
    edges = torch.arange(bins + 1, device=like.device, dtype=torch.float32) * length / bins
    start, end = edges[:-1].floor(), edges[1:].ceil()
    inside = (positions[None, :] >= start[:, None]) & (positions[None, :] < end[:, None])
    weights = inside.to(torch.float32)
    return (weights / weights.sum(dim=1, keepdim=True)).to(like.dtype)


def adaptive_avg_pool2d(x: torch.Tensor, bins: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, bins)`` for (B, C, H, W) ``x`` of any H, W, as two matrix products."""
    rows = adaptive_avg_pool_matrix(x.shape[-2], bins, x)
    cols = adaptive_avg_pool_matrix(x.shape[-1], bins, x)
    return rows @ x @ cols.transpose(0, 1)


class ConvModule(nn.Module):
    """mmcv ``ConvModule`` with a norm: conv (no bias) -> BatchNorm (``bn``) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class PoolingBranch(nn.Module):
    """One PPM branch: exact adaptive average pooling to ``bins`` then a 1x1 ConvModule.

    Key names of the official ``nn.Sequential(AdaptiveAvgPool2d, ConvModule)``: the conv is ``1``.
    """

    def __init__(self, bins: int, in_channels: int, channels: int) -> None:
        super().__init__()
        self.bins = bins
        self.add_module("1", ConvModule(in_channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, "1")(adaptive_avg_pool2d(x, self.bins))


class PPM(nn.ModuleList):
    """Pooling Pyramid Module (PSPNet): each branch resized back to the input map."""

    def __init__(self, pool_scales: Sequence[int], in_channels: int, channels: int) -> None:
        super().__init__(PoolingBranch(bins, in_channels, channels) for bins in pool_scales)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        return [resize(branch(x), x.shape[-2:]) for branch in self]


class UPerHead(nn.Module):
    """mmseg 0.11 ``UPerHead``: PPM on the last map + FPN over all maps -> logits at the first map's size."""

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: int,
        num_classes: int,
        pool_scales: Sequence[int] = PPM_BINS,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.psp_modules = PPM(pool_scales, in_channels[-1], channels)
        self.bottleneck = ConvModule(in_channels[-1] + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(ConvModule(c, channels, 1) for c in in_channels[:-1])
        self.fpn_convs = nn.ModuleList(ConvModule(channels, channels, 3) for _ in in_channels[:-1])
        self.fpn_bottleneck = ConvModule(len(in_channels) * channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        top = features[-1]
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features[:-1], strict=True)]
        laterals.append(self.bottleneck(torch.cat([top, *self.psp_modules(top)], dim=1)))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[-2:])
        outs = [conv(lateral) for conv, lateral in zip(self.fpn_convs, laterals[:-1], strict=True)]
        outs.append(laterals[-1])
        finest = outs[0].shape[-2:]
        outs = [outs[0], *(resize(out, finest) for out in outs[1:])]
        return self.conv_seg(self.dropout(self.fpn_bottleneck(torch.cat(outs, dim=1))))


class FCNHead(nn.Module):
    """mmseg ``FCNHead`` as the UPerNet configs' auxiliary head (``num_convs=1``, no input concat)."""

    def __init__(self, in_channels: int, channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.convs = nn.Sequential(ConvModule(in_channels, channels, 3))
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_seg(self.dropout(self.convs(x)))


def init_decode_weights(module: nn.Module) -> None:
    """mmseg's head init: ``conv_seg`` N(0, 0.01) with zero bias; ConvModules keep mmcv's
    Kaiming-normal (fan_out, ReLU) conv weights and unit/zero BatchNorm affine."""
    for name, child in module.named_modules():
        if isinstance(child, nn.Conv2d):
            if name.endswith("conv_seg"):
                nn.init.normal_(child.weight, std=0.01)
                if child.bias is not None:
                    nn.init.zeros_(child.bias)
            else:
                nn.init.kaiming_normal_(child.weight, mode="fan_out", nonlinearity="relu")


__all__ = [
    "PPM_BINS",
    "ConvModule",
    "FCNHead",
    "PPM",
    "UPerHead",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool_matrix",
    "init_decode_weights",
]
