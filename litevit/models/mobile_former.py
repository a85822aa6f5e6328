"""Mobile-Former (Chen et al., CVPR 2022): a MobileNet and a tiny token transformer in parallel.

Re-implemented from the authors' release ``AAboys/MobileFormer`` (``mobile_former.py``,
``dna_blocks.py``, timm 0.3.4), whose state-dict key names we keep unchanged, so the official
checkpoints load through an (almost) identity filter.

Data flow. ``M`` global tokens of width ``d`` (a learned ``nn.Embedding``) run beside the
convolutional feature map. Every Mobile-Former block

1. *Mobile->Former*: tokens attend to the block's **input** feature map (pre-stride resolution);
2. *Former*: token self-attention + FFN;
3. *Mobile*: an inverted bottleneck whose ReLUs are **dynamic ReLUs** with coefficients
   generated from token 0 of the Former output;
4. *Former->Mobile*: every pixel attends to the tokens, added to the block output.

A last Mobile->Former after the final block refreshes the tokens; the classifier concatenates the
pooled features with token 0.

Tokens are kept batch-first, ``(B, M, d)``; the release keeps them ``(M, B, d)``. The maths is the
same except for one training-only detail: the release's token DropPath therefore drops whole
tokens across the batch rather than whole samples (the release trained with drop path 0).

What the official code does that the paper text describes differently or does not mention (the
official code wins, as the checkpoints were trained with it):

* Mobile->Former multiplies its attention output by an extra learned gate
  ``2 * h_sigmoid(Linear(tokens))`` (``gbr_dynamic[0] = True``), per token and channel.
* The bridges project only the token side: Mobile->Former uses K = V = the feature map,
  Former->Mobile uses Q = the feature map (``remove_proj_local=True``); both use 2 heads.
* The Former projects only Q (K = V = tokens), uses 4 heads (a hard-coded default, not the
  bridges' ``attn_num_heads``), post-LayerNorm, and an FFN expansion of 2.
* The dynamic ReLU is ``max(a1*x, a2*x)`` with ``a1 in [0, 2]`` and ``a2 in [-1, 1]`` and no
  bias terms (DY-ReLU with two linear pieces but without the ``b`` offsets); its coefficients come
  from token 0 through Linear(d, d/4) -> ReLU -> Linear(d/4, 2C) -> h_sigmoid.
* In ``DnaBlock`` (the stride-1 pw-dw-pw block) the second expansion ratio in the config table
  is unused: only ``e1`` sets the hidden width.
* ``cnn_drop_path_rate`` in the release's model kwargs (0.1) is overwritten by
  ``drop_path_rate`` in ``MobileFormer.__init__``; one rate serves both paths.
* The classifier applies h_swish after global average pooling and BatchNorm1d in its first FC
  layer; only token 0 is concatenated (``cls_token_num=1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from litevit.models._layers import DropPath, check_input, expand_to_batch
from litevit.models._registry import ModelCfg, PaperFigures, register_model


class BlockSpec(NamedTuple):
    """One row of the release's block table (its repeat count ``n`` is 1 in every variant).

    ``kind``: ``"lite"`` (release ``DnaBlock3`` with ``e2 = 0``), ``"dna3"`` (``DnaBlock3``, the
    dw-pw-dw-pw downsampling block) or ``"dna"`` (``DnaBlock``, pw-dw-pw).
    """

    kind: str
    e1: int  # first expansion ratio
    out_chs: int
    stride: int
    e2: int  # second expansion ratio ("dna3" only; 0 for "lite", unused by "dna")


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: channel ``g * (C // groups) + i`` moves to ``i * groups + g``."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def _shuffle_or_identity(groups: int, enabled: bool) -> nn.Module:
    # An Identity keeps the Sequential indices (and so the release's key names) of the
    # ungrouped variants, where the release puts an empty nn.Sequential in this slot.
    return ChannelShuffle(groups) if enabled else nn.Identity()


class DynamicReLU(nn.Module):
    """Dynamic ReLU ``y = max(a1 * x, a2 * x)`` with per-sample, per-channel slopes from token 0.

    ``hyper`` is the release's ``HyperFunc.hyper`` (key ``hyperN.hyper.*``).
    """

    def __init__(self, token_dim: int, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.hyper = nn.Sequential(
            nn.Linear(token_dim, token_dim // reduction),
            nn.ReLU(),
            nn.Linear(token_dim // reduction, 2 * channels),
            nn.Hardsigmoid(),
        )

    def coefficients(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slopes ``a1 in [0, 2]`` and ``a2 in [-1, 1]``, each (B, C, 1, 1)."""
        h1, h2 = self.hyper(tokens[:, 0]).chunk(2, dim=1)
        a1 = 2.0 * (h1 - 0.5) + 1.0
        a2 = 2.0 * (h2 - 0.5)
        return a1[:, :, None, None], a2[:, :, None, None]

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        a1, a2 = self.coefficients(tokens)
        return torch.maximum(x * a1, x * a2)


