"""LVT: Lite Vision Transformer with Enhanced Self-Attention (Yang et al., CVPR 2022).

Re-implementation of the official code ``Chenglin-Yang/LVT`` (HEAD ``c56189777d31``):
``classification/models/lvt.py`` + ``lvt_cls.py`` (the released ImageNet model ``lvt_cls``) and
``segmentation/mmseg/models/backbones/lvt.py`` + ``decode_heads/segformer_head.py`` with
``local_configs/lvt/segformer.lvt.512x512.ade.160k.py`` (SegFormer-LVT on ADE20K).

Variants:

* ``lvt``: the released ImageNet classifier ``lvt_cls``: the 3.43 M backbone plus two
  VOLO-style class-attention layers, ``head`` on the class token and ``aux_head`` on the patch
  tokens (5.52 M parameters). Eval logits = head(cls) + 0.5 · max over tokens of aux_head(tokens).
* ``lvt_seg``: the same backbone (without per-stage output norms, as in the segmentation copy)
  + the SegFormer all-MLP decode head (embed 256), logits at 1/4 of the input.

Architecture (four stages, channels-last (B, H, W, C) between modules, pre-norm blocks):

* stage 1: conv 7x7/4 patch embed + LN, 2 blocks of **CSA** (``litevit.ops.csa``) + Linear MLP;
* stages 2-4: conv 3x3/2 patch embed + LN, 2 blocks of **RASA** (``litevit.ops.rasa``) +
  1x1 conv -> depthwise 3x3 -> GELU -> 1x1 conv MLP (no activation between fc1 and the
  depthwise conv).

Code facts kept as the official code has them (the released checkpoints were trained with it):

* CSA value matrices are indexed by the source offset in the window: 9 C x C matrices (a
  grouped 1x1 conv, groups=9), not 81 source-to-target matrices. Windows are 3x3 with stride 2
  and padding 1; overlapping windows are fold-summed without normalisation by overlap count.
* CSA attention weights come from 2x2 average-pooled features (``ceil_mode=True``; the last
  window of an odd side averages only the pixels inside), not from query-key products.
* RASA: one depthwise 3x3 weight shared by dilations 1, 3, 5, each branch through SiLU,
  summed, without adding q back; the whole attention is applied twice with shared weights:
  y1 = SiLU(A(x)), y2 = SiLU(A(y1 + x)). Stage 4 has ``sr_ratio`` 1 (no spatial reduction) but
  still uses RASA; stage 1's ``sr_ratio`` 8 is unused (CSA has none).
* The official SiLUs are in place (``nn.SiLU(True)``); ours are out of place, same values.
* ``lvt_cls.__init__`` takes ``**kwargs`` but passes none of them on, so timm's
  ``drop_path_rate`` (``--drop-path 0.1`` in the README command), ``num_classes`` and
  ``img_size`` were ignored in the official training: drop path was 0. ``drop_path_rate``
  therefore defaults to 0 here; ``num_classes`` is honoured.
* The paper's "3.4 M parameters" is the backbone only (3,429,092); the released classifier
  has 5,521,844. Its test preprocessing is the model's ``default_cfg``: crop_pct 0.96, bicubic,
  ImageNet mean/std (``validate.py`` -> timm ``resolve_data_config``).
* Token-labelling training (MixToken box swap after the stage-1 patch embed, the per-token
  aux targets) is not reproduced: ``forward`` always returns the inference logits.
* The mmseg checkpoint nests the backbone twice (``backbone.backbone.{stage}...``) and holds
  ``decode_head.conv_seg`` (a 128 -> 150 conv of ``BaseDecodeHead`` that SegFormerHead never
  calls; 19,350 parameters): the checkpoint filter strips one ``backbone.`` and drops it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from litevit.models._layers import DropPath, Mlp, check_input
from litevit.models._registry import (
    IMAGENET_MEAN_255,
    IMAGENET_STD_255,
    ModelCfg,
    PaperFigures,
    register_model,
)
from litevit.models.segmentation import mmseg_test_protocol
from litevit.ops.csa import CSA_OP, gather_windows, window_gather_weight
from litevit.ops.rasa import RASA_OP

# The one released configuration (``lvt`` / ``lvt_cls`` in the official code, rasa_cfg from
# ``classification/configs/lvt_imagenet.py``).
LVT_ARCH: dict[str, Any] = {
    "embed_dims": (64, 64, 160, 256),
    "depths": (2, 2, 2, 2),
    "num_heads": (2, 2, 5, 8),
    "mlp_ratios": (4, 8, 4, 4),
    "attn_types": ("csa", "rasa", "rasa", "rasa"),
    "sr_ratios": (8, 4, 2, 1),  # stage 1's 8 is unused: CSA has no spatial reduction
    "rasa_dilations": (1, 3, 5),  # () = plain query (official ``atrous_rates=None``)
    "rasa_recursions": 2,
    "csa_kernel_size": 3,
    "csa_stride": 2,
    "csa_padding": 1,
    "drop_path_rate": 0.0,
}
LVT_CLS_ARCH: dict[str, Any] = {**LVT_ARCH, "post_layers": 2}
LVT_SEG_ARCH: dict[str, Any] = {**LVT_ARCH, "decoder_dim": 256, "decoder_dropout": 0.1}

_CHECKPOINT_CLS = (
    "lvt_imagenet.pth.tar (Chenglin-Yang/LVT README, 'Classification Usage'; "
    "OneDrive link, timm checkpoint of lvt_cls)"
)
_CHECKPOINT_SEG = (
    "segformer_lvt_ade20k.pth (Chenglin-Yang/LVT README; OneDrive link, "
    "mmseg checkpoint of SegFormer-LVT on ADE20K)"
)


def _init_conv_fan_out(conv: nn.Conv2d) -> None:
    # Official init for the patch-embed and spatial-reduction convolutions.
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _init_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: strided conv (padding k//2) + LayerNorm, NCHW -> NHWC."""

    def __init__(self, in_chans: int, dim: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size, stride=stride, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(dim)
        _init_conv_fan_out(self.proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class ConvSelfAttention(nn.Module):
    """CSA (stage 1). Keys as the official ``CSA``: ``attn`` (logits Linear), ``weight``
    (per-source-offset value transform as a grouped 1x1 conv), ``proj``.

    The official code runs ``weight`` on (B·windows, 9C, 1, 1); running it on the (B, 9C, H', W')
    window map is the same convolution and keeps it a standard (INT8-able) conv.
    """

    def __init__(
        self, dim: int, num_heads: int, kernel_size: int = 3, stride: int = 2, padding: int = 1
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.scale = (dim // num_heads) ** -0.5
        taps = kernel_size * kernel_size
        self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True)
        self.attn = nn.Linear(dim, num_heads * taps * taps)
        self.weight = nn.Conv2d(taps * dim, taps * dim, 1, groups=taps, bias=False)
        # Constant one-hot weight of the window gather; not a parameter, not in the state dict.
        self.window_gather_weight: torch.Tensor
        self.register_buffer("window_gather_weight", window_gather_weight(dim, kernel_size), persistent=False)
        self.proj = nn.Linear(dim, dim)
        nn.init.normal_(self.weight.weight, 0.0, math.sqrt(2.0 / (taps * dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x.shape
        taps = self.kernel_size * self.kernel_size
        x_nchw = x.permute(0, 3, 1, 2)
        logits = self.attn(self.pool(x_nchw).permute(0, 2, 3, 1)) * self.scale  # (B, H', W', heads·k⁴)
        h, w = logits.shape[1:3]
        attn = logits.reshape(batch, h, w, self.num_heads * taps, taps).softmax(dim=-1)
        attn = attn.reshape(batch, h, w, -1).permute(0, 3, 1, 2)
        values = self.weight(
            gather_windows(x_nchw, self.window_gather_weight, self.kernel_size, self.stride, self.padding)
        )
        out = CSA_OP(
            attn,
            values,
            heads=self.num_heads,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
        )
        # Odd sides: the op covers 2·ceil(H/2) rows; the extra one is what F.fold drops.
        return self.proj(out[:, :, :height, :width].permute(0, 2, 3, 1))


class MultiDilationDWConv(nn.Module):
    """RASA's multi-scale query filter: one shared depthwise kxk weight (official ``ds``)."""

    def __init__(self, dim: int, dilations: tuple[int, ...], kernel_size: int = 3) -> None:
        super().__init__()
        self.dilations = list(dilations)
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(dim, 1, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight)  # official init='kaiming'

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return RASA_OP(q, self.weight, dilations=self.dilations, kernel_size=self.kernel_size)


class RecursiveAtrousSelfAttention(nn.Module):
    """RASA (stages 2-4): spatial-reduction attention with a multi-dilation query, recursed.

    Keys as the official ``Attention``: ``q``, ``kv``, ``proj``, ``sr`` + ``norm`` (only when
    ``sr_ratio > 1``), ``ds`` (only with dilations).
    """

    def __init__(
        self, dim: int, num_heads: int, sr_ratio: int, dilations: tuple[int, ...], recursions: int
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}.")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.recursions = recursions
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.sr: nn.Conv2d | None = None
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)
            _init_conv_fan_out(self.sr)
        self.ds = MultiDilationDWConv(dim, dilations) if dilations else None
        self.apply(_init_linear)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, dim = x.shape
        head_dim = dim // self.num_heads
        q = self.q(x)
        if self.ds is not None:
            q = self.ds(q.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        q = q.reshape(batch, height * width, self.num_heads, head_dim).transpose(1, 2)
        kv_source = x
        if self.sr is not None:
            kv_source = self.norm(self.sr(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        k, v = (
            self.kv(kv_source)
            .reshape(batch, -1, 2, self.num_heads, head_dim)
            .permute(2, 0, 3, 1, 4)
            .unbind(0)
        )
        # Explicit matmul-softmax-matmul (scale after q·kᵀ, as the official code): the pattern
        # every ONNX exporter emits the same way and TensorRT fuses into one attention kernel.
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(batch, height, width, dim)
        return self.proj(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recursions <= 1:
            return self._attend(x)
        step_input = x
        out = F.silu(self._attend(step_input))
        for _ in range(self.recursions - 1):
            step_input = out + step_input
            out = F.silu(self._attend(step_input))
        return out


class ConvMlp(nn.Module):
    """1x1 conv -> depthwise 3x3 conv -> GELU -> 1x1 conv on a channels-last map."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden_dim, 1)
        self.depconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc2(self.act(self.depconv(self.fc1(x.permute(0, 3, 1, 2)))))
        return x.permute(0, 2, 3, 1)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        attn_type: str,
        sr_ratio: int,
        arch: dict[str, Any],
        drop_path: float,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        if attn_type == "csa":
            self.attn: nn.Module = ConvSelfAttention(
                dim, num_heads, arch["csa_kernel_size"], arch["csa_stride"], arch["csa_padding"]
            )
            self.mlp: nn.Module = Mlp(dim, hidden)
        elif attn_type == "rasa":
            self.attn = RecursiveAtrousSelfAttention(
                dim, num_heads, sr_ratio, tuple(arch["rasa_dilations"]), arch["rasa_recursions"]
            )
            self.mlp = ConvMlp(dim, hidden)
        else:
            raise ValueError(f"attn_types entries are 'csa' or 'rasa'; got {attn_type!r}.")
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class LvtStage(nn.Sequential):
    """Patch embed (index 0) + blocks (index 1): the official ``backbone.{stage}.{0|1}`` keys.

    Takes NCHW (the image, or the previous stage's map permuted) and returns NHWC.
    """

    def __init__(self, patch_embed: PatchEmbed, blocks: nn.Sequential) -> None:
        super().__init__(patch_embed, blocks)


def build_backbone(arch: dict[str, Any]) -> nn.ModuleList:
    """The four LVT stages as the official ``backbone`` ModuleList."""
    dims, depths = arch["embed_dims"], arch["depths"]
    total = sum(depths)
    stages = []
    for i, (dim, depth) in enumerate(zip(dims, depths, strict=True)):
        embed = PatchEmbed(3 if i == 0 else dims[i - 1], dim, 7 if i == 0 else 3, 4 if i == 0 else 2)
        blocks = []
        for j in range(depth):
            index = sum(depths[:i]) + j
            drop_path = arch["drop_path_rate"] * index / max(total - 1, 1)
            blocks.append(
                Block(
                    dim,
                    arch["num_heads"][i],
                    arch["mlp_ratios"][i],
                    arch["attn_types"][i],
                    arch["sr_ratios"][i],
                    arch,
                    drop_path,
                )
            )
        body = nn.Sequential(*blocks)
        # The official model re-initialises every Linear (trunc-normal .02) after building.
        body.apply(_init_linear)
        stages.append(LvtStage(embed, body))
    return nn.ModuleList(stages)


def run_backbone(backbone: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
    """Image (B, 3, H, W) -> the four stages' channels-last maps (B, H/4·2^-i, W/4·2^-i, C_i)."""
    features = []
    for i, stage in enumerate(backbone):
        x = stage(x if i == 0 else x.permute(0, 3, 1, 2))
        features.append(x)
    return features


class ClassAttention(nn.Module):
    """Attention with the class token as the only query (VOLO/CaiT class attention)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.q = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        head_dim = dim // self.num_heads
        k, v = self.kv(x).reshape(batch, tokens, 2, self.num_heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q = self.q(x[:, :1]).reshape(batch, self.num_heads, 1, head_dim)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(batch, 1, dim))


class ClassBlock(nn.Module):
    """Updates only the class token: cls + attn(LN(all)), then cls + mlp(LN(cls))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ClassAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = x[:, :1] + self.attn(self.norm1(x))
        cls = cls + self.mlp(self.norm2(cls))
        return torch.cat([cls, x[:, 1:]], dim=1)


class Lvt(nn.Module):
    """The released ImageNet classifier ``lvt_cls``: LVT backbone + class-attention post layers."""

    def __init__(self, cfg: ModelCfg, **arch: Any) -> None:
        super().__init__()
        self.cfg = cfg
        dim = arch["embed_dims"][-1]
        self.num_classes = cfg.num_classes
        self.backbone = build_backbone(arch)
        self.post_network = nn.ModuleList(
            ClassBlock(dim, arch["num_heads"][-1], arch["mlp_ratios"][-1]) for _ in range(arch["post_layers"])
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, cfg.num_classes)
        self.aux_head = nn.Linear(dim, cfg.num_classes)
        self.post_network.apply(_init_linear)
        self.head.apply(_init_linear)
        self.aux_head.apply(_init_linear)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> normalised tokens (B, 1 + N, C): class token first, then the stage-4 map."""
        check_input(x, self.cfg)
        tokens = run_backbone(self.backbone, x)[-1].flatten(1, 2)
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        for block in self.post_network:
            x = block(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        # Token-labelling inference: class-token logits + half the per-class max over tokens.
        return self.head(x[:, 0]) + 0.5 * self.aux_head(x[:, 1:]).amax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class LinearEmbed(nn.Module):
    """SegFormer's per-level ``MLP``: a Linear on every pixel (key ``proj``)."""

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ConvBnReLU(nn.Module):
    """mmcv ``ConvModule`` with a norm: conv (no bias) -> BN -> ReLU (keys conv, bn).

    The official head uses SyncBN; in eval mode that is BatchNorm2d.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activate = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class SegFormerHead(nn.Module):
    """SegFormer all-MLP decoder: per-level Linear -> upsample to 1/4 -> concat -> fuse -> classify."""

    def __init__(self, in_dims: tuple[int, ...], embed_dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.linear_c1 = LinearEmbed(in_dims[0], embed_dim)
        self.linear_c2 = LinearEmbed(in_dims[1], embed_dim)
        self.linear_c3 = LinearEmbed(in_dims[2], embed_dim)
        self.linear_c4 = LinearEmbed(in_dims[3], embed_dim)
        self.linear_fuse = ConvBnReLU(4 * embed_dim, embed_dim)
        self.dropout = nn.Dropout2d(dropout)
        self.linear_pred = nn.Conv2d(embed_dim, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Channels-last maps at strides 4, 8, 16, 32 -> logits (B, classes, H/4, W/4)."""
        size = features[0].shape[1:3]
        embeds = []
        # Concatenation order c4, c3, c2, c1, as the official head.
        for feature, linear in zip(
            features[::-1], (self.linear_c4, self.linear_c3, self.linear_c2, self.linear_c1), strict=True
        ):
            embed = linear(feature).permute(0, 3, 1, 2)
            if embed.shape[-2:] != size:
                embed = F.interpolate(embed, size=size, mode="bilinear", align_corners=False)
            embeds.append(embed)
        return self.linear_pred(self.dropout(self.linear_fuse(torch.cat(embeds, dim=1))))


class LvtSeg(nn.Module):
    """SegFormer-LVT: LVT backbone (no output norms) + SegFormer MLP head."""

    def __init__(self, cfg: ModelCfg, **arch: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        self.backbone = build_backbone(arch)
        self.decode_head = SegFormerHead(
            tuple(arch["embed_dims"]), arch["decoder_dim"], cfg.num_classes, arch["decoder_dropout"]
        )

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Image -> the four stages' maps (B, C_i, H_i, W_i), NCHW as the official backbone returns."""
        check_input(x, self.cfg)
        return [f.permute(0, 3, 1, 2) for f in run_backbone(self.backbone, x)]

    def forward_head(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.decode_head([f.permute(0, 2, 3, 1) for f in features])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, H, W) -> class logits (B, classes, H/4, W/4); see ``segmentation_labels``."""
        check_input(x, self.cfg)
        return self.decode_head(run_backbone(self.backbone, x))


def _check_arch(arch: dict[str, Any], defaults: dict[str, Any]) -> None:
    unknown = sorted(set(arch) - set(defaults))
    if unknown:
        raise TypeError(
            f"unknown LVT architecture option(s) {', '.join(unknown)}; known: {', '.join(defaults)}."
        )


def _keys_identical(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """``lvt``: our keys are the official ``lvt_cls`` keys (179 tensors), nothing to map."""
    return dict(state)


def _convert_mmseg_checkpoint(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """``lvt_seg``: map the mmseg ``EncoderDecoder`` state dict onto ours.

    mmseg nests the official backbone class (whose stages are its ``backbone`` ModuleList) under
    ``backbone``, so its keys read ``backbone.backbone.{stage}...``; ours are ``backbone.{stage}...``.
    ``decode_head.conv_seg.*`` is dropped: the unused 128 -> classes conv every mmseg
    ``BaseDecodeHead`` creates (SegFormerHead classifies with ``linear_pred``).
    """
    converted = {}
    for key, value in state.items():
        if key.startswith("decode_head.conv_seg."):
            continue
        converted[
            key.replace("backbone.backbone.", "backbone.", 1) if key.startswith("backbone.backbone.") else key
        ] = value
    return converted


LVT_SMOKE_ARCH = {
    "embed_dims": (16, 16, 32, 32),
    "depths": (1, 1, 1, 1),
    "num_heads": (1, 2, 2, 4),
    "mlp_ratios": (2, 2, 2, 2),
}


@register_model(
    ModelCfg(
        name="lvt",
        family="lvt",
        smoke_arch={**LVT_SMOKE_ARCH, "post_layers": 1},
        task="classification",
        input_size=(224, 224),
        num_classes=1000,
        label_set="imagenet1k",
        # Any size >= 32 runs; multiples of 32 keep every stage's map exact (stride 32).
        size_divisor=32,
        interpolation="bicubic",
        crop_pct=0.96,  # lvt_cls.default_cfg, used by the official validate.py
        checkpoint=_CHECKPOINT_CLS,
        paper=PaperFigures(
            params_m=3.4,
            gmacs=0.9,
            resolution=(224, 224),
            metric="top-1 74.8 (ImageNet-1k val)",
            source="Chenglin-Yang/LVT README, ImageNet table",
            note="3.4 M is the backbone only (3,429,092); the released lvt_cls has 5,521,844 "
            "(class-attention layers, head, aux_head). fvcore on the official class: 0.897 GMACs.",
        ),
        arch=LVT_CLS_ARCH,
    ),
    checkpoint_filter=_keys_identical,
)
def lvt(cfg: ModelCfg, **kwargs: Any) -> Lvt:
    _check_arch(cfg.arch, LVT_CLS_ARCH)
    return Lvt(cfg, **cfg.arch)


@register_model(
    ModelCfg(
        name="lvt_seg",
        family="lvt",
        smoke_arch={**LVT_SMOKE_ARCH, "decoder_dim": 24},
        task="segmentation",
        input_size=(512, 512),
        num_classes=150,
        label_set="ade20k150",
        size_divisor=32,
        mean=IMAGENET_MEAN_255,
        std=IMAGENET_STD_255,
        pixel_scale=255.0,
        interpolation="bilinear",
        crop_pct=None,
        seg_resize="short side 512 keeping aspect ratio (long side at most 2048; mmseg img_scale "
        "(2048, 512)), then each side resized up to the next multiple of 32 (AlignedResize "
        "size_divisor=32); RGB; logits resized bilinearly to the original image",
        test_protocol=mmseg_test_protocol(
            "whole",
            (2048, 512),
            "Chenglin-Yang/LVT segmentation ADE20K config: AlignedResize(size_divisor=32), test mode whole",
            size_divisor=32,
        ),
        checkpoint=_CHECKPOINT_SEG,
        paper=PaperFigures(
            params_m=3.9,
            gmacs=10.6,
            resolution=(512, 512),
            metric="mIoU 39.3 (ADE20K val, single scale)",
            source="Chenglin-Yang/LVT README, ADE20K table",
            note="The README does not say how or at which size it counted FLOPs; fvcore on the "
            "official classes gives 10.76 GMACs at 512x512.",
        ),
        arch=LVT_SEG_ARCH,
    ),
    checkpoint_filter=_convert_mmseg_checkpoint,
)
def lvt_seg(cfg: ModelCfg, **kwargs: Any) -> LvtSeg:
    _check_arch(cfg.arch, LVT_SEG_ARCH)
    return LvtSeg(cfg, **cfg.arch)
