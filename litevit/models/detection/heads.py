"""Neck and heads of the mmdet 2.x two-stage detectors, with mmdet's module and key names.

Every class keeps the parameter names of the mmdet module it re-implements, so an official
checkpoint's ``neck.*``, ``rpn_head.*``, ``roi_head.*`` and ``semantic_head.*`` keys load
unchanged. Sources (mmdet 2.17 as vendored by Chenglin-Yang/LVT ``detection/``, mmdet 2.11 as
vendored by damo-cv/ELSA ``det/``; the modules below are the same in both):

* ``FPN`` (``models/necks/fpn.py``): 1x1 laterals, top-down nearest upsampling to the lower
  level's size, 3x3 outputs, extra levels by ``max_pool2d(kernel 1, stride 2)`` of the last.
* ``RPNHead`` (``dense_heads/rpn_head.py``): shared 3x3 conv + ReLU, 1x1 objectness (sigmoid)
  and 1x1 box deltas per anchor.
* ``ConvFCBBoxHead`` (``roi_heads/bbox_heads/convfc_bbox_head.py``): optional 3x3 convs (+ norm,
  ReLU), flatten, FCs + ReLU, ``fc_cls`` (classes + background) and ``fc_reg``;
  ``Shared2FCBBoxHead`` is 0 convs + 2 FCs.
* ``FCNMaskHead`` (``roi_heads/mask_heads/fcn_mask_head.py``): 3x3 convs + ReLU, a 2x2 stride-2
  transposed conv + ReLU, 1x1 ``conv_logits`` (one 28x28 mask logit map per class).
* ``PanopticFPNHead`` (``seg_heads/panoptic_fpn_head.py`` of LVT's mmdet, which takes
  ``num_upsample`` per level from its config): per FPN level a ``ConvUpsample`` stack (3x3 conv,
  GroupNorm, ReLU, x2 bilinear upsampling after the first ``num_upsample`` convs), summed, then
  1x1 ``conv_logits`` to stuff classes + one "thing" class at 1/4 of the input.

mmcv's ``ConvModule`` is :class:`ConvModule` here: conv (bias only without a norm, as mmcv's
``bias="auto"``), then the norm (key ``bn`` or ``gn``), then ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class GroupNorm(nn.Module):
    """GroupNorm written with primitives (same keys and arithmetic as ``nn.GroupNorm``).

    ``nn.GroupNorm`` exports as ONNX ``GroupNormalization``, which exists only from opset 18 (and
    TensorRT only parses it from 8.6 on; 8.5 would need the ``InstanceNormalization_TRT`` plugin
    with constant scales). Mean, centred square (``d * d``, which litevit's FP16 rules keep in
    FP32) and division by the standard deviation are standard ops every TensorRT release parses.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: {num_groups} groups must divide {num_channels} channels.")
        self.num_groups = num_groups
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[:2]
        grouped = x.reshape(batch, self.num_groups, -1)
        centred = grouped - grouped.mean(dim=-1, keepdim=True)
        variance = (centred * centred).mean(dim=-1, keepdim=True)
        normalised = (centred / torch.sqrt(variance + self.eps)).reshape(x.shape)
        shape = (1, channels) + (1,) * (x.ndim - 2)
        return normalised * self.weight.reshape(shape) + self.bias.reshape(shape)


