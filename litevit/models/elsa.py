"""ELSA-Swin: Swin-T/S/B with Enhanced Local Self-Attention in stages 1-3.

Paper: "ELSA: Enhanced Local Self-Attention for Vision Transformer" (arXiv 2112.12786).
Official code: damo-cv/ELSA, ``cls/models/elsa/elsa.py`` (the ELSA operator) and
``cls/models/elsa_swin.py`` (the network). Only ELSA-Swin is released (no ELSA-VOLO).

Architecture (as the official classification code builds it):

* Patch embedding conv 4x4/4 + LayerNorm; PatchMerging (LN(4C) -> Linear 4C->2C, no bias)
  after stages 1-3; final LayerNorm, token mean, ``head``.
* Stages 1-3: ``ELSABlock``: pre-norm ELSA + MLP (ratio 4). No window partition, no shift.
* Stage 4: Swin window attention (window 7, relative-position bias) + MLP.

ELSA (per block, channels C, heads G, kernel k = 7)::

    q, k, v = split(Conv1x1(C -> 2*dqk + C, bias)(x))
    logits  = Conv1x1(dqk -> G*k*k)(GELU(Conv_kxk(dqk -> dqk, groups=dqk/group_width)(q * k)))
    attn    = softmax over each head's k*k taps
    y       = GhostHead(v, attn, O**lambda, gamma*S)            # litevit.ops.ghost_head
    out     = post_proj(y)                                       # Linear C -> C

Where the official code differs from the paper / Microsoft Swin (the official code wins):

* The Hadamard product ``q * k`` is not scaled (``qk_scale = 1``), though ``ELSA`` would default
  to ``head_dim ** -0.5``.
* ``dim_qk = C // 3 * 2`` rounded up to a multiple of ``group_width`` (4 for Tiny, 8 for Small
  and Base): 88/176/344 for Base.
* Ghost heads: the released models use lambda = 0, gamma = 1, so the parameter ``ghost_head``
  (1, C, k, k) holds the additive matrix S only and the multiplicative one is all ones.
  The general forms (lambda != 0: O ** lambda, O initialised N(0, 1)) are supported as well.
* Stage-4 ``attn.pre_proj`` is a fused Linear whose output chunks are ordered (v, q, k), not
  Swin's (q, k, v); the bias table is called ``rb`` and its index ``relative_id``, and the
  relative offset is taken as key minus query (Microsoft Swin: query minus key). We keep all
  three as the release has them, so its weights load without reordering.
* The classification code builds the model for one input size: it shrinks the stage-4 window to
  the map when the map is at most 7 wide (changing ``rb``'s shape) and cannot partition maps
  that are not multiples of 7. We keep the window at 7 for every input size (so the released
  weights load) and pad the map to multiples of 7 with zeros, as the official det/seg backbone
  (``ELSASwin`` in ``det/mmdet/models/backbones/elsa_swin.py``) does, padded tokens unmasked.
  The shifted-window rule is the classification code's: shift ``window // 2`` on odd blocks only
  when the smaller side of the stage-4 map exceeds the window; at 224 (7x7 map) the window
  covers the whole map, so no block shifts and the result equals the official model's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from litevit.models._layers import DropPath, Mlp, check_input
from litevit.models._registry import IMAGENET_MEAN, IMAGENET_STD, ModelCfg, PaperFigures, register_model
from litevit.ops.ghost_head import GHOST_HEAD_OP

# The value added to attention logits between tokens of different regions in a shifted window
# (Swin's choice, kept by ELSA).
_SHIFT_MASK_VALUE = -100.0


def _round_up(value: int, multiple: int) -> int:
    return math.ceil(value / multiple) * multiple


class ELSA(nn.Module):
    """Enhanced local self-attention on a channels-last (B, H, W, C) map, stride 1.

    The aggregation itself (values x (local attention * O**lambda + gamma*S)) is the
    ``GhostHead`` op; everything around it is plain convolutions, GELU, softmax and Linear.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        kernel_size: int = 7,
        group_width: int = 8,
        dim_qk: int | None = None,
        qkv_bias: bool = True,
        qk_scale: float | None = 1.0,
        lam: float = 0.0,
        gamma: float = 1.0,
        dilation: int = 1,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"ELSA: num_heads ({num_heads}) must divide dim ({dim}).")
        self.num_heads = num_heads
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.dim_qk = _round_up(dim_qk or dim // 3 * 2, group_width)
        # Official: ``qk_scale or head_dim ** -0.5``; ELSA-Swin passes 1 (no scaling).
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.lam = lam
        self.gamma = gamma

        self.pre_proj = nn.Conv2d(dim, 2 * self.dim_qk + dim, 1, bias=qkv_bias)
        # Keys attn.0 / attn.2 as in the release (GELU at index 1).
        self.attn = nn.Sequential(
            nn.Conv2d(
                self.dim_qk,
                self.dim_qk,
                kernel_size,
                padding=(kernel_size // 2) * dilation,
                dilation=dilation,
                groups=self.dim_qk // group_width,
            ),
            nn.GELU(),
            nn.Conv2d(self.dim_qk, kernel_size**2 * num_heads, 1),
        )
        ghost_shape = (dim, kernel_size, kernel_size)
        # Parameter layout as in the release: (2, 1, C, k, k) = [O, S] when both terms are
        # learned, (1, C, k, k) when only one is, nothing when neither is.
        if lam != 0 and gamma != 0:
            mul_init = torch.randn(1, 1, *ghost_shape)
            add_init = nn.init.trunc_normal_(torch.zeros(1, 1, *ghost_shape), std=0.02)
            self.ghost_head: nn.Parameter | None = nn.Parameter(torch.cat((mul_init, add_init)))
        elif gamma != 0:
            self.ghost_head = nn.Parameter(nn.init.trunc_normal_(torch.zeros(1, *ghost_shape), std=0.02))
        elif lam != 0:
            self.ghost_head = nn.Parameter(torch.randn(1, *ghost_shape))
        else:
            self.ghost_head = None
        self.attn_drop = nn.Dropout(attn_drop)
        self.post_proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def ghost_filters(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Effective (O ** lambda, gamma * S), each (C, k, k); ones / zeros for absent terms."""
        channels = like.shape[1]
        shape = (channels, self.kernel_size, self.kernel_size)
        ones = like.new_ones(shape)
        zeros = like.new_zeros(shape)
        if self.ghost_head is None:
            return ones, zeros
        if self.lam != 0 and self.gamma != 0:
            return self.ghost_head[0, 0] ** self.lam, self.ghost_head[1, 0] * self.gamma
        if self.gamma != 0:
            return ones, self.ghost_head[0] * self.gamma
        return self.ghost_head[0] ** self.lam, zeros

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x.shape
        x = x.permute(0, 3, 1, 2)
        q, k, v = torch.split(self.pre_proj(x), [self.dim_qk, self.dim_qk, x.shape[1]], dim=1)
        logits = self.attn(q * k * self.scale)
        taps = self.kernel_size**2
        attn = logits.reshape(batch, self.num_heads, taps, height, width).softmax(dim=2)
        attn = self.attn_drop(attn).reshape(batch, self.num_heads * taps, height, width)
        ghost_mul, ghost_add = self.ghost_filters(v)
        y = GHOST_HEAD_OP(
            v,
            attn,
            ghost_mul,
            ghost_add,
            heads=self.num_heads,
            kernel_size=self.kernel_size,
            dilation=self.dilation,
        )
        return self.proj_drop(self.post_proj(y.permute(0, 2, 3, 1)))


class ELSABlock(nn.Module):
    """Pre-norm ELSA + MLP on a (B, H, W, C) map (official ``ELSASwinBlock``)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        **elsa_kwargs: Any,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ELSA(dim, num_heads, attn_drop=attn_drop, **elsa_kwargs)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def relative_position_index(window_size: int) -> torch.Tensor:
    """(N*N,) index into the (2w-1)^2 bias table for query i, key j (N = w*w tokens).

    ELSA takes the offset as key minus query (Microsoft Swin: query minus key); the learned
    table is indexed the way the release trained it.
    """
    rows, cols = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    coords = torch.stack((rows.flatten(), cols.flatten()))  # (2, N)
    offset = coords[:, None, :] - coords[:, :, None]  # (2, N_query, N_key): key - query
    span = 2 * window_size - 1
    return ((offset[0] + window_size - 1) * span + offset[1] + window_size - 1).flatten()


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows of (N, C) tokens, relative-position bias."""

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.scale = (dim // num_heads) ** -0.5
        self.rb = nn.Parameter(
            nn.init.trunc_normal_(torch.zeros(num_heads, (2 * window_size - 1) ** 2), std=0.02)
        )
        # Derived from window_size; the release stores it, the checkpoint filter drops it.
        self.relative_id: torch.Tensor
        self.register_buffer("relative_id", relative_position_index(window_size), persistent=False)
        # Fused projection, output chunks ordered (v, q, k) as in the release.
        self.pre_proj = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.post_proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B*num_windows, N, C); ``mask`` (num_windows, N, N) of 0 / -100, or None."""
        windows, tokens, channels = x.shape
        heads = self.num_heads
        v, q, k = (
            self.pre_proj(x).reshape(windows, tokens, 3, heads, channels // heads).permute(2, 0, 3, 1, 4)
        )
        bias = self.rb[:, self.relative_id].reshape(1, heads, tokens, tokens)
        logits = (q @ k.transpose(-2, -1)) * self.scale + bias
        if mask is not None:
            num_windows = mask.shape[0]
            logits = logits.reshape(-1, num_windows, heads, tokens, tokens) + mask[None, :, None]
            logits = logits.reshape(windows, heads, tokens, tokens)
        attn = self.attn_drop(logits.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(windows, tokens, channels)
        return self.proj_drop(self.post_proj(out))


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of the window -> (B*num_windows, window*window, C)."""
    batch, height, width, channels = x.shape
    x = x.reshape(batch, height // window_size, window_size, width // window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, channels)


def window_reverse(windows: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: -> (B, H, W, C)."""
    channels = windows.shape[-1]
    x = windows.reshape(-1, height // window_size, width // window_size, window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def shifted_window_mask(
    height: int, width: int, window_size: int, shift: int, device: torch.device
) -> torch.Tensor:
    """(num_windows, N, N) mask keeping attention within the regions a cyclic shift brought together."""
    region = torch.zeros(height, width, device=device)
    bounds = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    label = 0
    for rows in bounds:
        for cols in bounds:
            region[rows, cols] = label
            label += 1
    region_windows = window_partition(region[None, :, :, None], window_size).squeeze(-1)  # (nW, N)
    different = region_windows[:, None, :] != region_windows[:, :, None]
    return torch.zeros_like(different, dtype=torch.float32).masked_fill(different, _SHIFT_MASK_VALUE)


class SwinBlock(nn.Module):
    """Pre-norm (shifted-)window attention + MLP on a (B, H, W, C) map (stage 4)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        shift_small_maps: bool = False,
    ) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, {window_size}); got {shift_size}.")
        self.window_size = window_size
        self.shift_size = shift_size
        # The det/seg backbone shifts every odd block; the classifier skips the shift when the map
        # fits one window (see the module docstring).
        self.shift_small_maps = shift_small_maps
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def _window_attention(self, x: torch.Tensor) -> torch.Tensor:
        _, height, width, _ = x.shape
        window = self.window_size
        # Classification code: a map that fits one window in its smaller side is never shifted.
        shift = self.shift_size if self.shift_small_maps or min(height, width) > window else 0
        # Zero padding to multiples of the window (det/seg backbone); padded tokens are unmasked.
        pad_bottom = (window - height % window) % window
        pad_right = (window - width % window) % window
        x = F.pad(x, (0, 0, 0, pad_right, 0, pad_bottom))
        padded_h, padded_w = height + pad_bottom, width + pad_right
        mask = None
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(padded_h, padded_w, window, shift, x.device).to(x.dtype)
        out = self.attn(window_partition(x, window), mask)
        x = window_reverse(out, window, padded_h, padded_w)
        if shift:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        return x[:, :height, :width]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self._window_attention(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Conv patch x patch / patch + LayerNorm -> (B, H/patch, W/patch, C)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class PatchMerging(nn.Module):
    """2x2 neighbourhood concatenation (Swin order), LayerNorm(4C), Linear 4C -> 2C without bias."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat((x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]), dim=-1)
        return self.reduction(self.norm(x))


class Stage(nn.Module):
    """Blocks of one resolution followed by an optional PatchMerging (official ``BasicLayer``)."""

    def __init__(self, blocks: list[nn.Module], downsample: nn.Module | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class ELSASwin(nn.Module):
    """Swin with ELSA blocks in all stages but the last (official ``ELSASwin``)."""

    def __init__(
        self,
        cfg: ModelCfg,
        embed_dim: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (3, 6, 12, 24),
        group_width: int = 8,
        patch_size: int = 4,
        window_size: int = 7,
        elsa_kernel: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = 1.0,
        lam: float = 0.0,
        gamma: float = 1.0,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {depths} and num_heads {num_heads} must have the same length.")
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        num_stages = len(depths)
        self.num_features = embed_dim * 2 ** (num_stages - 1)
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_drop = nn.Dropout(drop_rate)
        self.layers = build_stages(
            embed_dim,
            depths,
            num_heads,
            group_width=group_width,
            window_size=window_size,
            elsa_kernel=elsa_kernel,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            lam=lam,
            gamma=gamma,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
        )
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, self.num_classes) if self.num_classes > 0 else nn.Identity()
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> normalised stage-4 tokens (B, H/32, W/32, C)."""
        check_input(x, self.cfg)
        x = self.pos_drop(self.patch_embed(x))
        return self.norm(self.layers(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(1, 2))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_stages(
    embed_dim: int,
    depths: tuple[int, ...],
    num_heads: tuple[int, ...],
    *,
    group_width: int,
    window_size: int,
    elsa_kernel: int,
    mlp_ratio: float,
    qkv_bias: bool,
    qk_scale: float | None,
    lam: float,
    gamma: float,
    drop_rate: float,
    attn_drop_rate: float,
    drop_path_rate: float,
    shift_small_maps: bool = False,
) -> nn.Sequential:
    """The four stages (official ``layers``): ELSA blocks + PatchMerging, then Swin blocks.

    ``shift_small_maps``: the det/seg backbone's rule (shift every odd stage-4 block whatever the
    map size) instead of the classifier's.
    """
    num_stages = len(depths)
    # Stochastic-depth rates rise linearly over all blocks (computed on CPU: works under meta).
    drop_paths = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
    stages = []
    for i, heads in enumerate(num_heads):
        dim = embed_dim * 2**i
        rates = drop_paths[sum(depths[:i]) : sum(depths[: i + 1])]
        if i < num_stages - 1:
            blocks: list[nn.Module] = [
                ELSABlock(
                    dim,
                    heads,
                    mlp_ratio=mlp_ratio,
                    drop=drop_rate,
                    attn_drop=attn_drop_rate,
                    drop_path=rate,
                    kernel_size=elsa_kernel,
                    group_width=group_width,
                    qkv_bias=qkv_bias,
                    qk_scale=qk_scale,
                    lam=lam,
                    gamma=gamma,
                )
                for rate in rates
            ]
        else:
            blocks = [
                SwinBlock(
                    dim,
                    heads,
                    window_size=window_size,
                    shift_size=0 if j % 2 == 0 else window_size // 2,
                    shift_small_maps=shift_small_maps,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop=drop_rate,
                    attn_drop=attn_drop_rate,
                    drop_path=rate,
                )
                for j, rate in enumerate(rates)
            ]
        stages.append(Stage(blocks, PatchMerging(dim) if i < num_stages - 1 else None))
    return nn.Sequential(*stages)


def _init_weights(module: nn.Module) -> None:
    # Official: timm ``_init_vit_weights`` (non-jax): Linear trunc-normal(.02) with zero bias,
    # LayerNorm ones/zeros; convolutions keep PyTorch's default.
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def checkpoint_filter_fn(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Official ELSA-Swin state dict -> ours: same key names; derived buffers are dropped.

    The release stores ``attn.relative_id`` (stage-4 bias index) and, when built for a size with
    shifted stage-4 windows, ``attn_mask``; both follow from the window size and input size.
    """
    return {
        key: value for key, value in state.items() if not key.endswith((".attn.relative_id", ".attn_mask"))
    }


_REPO = "damo-cv/ELSA"
_MACS_NOTE = (
    "fvcore count of the official model plus the ELSA aggregation fvcore does not see "
    "(B*C*H*W*k*k per ELSA layer)."
)


def _elsa_cfg(
    name: str, arch: dict[str, Any], params_m: float, gmacs: float, top1: float, checkpoint: str
) -> ModelCfg:
    return ModelCfg(
        name=name,
        family="elsa",
        smoke_arch={"embed_dim": 24, "depths": (1, 1, 1, 2), "num_heads": (1, 2, 2, 4), "group_width": 4},
        task="classification",
        input_size=(224, 224),
        num_classes=1000,
        label_set="imagenet1k",
        # Patch 4 and three 2x2 mergings; the stage-4 map is padded to multiples of the window.
        size_divisor=32,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        interpolation="bicubic",
        crop_pct=0.9,
        checkpoint=checkpoint,
        paper=PaperFigures(
            params_m=params_m,
            gmacs=gmacs,
            resolution=(224, 224),
            metric=f"top-1 {top1}",
            source="damo-cv/ELSA README (params, top-1); fvcore + ELSA aggregation (GMACs)",
            note=_MACS_NOTE,
        ),
        arch=arch,
    )


_COMMON_ARCH: dict[str, Any] = {
    "patch_size": 4,
    "window_size": 7,
    "elsa_kernel": 7,
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "qk_scale": 1.0,  # the Hadamard product q*k is not scaled
    "lam": 0.0,  # ghost heads: additive matrix only
    "gamma": 1.0,
}

VARIANTS: dict[str, dict[str, Any]] = {
    "elsa_swin_tiny": dict(
        _COMMON_ARCH,
        embed_dim=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        group_width=4,
        drop_path_rate=0.1,
    ),
    "elsa_swin_small": dict(
        _COMMON_ARCH,
        embed_dim=96,
        depths=(2, 2, 18, 2),
        num_heads=(3, 6, 12, 24),
        group_width=8,
        drop_path_rate=0.3,
    ),
    "elsa_swin_base": dict(
        _COMMON_ARCH,
        embed_dim=128,
        depths=(2, 2, 18, 2),
        num_heads=(4, 8, 16, 32),
        group_width=8,
        drop_path_rate=0.5,
    ),
}


def _build(cfg: ModelCfg, **kwargs: Any) -> ELSASwin:
    return ELSASwin(cfg, **{**VARIANTS[cfg.name], **kwargs})


@register_model(
    _elsa_cfg(
        "elsa_swin_tiny",
        VARIANTS["elsa_swin_tiny"],
        29.141,
        4.656 + 0.066,
        82.7,
        f"{_REPO} README, Google Drive id 1eM0FsRNEDX-NncIEfvl4yXOAJawy2Ls0",
    ),
    checkpoint_filter=checkpoint_filter_fn,
)
def elsa_swin_tiny(cfg: ModelCfg, **kwargs: Any) -> ELSASwin:
    return _build(cfg, **kwargs)


@register_model(
    _elsa_cfg(
        "elsa_swin_small",
        VARIANTS["elsa_swin_small"],
        52.875,
        9.363 + 0.111,
        83.5,
        f"{_REPO} README, Google Drive id 186PDbqrt2hEg8r5aH45D5D6bO-EWJgcO",
    ),
    checkpoint_filter=checkpoint_filter_fn,
)
def elsa_swin_small(cfg: ModelCfg, **kwargs: Any) -> ELSASwin:
    return _build(cfg, **kwargs)


@register_model(
    _elsa_cfg(
        "elsa_swin_base",
        VARIANTS["elsa_swin_base"],
        92.682,
        16.406 + 0.148,
        84.0,
        f"{_REPO} README, Google Drive id 1J42asBqLb6iiKaYQaeoS2UpT7kUSjBr9 "
        "(evaluate with EMA weights: load_pretrained(..., use_ema=True))",
    ),
    checkpoint_filter=checkpoint_filter_fn,
)
def elsa_swin_base(cfg: ModelCfg, **kwargs: Any) -> ELSASwin:
    return _build(cfg, **kwargs)