class MobileToFormer(nn.Module):
    """Tokens attend to the feature map (release ``Local2Global``, ``gbr_type='attn'``).

    Only the token side is projected: Q = Linear(tokens); K = V = the feature map, split by
    channel into heads. The attention output is gated by ``2 * h_sigmoid(alpha(tokens))``, projected
    back to the token width, added and post-LayerNormed.
    """

    def __init__(self, channels: int, token_dim: int, num_heads: int = 2, drop_path: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (channels // num_heads) ** -0.5
        self.alpha = nn.Sequential(nn.Linear(token_dim, channels), nn.Hardsigmoid())
        self.q = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(channels, token_dim)
        self.layer_norm = nn.LayerNorm(token_dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        m = tokens.shape[1]
        q = self.q(tokens).reshape(b, m, self.num_heads, -1).transpose(1, 2)  # B, heads, M, c
        kv = x.reshape(b, self.num_heads, c // self.num_heads, h * w)  # B, heads, c, HW
        attn = ((q @ kv) * self.scale).softmax(dim=-1)  # B, heads, M, HW
        out = (attn @ kv.transpose(-1, -2)).transpose(1, 2).reshape(b, m, c)
        out = out * (2.0 * self.alpha(tokens))
        return self.layer_norm(tokens + self.drop_path(self.proj(out)))


class Former(nn.Module):
    """Token self-attention + FFN, post-norm (release ``GlobalBlock``, ``gbr_type='attn'``).

    Only Q is projected (K = V = tokens); ``channel_mlp`` is the output projection.
    """

    def __init__(
        self, token_dim: int, num_heads: int = 4, ffn_ratio: int = 2, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        # Created first, as in the release, so the state-dict order matches too.
        self.ffn = nn.Sequential(
            nn.Linear(token_dim, token_dim * ffn_ratio),
            nn.GELU(),
            nn.Linear(token_dim * ffn_ratio, token_dim),
        )
        self.ffn_norm = nn.LayerNorm(token_dim)
        self.num_heads = num_heads
        self.scale = (token_dim // num_heads) ** -0.5
        self.q = nn.Linear(token_dim, token_dim)
        self.channel_mlp = nn.Linear(token_dim, token_dim)
        self.layer_norm = nn.LayerNorm(token_dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, m, d = tokens.shape
        q = self.q(tokens).reshape(b, m, self.num_heads, -1).transpose(1, 2)  # B, heads, M, dh
        kv = tokens.reshape(b, m, self.num_heads, -1).transpose(1, 2)
        attn = ((q @ kv.transpose(-1, -2)) * self.scale).softmax(dim=-1)  # B, heads, M, M
        out = (attn @ kv).transpose(1, 2).reshape(b, m, d)
        tokens = self.layer_norm(tokens + self.drop_path(self.channel_mlp(out)))
        # The release has no drop path on the FFN branch.
        return self.ffn_norm(tokens + self.ffn(tokens))


class FormerToMobile(nn.Module):
    """Every pixel attends to the tokens (release ``Global2Local``, ``gbr_type='attn'``).

    Q = the feature map (no projection), K = ``k(tokens)``, V = ``proj(tokens)``; the result is
    added to the feature map with no output projection or norm.
    """

    def __init__(self, channels: int, token_dim: int, num_heads: int = 2, drop_path: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (channels // num_heads) ** -0.5
        self.k = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(token_dim, channels)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        m = tokens.shape[1]
        q = x.reshape(b, self.num_heads, c // self.num_heads, h * w).transpose(-1, -2)  # B, heads, HW, c
        k = self.k(tokens).reshape(b, m, self.num_heads, -1).transpose(1, 2)  # B, heads, M, c
        v = self.proj(tokens).reshape(b, m, self.num_heads, -1).transpose(1, 2)  # B, heads, M, c
        # q·kᵀ written with kᵀ = k.transpose(-1, -2), not as one permute of the projection:
        # torch.compile's attention fusion (inductor, torch 2.13) takes any permuted key for
        # key.transpose(-2, -1) and builds a wrong scaled_dot_product_attention from it
        # (pytorch/pytorch#195320); this spelling is the one it fuses correctly.
        attn = ((q @ k.transpose(-1, -2)) * self.scale).softmax(dim=-1)  # B, heads, HW, M
        out = (attn @ v).transpose(-1, -2).reshape(b, c, h, w)
        return x + self.drop_path(out)


class LiteBottleneck(nn.Module):
    """dw 3x3 (depth multiplier ``e1``) + BN + ReLU6 -> pw + BN; no tokens, no dynamic ReLU.

    The release's ``DnaBlock3`` with ``e2 = 0`` (``use_conv_alone``); tokens pass through.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int, e1: int, group_num: int = 1) -> None:
        super().__init__()
        hidden = in_chs * e1
        self.conv = nn.Sequential(
            nn.Conv2d(in_chs, hidden, 3, stride, 1, groups=in_chs, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            _shuffle_or_identity(in_chs, group_num > 1),
            nn.Conv2d(hidden, out_chs, 1, groups=group_num, bias=False),
            nn.BatchNorm2d(out_chs),
        )
        self.has_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.conv(x)
        # The release adds this residual without drop path.
        return (out + x if self.has_skip else out), tokens


class DnaBlock3(nn.Module):
    """Downsampling Mobile-Former block: dw(e1, stride) -> pw, then a residual dw(e2) -> pw.

    Dynamic ReLU after both depthwise convs; the projections are linear. With ``group_num > 1``
    the pointwise convs are grouped and each depthwise expansion is followed by a shuffle with
    one group per input channel (the release's ``ChannelShuffle(inp)``).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int,
        e1: int,
        e2: int,
        token_dim: int,
        group_num: int = 1,
        hyper_reduction: int = 4,
        bridge_heads: int = 2,
        former_heads: int = 4,
        ffn_ratio: int = 2,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        hidden1 = round(in_chs * e1)
        hidden2 = round(out_chs * e2)
        shuffle = group_num > 1
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_chs, hidden1, 3, stride, 1, groups=in_chs, bias=False),
            nn.BatchNorm2d(hidden1),
            _shuffle_or_identity(in_chs, shuffle),
        )
        self.hyper1 = DynamicReLU(token_dim, hidden1, hyper_reduction)
        self.conv2 = nn.Sequential(
            nn.Conv2d(hidden1, out_chs, 1, groups=group_num, bias=False), nn.BatchNorm2d(out_chs)
        )
        self.conv3 = nn.Sequential(
            nn.Conv2d(out_chs, hidden2, 3, 1, 1, groups=out_chs, bias=False),
            nn.BatchNorm2d(hidden2),
            _shuffle_or_identity(out_chs, shuffle),
        )
        self.hyper3 = DynamicReLU(token_dim, hidden2, hyper_reduction)
        self.conv4 = nn.Sequential(
            nn.Conv2d(hidden2, out_chs, 1, groups=group_num, bias=False), nn.BatchNorm2d(out_chs)
        )
        self.drop_path = DropPath(drop_path)
        self.local_global = MobileToFormer(in_chs, token_dim, bridge_heads, drop_path)
        self.global_block = Former(token_dim, former_heads, ffn_ratio, drop_path)
        self.global_local = FormerToMobile(out_chs, token_dim, bridge_heads, drop_path)
        self.has_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.global_block(self.local_global(x, tokens))
        out = self.conv2(self.hyper1(self.conv1(x), tokens))
        out = out + self.drop_path(self.conv4(self.hyper3(self.conv3(out), tokens)))
        out = self.global_local(out, tokens)
        # The release adds the outer residual after Former->Mobile and without drop path.
        return (out + x if self.has_skip else out), tokens


class DnaBlock(nn.Module):
    """Stride-1 Mobile-Former block: pw(e1) -> dw -> pw inverted bottleneck.

    Dynamic ReLU after the expansion and the depthwise conv. With ``group_num > 1`` both
    pointwise convs are grouped and followed by a channel shuffle.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int,
        e1: int,
        token_dim: int,
        group_num: int = 1,
        hyper_reduction: int = 4,
        bridge_heads: int = 2,
        former_heads: int = 4,
        ffn_ratio: int = 2,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = round(in_chs * e1)
        shuffle = group_num > 1
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_chs, hidden, 1, groups=group_num, bias=False),
            nn.BatchNorm2d(hidden),
            _shuffle_or_identity(group_num, shuffle),
        )
        self.hyper1 = DynamicReLU(token_dim, hidden, hyper_reduction)
        self.conv2 = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden)
        )
        self.hyper2 = DynamicReLU(token_dim, hidden, hyper_reduction)
        self.conv3 = nn.Sequential(
            nn.Conv2d(hidden, out_chs, 1, groups=group_num, bias=False),
            nn.BatchNorm2d(out_chs),
            _shuffle_or_identity(group_num, shuffle),
        )
        self.drop_path = DropPath(drop_path)
        self.local_global = MobileToFormer(in_chs, token_dim, bridge_heads, drop_path)
        self.global_block = Former(token_dim, former_heads, ffn_ratio, drop_path)
        self.global_local = FormerToMobile(out_chs, token_dim, bridge_heads, drop_path)
        self.has_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.global_block(self.local_global(x, tokens))
        out = self.hyper1(self.conv1(x), tokens)
        out = self.conv3(self.hyper2(self.conv2(out), tokens))
        # The release (gbr_before_skip=False) adds the residual before Former->Mobile.
        if self.has_skip:
            out = x + self.drop_path(out)
        return self.global_local(out, tokens), tokens


class MergeClassifier(nn.Module):
    """1x1 conv (x ``expand``) + BN + ReLU6 -> avg pool -> h_swish, concat token 0, FC + BN1d +
    h_swish -> dropout -> linear (release ``MergeClassifier`` with ``last_act='relu'``)."""

    def __init__(
        self,
        in_chs: int,
        token_dim: int,
        num_features: int,
        num_classes: int,
        expand: int = 6,
        group_num: int = 1,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = in_chs * expand
        self.conv = nn.Sequential(
            _shuffle_or_identity(group_num, group_num > 1),
            nn.Conv2d(in_chs, hidden, 1, groups=group_num, bias=False),
            nn.BatchNorm2d(hidden),
        )
        self.act = nn.ReLU6()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(hidden + token_dim, num_features), nn.BatchNorm1d(num_features), nn.Hardswish()
        )
        self.classifier = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(num_features, num_classes))

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = F.hardswish(self.pool(self.act(self.conv(x))).flatten(1))
        x = self.fc(torch.cat([x, tokens[:, 0]], dim=1))
        return x if pre_logits else self.classifier(x)


class MobileFormer(nn.Module):
    """Mobile-Former classifier. ``forward_features`` returns ``(feature map, tokens)``."""

    def __init__(
        self,
        cfg: ModelCfg,
        blocks: Sequence[Sequence[Any]],
        stem_chs: int,
        token_num: int,
        token_dim: int,
        num_features: int,
        group_num: int = 1,
        head_expand: int = 6,
        hyper_reduction: int = 4,
        bridge_heads: int = 2,
        former_heads: int = 4,
        ffn_ratio: int = 2,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        self.tokens = nn.Embedding(token_num, token_dim)
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_chs, 3, 2, 1, bias=False), nn.BatchNorm2d(stem_chs), nn.ReLU6()
        )
        token_kw = {
            "token_dim": token_dim,
            "group_num": group_num,
            "hyper_reduction": hyper_reduction,
            "bridge_heads": bridge_heads,
            "former_heads": former_heads,
            "ffn_ratio": ffn_ratio,
        }
        layers: list[nn.Module] = []
        in_chs = stem_chs
        for idx, row in enumerate(blocks):
            spec = BlockSpec(*row)
            # The release scales drop path linearly with the block index, from 1/L to 1.
            dp = drop_path_rate * (idx + 1) / len(blocks)
            if spec.kind == "lite":
                block: nn.Module = LiteBottleneck(in_chs, spec.out_chs, spec.stride, spec.e1, group_num)
            elif spec.kind == "dna3":
                block = DnaBlock3(
                    in_chs, spec.out_chs, spec.stride, spec.e1, spec.e2, drop_path=dp, **token_kw
                )
            elif spec.kind == "dna":
                block = DnaBlock(in_chs, spec.out_chs, spec.stride, spec.e1, drop_path=dp, **token_kw)
            else:
                raise ValueError(f"unknown Mobile-Former block kind {spec.kind!r}; use lite, dna3 or dna.")
            layers.append(block)
            in_chs = spec.out_chs
        self.features = nn.ModuleList(layers)
        self.local_global = MobileToFormer(in_chs, token_dim, bridge_heads, drop_path_rate)
        self.classifier = MergeClassifier(
            in_chs, token_dim, num_features, cfg.num_classes, head_expand, group_num, drop_rate
        )
        self.num_features = num_features
        self._init_weights()

    def _init_weights(self) -> None:
        # The release's initialisation (used when training from scratch).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_input(x, self.cfg)
        tokens = expand_to_batch(self.tokens.weight, x.shape[0])
        x = self.stem(x)
        for block in self.features:
            x, tokens = block(x, tokens)
        return x, self.local_global(x, tokens)

    def forward_head(
        self, features: tuple[torch.Tensor, torch.Tensor], pre_logits: bool = False
    ) -> torch.Tensor:
        x, tokens = features
        return self.classifier(x, tokens, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map an official ``AAboys/MobileFormer`` state dict onto ours.

    The key names are the release's; the filter only drops non-tensor entries and supplies
    BatchNorm ``num_batches_tracked`` counters a checkpoint may lack (they do not affect eval).
    """
    out = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in out:
            out[key] = value
    return out


# Per variant: the release's block table as (kind, e1, out_chs, stride, e2); row 0 is the lite
# bottleneck (release DnaBlock3 with e2 = 0). The "dna" rows' e2 is copied from the release
# although DnaBlock does not use it.
_ARCHS: dict[str, dict[str, Any]] = {
    "508m": {
        "blocks": (
            ("lite", 2, 24, 1, 0),
            ("dna3", 6, 40, 2, 4),
            ("dna", 3, 40, 1, 3),
            ("dna3", 6, 72, 2, 4),
            ("dna", 3, 72, 1, 3),
            ("dna3", 6, 128, 2, 4),
            ("dna", 4, 128, 1, 4),
            ("dna", 6, 176, 1, 4),
            ("dna", 6, 176, 1, 4),
            ("dna3", 6, 240, 2, 4),
            ("dna", 6, 240, 1, 4),
            ("dna", 6, 240, 1, 4),
        ),
        "stem_chs": 24,
        "token_num": 6,
        "token_dim": 192,
        "num_features": 1920,
    },
    "294m": {
        "blocks": (
            ("lite", 2, 16, 1, 0),
            ("dna3", 6, 24, 2, 4),
            ("dna", 4, 24, 1, 4),
            ("dna3", 6, 48, 2, 4),
            ("dna", 4, 48, 1, 4),
            ("dna3", 6, 96, 2, 4),
            ("dna", 4, 96, 1, 4),
            ("dna", 6, 128, 1, 4),
            ("dna", 6, 128, 1, 4),
            ("dna3", 6, 192, 2, 4),
            ("dna", 6, 192, 1, 4),
            ("dna", 6, 192, 1, 4),
        ),
        "stem_chs": 16,
        "token_num": 6,
        "token_dim": 192,
        "num_features": 1920,
    },
    "214m": {
        "blocks": (
            ("lite", 2, 12, 1, 0),
            ("dna3", 6, 20, 2, 4),
            ("dna", 3, 20, 1, 4),
            ("dna3", 6, 40, 2, 4),
            ("dna", 4, 40, 1, 4),
            ("dna3", 6, 80, 2, 4),
            ("dna", 4, 80, 1, 4),
            ("dna", 6, 112, 1, 4),
            ("dna", 6, 112, 1, 4),
            ("dna3", 6, 160, 2, 4),
            ("dna", 6, 160, 1, 4),
            ("dna", 6, 160, 1, 4),
        ),
        "stem_chs": 12,
        "token_num": 6,
        "token_dim": 192,
        "num_features": 1600,
    },
    "151m": {
        "blocks": (
            ("lite", 2, 12, 1, 0),
            ("dna3", 6, 16, 2, 4),
            ("dna", 3, 16, 1, 3),
            ("dna3", 6, 32, 2, 4),
            ("dna", 3, 32, 1, 3),
            ("dna3", 6, 64, 2, 4),
            ("dna", 4, 64, 1, 4),
            ("dna", 6, 88, 1, 4),
            ("dna", 6, 88, 1, 4),
            ("dna3", 6, 128, 2, 4),
            ("dna", 6, 128, 1, 4),
            ("dna", 6, 128, 1, 4),
        ),
        "stem_chs": 12,
        "token_num": 6,
        "token_dim": 192,
        "num_features": 1280,
    },
    "96m": {
        "blocks": (
            ("lite", 2, 12, 1, 0),
            ("dna3", 6, 16, 2, 4),
            ("dna3", 6, 32, 2, 4),
            ("dna", 3, 32, 1, 3),
            ("dna3", 6, 64, 2, 4),
            ("dna", 4, 64, 1, 4),
            ("dna", 6, 88, 1, 4),
            ("dna3", 6, 128, 2, 4),
            ("dna", 6, 128, 1, 4),
        ),
        "stem_chs": 12,
        "token_num": 4,
        "token_dim": 128,
        "num_features": 1280,
    },
}
# 52M and 26M share one table (the lite block has stride 2 here); 26M groups its pointwise
# convs in 4 groups with channel shuffles.
_BLOCKS_26_52 = (
    ("lite", 3, 12, 2, 0),
    ("dna", 3, 12, 1, 3),
    ("dna3", 6, 24, 2, 4),
    ("dna", 3, 24, 1, 3),
    ("dna3", 6, 48, 2, 4),
    ("dna", 4, 48, 1, 4),
    ("dna", 6, 64, 1, 4),
    ("dna3", 6, 96, 2, 4),
    ("dna", 6, 96, 1, 4),
)
_ARCHS["52m"] = {
    "blocks": _BLOCKS_26_52,
    "stem_chs": 8,
    "token_num": 3,
    "token_dim": 128,
    "num_features": 1024,
}
_ARCHS["26m"] = {
    "blocks": _BLOCKS_26_52,
    "stem_chs": 8,
    "token_num": 3,
    "token_dim": 128,
    "num_features": 1024,
    "group_num": 4,
}


# Published figures (README = paper): params (M), MAdds (G) at 224, ImageNet top-1; the
# classifier dropout of the README training recipe; Google Drive file id of the checkpoint.
_RELEASE: dict[str, tuple[float, float, float, float, str]] = {
    "508m": (14.0, 0.508, 79.3, 0.3, "1bqLIcpbCaxK-Eb4wcxk0iJpFJ1nXfGuF"),
    "294m": (11.4, 0.294, 77.9, 0.3, "1JBSM7NJ60fN9TgT5sMnbhmbZwrzcBd0r"),
    "214m": (9.4, 0.214, 76.7, 0.2, "13MOjdIMMBJgqyq_ld-grRhBBHOFU5Ggd"),
    "151m": (7.6, 0.151, 75.2, 0.2, "1w4QO-zhJ8QI1zGu7iOZ7lXxYJ5G1VXdF"),
    "96m": (4.6, 0.096, 72.8, 0.2, "1kMbRceswujtliCHKr-nxMFsrkvBrEfrW"),
    "52m": (3.5, 0.052, 68.7, 0.2, "1ekq_FPl57gjIlYX16Ll0nBuEyB0pjgGt"),
    "26m": (3.2, 0.026, 64.0, 0.1, "15uWYzx2VWWUjacZQHB56vOHzKxQDlp5O"),
}


# A few narrow blocks of every kind; every width divides by 4 so 26M's group_num=4 still fits.
# Three tokens, as the 26M/52M releases have: a token count equal to a head count (2 in the
# bridges) hides shape mix-ups between the two axes (torch.compile's attention fusion had one).
SMOKE_ARCH = {
    "blocks": (
        ("lite", 2, 8, 1, 0),
        ("dna3", 2, 16, 2, 2),
        ("dna", 2, 16, 1, 2),
        ("dna3", 2, 24, 2, 2),
    ),
    "stem_chs": 8,
    "token_num": 3,
    "token_dim": 32,
    "num_features": 64,
}


def _model_cfg(variant: str) -> ModelCfg:
    params_m, gmacs, top1, drop_rate, drive_id = _RELEASE[variant]
    return ModelCfg(
        name=f"mobile_former_{variant}",
        family="mobile_former",
        smoke_arch=SMOKE_ARCH,
        task="classification",
        input_size=(224, 224),
        num_classes=1000,
        label_set="imagenet1k",
        # Every conv pads, so any size works; 32 keeps the five stride-2 stages exact.
        size_divisor=32,
        interpolation="bilinear",
        crop_pct=0.875,
        checkpoint=f"AAboys/MobileFormer README, Google Drive file id {drive_id}",
        paper=PaperFigures(
            params_m=params_m,
            gmacs=gmacs,
            resolution=(224, 224),
            metric=f"top-1 {top1}",
            source="Mobile-Former paper (CVPR 2022) / AAboys/MobileFormer README",
            note="published MAdds include BatchNorm (2 per element); the dynamic-ReLU "
            "coefficient MLPs and token bridges are counted as matmuls",
        ),
        arch={**_ARCHS[variant], "drop_rate": drop_rate},
    )


def _build(cfg: ModelCfg, **kwargs: Any) -> MobileFormer:
    return MobileFormer(cfg, **{**cfg.arch, **kwargs})


@register_model(_model_cfg("26m"), checkpoint_filter=checkpoint_filter_fn)
def mobile_former_26m(cfg: ModelCfg, **kwargs: Any) -> MobileFormer:
    return _build(cfg, **kwargs)


@register_model(_model_cfg("52m"), checkpoint_filter=checkpoint_filter_fn)
def mobile_former_52m(cfg: ModelCfg, **kwargs: Any) -> MobileFormer:
    return _build(cfg, **kwargs)


@register_model(_model_cfg("96m"), checkpoint_filter=checkpoint_filter_fn)
def mobile_former_96m(cfg: ModelCfg, **kwargs: Any) -> MobileFormer:
    return _build(cfg, **kwargs)


@register_model(_model_cfg("151m"), checkpoint_filter=checkpoint_filter_fn)
def mobile_former_151m(cfg: ModelCfg, **kwargs: Any) -> MobileFormer:
    return _build(cfg, **kwargs)


@register_model(_model_cfg("214m"), checkpoint_filter=checkpoint_filter_fn)
def mobile_former_214m(cfg: ModelCfg, **kwargs: Any) -> MobileFormer:
    return _build(cfg, **kwargs)


@register_model(_model_cfg("294m"), checkpoint_filter=checkpoint_filter_fn)
def mobile_former_294m(cfg: ModelCfg, **kwargs: Any) -> MobileFormer:
    return _build(cfg, **kwargs)


@register_model(_model_cfg("508m"), checkpoint_filter=checkpoint_filter_fn)
def mobile_former_508m(cfg: ModelCfg, **kwargs: Any) -> MobileFormer:
    return _build(cfg, **kwargs)