class ConvModule(nn.Module):
    """mmcv ``ConvModule``: conv -> optional norm (``bn`` / ``gn``) -> optional ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        norm: str | None = None,
        num_groups: int = 32,
        activate: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=norm is None
        )
        self.norm_name = norm
        if norm == "bn":
            self.bn = nn.BatchNorm2d(out_channels)
        elif norm == "gn":
            self.gn = GroupNorm(num_groups, out_channels)
        elif norm is not None:
            raise ValueError(f"ConvModule norm is 'bn', 'gn' or None; got {norm!r}.")
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm_name == "bn":
            x = self.bn(x)
        elif self.norm_name == "gn":
            x = self.gn(x)
        return F.relu(x) if self.activate else x


class FPN(nn.Module):
    """Feature pyramid: backbone maps (strides 4-32) -> ``num_outs`` maps of ``out_channels``."""

    def __init__(self, in_channels: Sequence[int], out_channels: int, num_outs: int = 5) -> None:
        super().__init__()
        if num_outs < len(in_channels):
            raise ValueError(f"FPN: num_outs ({num_outs}) must be at least {len(in_channels)}.")
        self.num_outs = num_outs
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, out_channels, 1, activate=False) for c in in_channels
        )
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, activate=False) for _ in in_channels
        )

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, features, strict=True)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest"
            )
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals, strict=True)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return outs


class RPNHead(nn.Module):
    """Region proposal head: per level, objectness logits (B, A, H, W) and deltas (B, 4A, H, W)."""

    def __init__(self, in_channels: int, feat_channels: int, num_anchors: int) -> None:
        super().__init__()
        self.rpn_conv = nn.Conv2d(in_channels, feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(feat_channels, num_anchors, 1)
        self.rpn_reg = nn.Conv2d(feat_channels, num_anchors * 4, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logits, deltas = [], []
        for x in features:
            x = F.relu(self.rpn_conv(x))
            logits.append(self.rpn_cls(x))
            deltas.append(self.rpn_reg(x))
        return logits, deltas


class ConvFCBBoxHead(nn.Module):
    """RoI box head: (R, C, 7, 7) RoI features -> class logits (R, classes + 1), deltas (R, 4·k)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        fc_channels: int,
        num_convs: int = 0,
        num_fcs: int = 2,
        conv_channels: int = 256,
        roi_size: int = 7,
        class_agnostic: bool = False,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        self.shared_convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else conv_channels, conv_channels, 3, norm=norm)
            for i in range(num_convs)
        )
        flat = (conv_channels if num_convs else in_channels) * roi_size * roi_size
        self.shared_fcs = nn.ModuleList(
            nn.Linear(flat if i == 0 else fc_channels, fc_channels) for i in range(num_fcs)
        )
        self.fc_cls = nn.Linear(fc_channels, num_classes + 1)
        self.fc_reg = nn.Linear(fc_channels, 4 if class_agnostic else 4 * num_classes)
        self.num_classes = num_classes
        self.class_agnostic = class_agnostic

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv in self.shared_convs:
            x = conv(x)
        x = x.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)


class FCNMaskHead(nn.Module):
    """RoI mask head: (R, C, 14, 14) -> mask logits (R, classes, 28, 28)."""

    def __init__(self, in_channels: int, conv_channels: int, num_classes: int, num_convs: int = 4) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else conv_channels, conv_channels, 3) for i in range(num_convs)
        )
        self.upsample = nn.ConvTranspose2d(conv_channels, conv_channels, 2, stride=2)
        self.conv_logits = nn.Conv2d(conv_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        return self.conv_logits(F.relu(self.upsample(x)))


class ConvUpsample(nn.Module):
    """``num_layers`` ConvModules (GN, ReLU); x2 bilinear upsampling after the first ``num_upsample``."""

    def __init__(
        self, in_channels: int, inner_channels: int, num_layers: int, num_upsample: int, num_groups: int
    ) -> None:
        super().__init__()
        if num_upsample > num_layers:
            raise ValueError(f"ConvUpsample: num_upsample ({num_upsample}) > num_layers ({num_layers}).")
        self.num_upsample = num_upsample
        self.conv = nn.ModuleList(
            ConvModule(in_channels if i == 0 else inner_channels, inner_channels, 3, "gn", num_groups)
            for i in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.conv):
            x = conv(x)
            if i < self.num_upsample:
                x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return x


class PanopticFPNHead(nn.Module):
    """Semantic head of Panoptic FPN: FPN levels 0..3 -> logits (B, stuff + 1, H/4, W/4)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        inner_channels: int,
        num_upsample: Sequence[int],
        num_groups: int,
    ) -> None:
        super().__init__()
        self.conv_upsample_layers = nn.ModuleList(
            ConvUpsample(in_channels, inner_channels, max(i, 1), up, num_groups)
            for i, up in enumerate(num_upsample)
        )
        self.conv_logits = nn.Conv2d(inner_channels, num_classes, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        summed = self.conv_upsample_layers[0](features[0])
        for layer, x in zip(self.conv_upsample_layers[1:], features[1:], strict=False):
            summed = summed + layer(x)
        return self.conv_logits(summed)
