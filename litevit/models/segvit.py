"""SegViT: semantic segmentation with plain ViTs and the Attention-to-Mask (ATM) decoder.

Zhang et al., "SegViT: Semantic Segmentation with Plain Vision Transformers", NeurIPS 2022.
Official code: https://github.com/zbwxp/SegVit (mmseg 0.24 / mmcv-full 1.4.4); the backbone is
mmseg's ``VisionTransformer`` (``vit_shrink`` for the Shrunk model).

Structure (state-dict keys follow the official mmseg checkpoints, ``backbone.*`` / ``decode_head.*``):

* ``backbone``: ViT/16, pre-norm encoder layers (LayerNorm eps 1e-6, GELU MLP), no final norm.
  The checkpoint's ``cls_token`` and the cls slot of ``pos_embed`` are kept as parameters so the
  release loads unchanged, but ``with_cls_token=False`` drops that token right after the position
  embedding is added, so neither influences the output.
  The Shrunk backbone's query down-sampling (QD) layer at ``shrink_idx`` takes every second token
  of the 1/16 grid in each direction as queries and all 1/16 tokens as keys/values; the layers after
  it run on the 1/32 grid.
* ``decode_head``: :class:`ATMHead` for the plain models: three ATM decoders, deepest backbone
  feature first, mask logits summed over the decoders. The Shrunk model's :class:`TPNATMHead`:
  query up-sampling (QU): learnable grid queries refined by two standard transformer decoders
  (against the 1/16 and 1/32 features, not reversed), followed by a single-stage ATM head whose
  final mask is the last layer's own (the official ``ATMSingleHead``; in eval mode it equals an
  ``ATMHead`` with one stage and no input projection, which is how it is built here).

Output in eval mode = what the official decode head returns in eval: class scores at the input
resolution, ``einsum('bqc,bqhw->bchw', softmax(class_logits)[..., :-1], sigmoid(up(mask_logits)))``,
where ``up`` resizes the 1/16 mask logits bilinearly (``align_corners=False``) to the image size
BEFORE the sigmoid. ``combine_at_low_res=True`` combines at 1/16 and resizes the class scores
instead: cheaper, but NOT equal to the official output.

Differences from the official code, all deliberate:

* Non-square inputs: the official head reshapes tokens to a square grid (``sqrt`` of the token
  count, and drops a token when the count is odd); here the known grid (H/16, W/16) is used, so any
  H, W that are multiples of 16 (32 for Shrunk, whose QD halves the 1/16 grid) work. At square
  sizes the results are the same.
* Sizes other than the training size: the position embedding is resampled bicubically
  (``align_corners=False``) to the input grid exactly as mmseg's ``resize_pos_embed`` does. The
  Shrunk model's QU queries (``nn.Embedding((img/16)**2, d)``, tied to the training grid) are
  resampled the same way; the official code keeps its 40x40 query grid at every input size and
  resizes the result. The official heads upsample the masks to the *configured* ``img_size`` and
  mmseg then resizes the scores to the input size; here masks go straight to the input size. Parity
  with the official code is therefore defined at the training size only (the official ADE test
  uses sliding windows at exactly that size).
* Dropout (0.1 in the ATM/QU decoders) and stochastic depth (0.1 ViT-B, 0.3 ViT-L) are training
  regularisers, inactive in eval mode; litevit models are for inference, so they are omitted.
* Attention uses ``F.scaled_dot_product_attention`` instead of ``nn.MultiheadAttention`` (same
  parameters and math). The ATM cross-attention keeps an explicit softmax because its pre-softmax,
  head-averaged scores are the mask logits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from litevit.models._layers import check_input, expand_to_batch
from litevit.models._registry import ModelCfg, PaperFigures, register_model

PATCH_SIZE = 16
_JAX_MEAN_STD_255 = (127.5, 127.5, 127.5)
_CHECKPOINT_REPO = "HuggingFace Akide/SegViTv1 (code: github.com/zbwxp/SegVit)"


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def resample_grid_embedding(
    embedding: torch.Tensor, src_grid: tuple[int, int], dst_grid: tuple[int, int]
) -> torch.Tensor:
    """Resample ``(..., src_h*src_w, C)`` grid-ordered vectors to ``dst_grid`` (row-major).

    Bicubic, ``align_corners=False``: what mmseg's ``VisionTransformer.resize_pos_embed`` does
    (and timm for ViT position embeddings). Returns the input unchanged at the same grid, as
    mmseg skips the resize there too; a symbolic grid (export with dynamic height/width) always
    gets the resize, which is the identity at the same size.
    """
    symbolic = any(isinstance(size, torch.SymInt) for size in dst_grid)
    if not symbolic and tuple(src_grid) == tuple(dst_grid):
        return embedding
    lead, channels = embedding.shape[:-2], embedding.shape[-1]
    grid = embedding.reshape(-1, src_grid[0], src_grid[1], channels).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=tuple(dst_grid), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(*lead, dst_grid[0] * dst_grid[1], channels)


class InProjAttention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters (packed ``in_proj``).

    Batch-first; ``key_value`` defaults to the query (self-attention).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)  # as nn.MultiheadAttention

    def forward(self, query: torch.Tensor, key_value: torch.Tensor | None = None) -> torch.Tensor:
        dim = query.shape[-1]
        if key_value is None:
            q, k, v = F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            q = F.linear(query, self.in_proj_weight[:dim], self.in_proj_bias[:dim])
            k, v = F.linear(key_value, self.in_proj_weight[dim:], self.in_proj_bias[dim:]).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(self._split_heads(q), self._split_heads(k), self._split_heads(v))
        return self.out_proj(out.transpose(1, 2).flatten(2))

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)


# --------------------------------------------------------------------------------------------
# Backbone: mmseg 0.24 VisionTransformer (+ vit_shrink's query down-sampling)
# --------------------------------------------------------------------------------------------


class PatchEmbed(nn.Module):
    """16x16 patches by a strided conv (mmseg ``PatchEmbed``, no norm); returns tokens and grid."""

    def __init__(self, in_chans: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.projection(x)
        return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])


class ResidualAttention(nn.Module):
    """mmcv ``MultiheadAttention``: attention plus the residual; weights live in ``attn``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.attn = InProjAttention(dim, num_heads)

    def forward(
        self, query: torch.Tensor, key_value: torch.Tensor | None, identity: torch.Tensor
    ) -> torch.Tensor:
        return identity + self.attn(query, key_value)


class ResidualFFN(nn.Module):
    """mmcv ``FFN``: Linear-GELU-Linear plus the residual (key names ``layers.0.0``, ``layers.1``)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU()), nn.Linear(hidden_dim, dim)
        )

    def forward(self, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return identity + self.layers(x)


class EncoderLayer(nn.Module):
    """Pre-norm ViT layer; with ``queries`` it is vit_shrink's QD layer (queries attend to ``x``)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ResidualAttention(dim, num_heads)
        self.ln2 = nn.LayerNorm(dim, eps=1e-6)
        self.ffn = ResidualFFN(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, queries: torch.Tensor | None = None) -> torch.Tensor:
        if queries is None:
            x = self.attn(self.ln1(x), None, identity=x)
        else:
            # ln1 normalises both inputs; the residual is the down-sampled tokens (vit_shrink).
            x = self.attn(self.ln1(queries), self.ln1(x), identity=queries)
        return self.ffn(self.ln2(x), identity=x)


class VisionTransformer(nn.Module):
    """mmseg ViT with ``with_cls_token=False``, ``final_norm=False``; returns token features.

    ``grid`` is the 1/16 grid the position embedding was built for; other input grids get a
    bicubically resampled copy. ``shrink_idx`` (None for the plain ViT) is the QD layer index.
    Returns the tokens ``(B, N, C)`` after each layer in ``out_indices``, in layer order.
    """

    def __init__(
        self,
        grid: tuple[int, int],
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
        out_indices: Sequence[int],
        shrink_idx: int | None = None,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if not out_indices or any(not 0 <= i < depth for i in out_indices):
            raise ValueError(f"out_indices {list(out_indices)} must lie in [0, {depth})")
        if shrink_idx is not None and not 0 <= shrink_idx < depth:
            raise ValueError(f"shrink_idx {shrink_idx} must lie in [0, {depth})")
        self.grid: tuple[int, int] = (grid[0], grid[1])
        self.out_indices = tuple(out_indices)
        self.shrink_idx = shrink_idx
        self.patch_embed = PatchEmbed(in_chans, embed_dim, PATCH_SIZE)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid[0] * grid[1], embed_dim))
        self.layers = nn.ModuleList(EncoderLayer(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, grid = self.patch_embed(x)
        # The cls slot of pos_embed belongs to the cls token, which with_cls_token=False drops.
        x = x + resample_grid_embedding(self.pos_embed[:, 1:], self.grid, grid)
        outs = []
        for i, layer in enumerate(self.layers):
            if i == self.shrink_idx:
                b, _, c = x.shape
                queries = x.reshape(b, grid[0], grid[1], c)[:, ::2, ::2].reshape(b, -1, c)
                x = layer(x, queries)
            else:
                x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        return outs


# --------------------------------------------------------------------------------------------
# Decode heads
# --------------------------------------------------------------------------------------------


class ATMCrossAttention(nn.Module):
    """Cross-attention that also returns its head-averaged pre-softmax scores (the mask logits)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self._split_heads(self.q(queries))
        k = self._split_heads(self.k(memory))
        v = self._split_heads(self.v(memory))
        scores = (q @ k.transpose(-2, -1)) * self.scale  # (B, heads, Nq, Nk)
        out = (scores.softmax(dim=-1) @ v).transpose(1, 2).flatten(2)
        return self.proj(out), scores.mean(dim=1)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)


class ATMDecoderLayer(nn.Module):
    """Post-norm transformer decoder layer (ReLU FFN, 4d) with the ATM cross-attention.

    Key names of ``nn.TransformerDecoderLayer`` (official ``TPN_DecoderLayer``).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.self_attn = InProjAttention(dim, num_heads)
        self.multihead_attn = ATMCrossAttention(dim, num_heads)
        self.linear1 = nn.Linear(dim, 4 * dim)
        self.linear2 = nn.Linear(4 * dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        queries = self.norm1(queries + self.self_attn(queries))
        attended, mask_logits = self.multihead_attn(queries, memory)
        queries = self.norm2(queries + attended)
        queries = self.norm3(queries + self.linear2(F.relu(self.linear1(queries))))
        return queries, mask_logits


class ATMDecoder(nn.Module):
    """A stack of ATM layers; returns the queries and the LAST layer's mask logits.

    The earlier layers' masks only feed the official training losses (ATMSingleHead's auxiliary
    outputs), so eval mode does not need them.
    """

    def __init__(self, dim: int, num_heads: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an ATM decoder needs at least one layer; got {num_layers}")
        self.layers = nn.ModuleList(ATMDecoderLayer(dim, num_heads) for _ in range(num_layers))

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        queries, mask_logits = self.layers[0](queries, memory)
        for layer in self.layers[1:]:
            queries, mask_logits = layer(queries, memory)
        return queries, mask_logits


class ATMHead(nn.Module):
    """Plain SegViT head: one ATM decoder per backbone feature, deepest feature first.

    Class queries (``q``) flow through the decoders in turn; each decoder's last-layer mask logits
    are summed (official cumulative masks M1 = S1, M2 = M1 + S2, M3 = M2 + S3; all on the same 1/16
    grid, so the official bilinear resize between them is the identity and is left out).
    ``use_proj=False`` (the Shrunk model's single-stage head) feeds the features unprojected.
    Returns class logits ``(B, N_cls, N_cls + 1)`` and mask logits ``(B, N_cls, h, w)``.
    """

    def __init__(
        self,
        in_dim: int,
        dim: int,
        num_heads: int,
        num_layers: int,
        num_classes: int,
        num_stages: int,
        use_proj: bool = True,
    ) -> None:
        super().__init__()
        self.num_stages = num_stages
        for i in range(1, num_stages + 1):
            # Official names input_proj_i / proj_norm_i / decoder_i; Identity has no keys.
            self.add_module(f"input_proj_{i}", nn.Linear(in_dim, dim) if use_proj else nn.Identity())
            self.add_module(f"proj_norm_{i}", nn.LayerNorm(dim) if use_proj else nn.Identity())
            self.add_module(f"decoder_{i}", ATMDecoder(dim, num_heads, num_layers))
        self.q = nn.Embedding(num_classes, dim)
        self.class_embed = nn.Linear(dim, num_classes + 1)  # + "no object"

    def forward(
        self, features: Sequence[torch.Tensor], grid: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if len(features) != self.num_stages:
            raise ValueError(f"ATMHead takes {self.num_stages} features; got {len(features)}")
        queries = expand_to_batch(self.q.weight, features[0].shape[0])
        mask_logits: torch.Tensor | None = None
        for i, feature in enumerate(reversed(features), start=1):
            memory = getattr(self, f"proj_norm_{i}")(getattr(self, f"input_proj_{i}")(feature))
            queries, stage_masks = getattr(self, f"decoder_{i}")(queries, memory)
            mask_logits = stage_masks if mask_logits is None else mask_logits + stage_masks
        assert mask_logits is not None
        b, n = mask_logits.shape[:2]
        return self.class_embed(queries), mask_logits.reshape(b, n, grid[0], grid[1])


class DecoderLayer(nn.Module):
    """``nn.TransformerDecoderLayer`` in eval: post-norm, ReLU FFN (same key names)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = InProjAttention(dim, num_heads)
        self.multihead_attn = InProjAttention(dim, num_heads)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        queries = self.norm1(queries + self.self_attn(queries))
        queries = self.norm2(queries + self.multihead_attn(queries, memory))
        return self.norm3(queries + self.linear2(F.relu(self.linear1(queries))))


class Decoder(nn.Module):
    """``nn.TransformerDecoder`` without final norm (key names ``layers.{i}.*``)."""

    def __init__(self, dim: int, num_heads: int, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(dim, num_heads, 4 * dim) for _ in range(num_layers))

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            queries = layer(queries, memory)
        return queries


class TPNATMHead(nn.Module):
    """Shrunk SegViT head: query up-sampling (QU) then a single-stage ATM head.

    ``q`` holds one learnable query per cell of the 1/16 training grid; the queries attend to
    the backbone features in backbone order (1/16, then 1/32 — not reversed) and then serve as
    the 1/16 feature map of the ATM head (``atm``, no input projection).
    """

    def __init__(
        self,
        in_dim: int,
        dim: int,
        num_heads: int,
        num_layers: int,
        num_classes: int,
        num_stages: int,
        grid: tuple[int, int],
    ) -> None:
        super().__init__()
        self.num_stages = num_stages
        self.grid: tuple[int, int] = (grid[0], grid[1])
        for i in range(1, num_stages + 1):
            self.add_module(f"input_proj_{i}", nn.Linear(in_dim, dim))
            self.add_module(f"proj_norm_{i}", nn.LayerNorm(dim))
            self.add_module(f"decoder_{i}", Decoder(dim, num_heads, num_layers))
        self.q = nn.Embedding(grid[0] * grid[1], dim)
        self.atm = ATMHead(dim, dim, num_heads, num_layers, num_classes, num_stages=1, use_proj=False)

    def forward(
        self, features: Sequence[torch.Tensor], grid: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if len(features) != self.num_stages:
            raise ValueError(f"TPNATMHead takes {self.num_stages} features; got {len(features)}")
        queries = expand_to_batch(
            resample_grid_embedding(self.q.weight, self.grid, grid), features[0].shape[0]
        )
        for i, feature in enumerate(features, start=1):
            memory = getattr(self, f"proj_norm_{i}")(getattr(self, f"input_proj_{i}")(feature))
            queries = getattr(self, f"decoder_{i}")(queries, memory)
        return self.atm([queries], grid)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class SegViT(nn.Module):
    """ViT backbone + ATM (or QU + ATM) head; ``forward`` returns class scores ``(B, N_cls, H, W)``.

    The scores are probabilities-like (softmax class weights times sigmoid masks), not logits;
    their argmax over classes is the label map.
    """

    def __init__(
        self,
        cfg: ModelCfg,
        *,
        embed_dim: int,
        depth: int,
        num_heads: int,
        out_indices: Sequence[int],
        decoder_dim: int,
        decoder_heads: int,
        decoder_layers: int = 3,
        mlp_ratio: float = 4.0,
        shrink_idx: int | None = None,
        combine_at_low_res: bool = False,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        self.combine_at_low_res = combine_at_low_res
        h, w = cfg.input_size
        grid = (h // PATCH_SIZE, w // PATCH_SIZE)
        self.backbone = VisionTransformer(
            grid, embed_dim, depth, num_heads, mlp_ratio, out_indices, shrink_idx
        )
        if shrink_idx is None:
            self.decode_head: nn.Module = ATMHead(
                embed_dim, decoder_dim, decoder_heads, decoder_layers, cfg.num_classes, len(out_indices)
            )
        else:
            self.decode_head = TPNATMHead(
                embed_dim, decoder_dim, decoder_heads, decoder_layers, cfg.num_classes, len(out_indices), grid
            )
        self.apply(_init_linear)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone token features ``(B, N, C)`` at ``out_indices``."""
        check_input(x, self.cfg)
        return self.backbone(x)

    def forward_head(self, features: Sequence[torch.Tensor], image_size: Sequence[int]) -> torch.Tensor:
        """Class scores ``(B, N_cls, H, W)`` for an image of ``image_size`` (H, W)."""
        out_size = (image_size[0], image_size[1])  # kept symbolic under export with dynamic H, W
        grid = (out_size[0] // PATCH_SIZE, out_size[1] // PATCH_SIZE)
        class_logits, mask_logits = self.decode_head(features, grid)
        class_probs = class_logits.softmax(dim=-1)[..., :-1]  # drop "no object"
        if self.combine_at_low_res:
            scores = _combine(class_probs, mask_logits.sigmoid())
            return F.interpolate(scores, size=out_size, mode="bilinear", align_corners=False)
        # Official order: mask logits are upsampled, then squashed, then combined.
        masks = F.interpolate(mask_logits, size=out_size, mode="bilinear", align_corners=False)
        return _combine(class_probs, masks.sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), x.shape[-2:])


def _combine(class_probs: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``einsum('bqc,bqhw->bchw')`` written as a batched matmul (plain MatMul in ONNX)."""
    b, _, h, w = masks.shape
    return (class_probs.transpose(1, 2) @ masks.flatten(2)).reshape(b, -1, h, w)


def _init_linear(module: nn.Module) -> None:
    # The official heads' init_weights: truncated normal (std 0.02) Linear weights, zero biases.
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------

# The mmseg release also stores the ATM loss's class-weight buffer (151 entries, 0.1 for
# "no object"); it is not part of inference.
_LOSS_BUFFER_SUFFIX = "loss_decode.criterion.empty_weight"


def checkpoint_filter_fn(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map an official SegViT (mmseg) state dict onto :class:`SegViT`.

    Key names are the same; the loss buffers are dropped, and the grid-tied tensors (position
    embedding, Shrunk QU queries) are resampled bicubically when the model was built for another
    image size than the checkpoint (the official checkpoints are square).
    """
    own = model.state_dict()
    out = {}
    for key, value in state.items():
        if key.endswith(_LOSS_BUFFER_SUFFIX):
            continue
        if key in own and value.shape != own[key].shape:
            if key == "backbone.pos_embed":
                value = torch.cat(
                    [value[:, :1], _resample_square(value[:, 1:], own[key].shape[1] - 1, model)], 1
                )
            elif key == "decode_head.q.weight" and isinstance(model.decode_head, TPNATMHead):  # type: ignore[union-attr]
                value = _resample_square(value, own[key].shape[0], model)
        out[key] = value
    return out


def _resample_square(grid_tokens: torch.Tensor, target_len: int, model: nn.Module) -> torch.Tensor:
    """Resample square-grid tokens (second-last dim) to the model's 1/16 grid."""
    side = math.isqrt(grid_tokens.shape[-2])
    dst: tuple[int, int] = model.backbone.grid  # type: ignore[assignment,union-attr]
    if side * side != grid_tokens.shape[-2] or dst[0] * dst[1] != target_len:
        return grid_tokens  # not a square grid: let check_state_dict report the mismatch
    return resample_grid_embedding(grid_tokens, (side, side), dst)


# --------------------------------------------------------------------------------------------
# Variants
# --------------------------------------------------------------------------------------------

_ARCH_VIT_B: dict[str, Any] = {
    "embed_dim": 768,
    "depth": 12,
    "num_heads": 12,
    "out_indices": (5, 7, 11),
    "decoder_dim": 384,
    "decoder_heads": 12,
    "decoder_layers": 3,
}
_ARCH_VIT_L: dict[str, Any] = {
    "embed_dim": 1024,
    "depth": 24,
    "num_heads": 16,
    "out_indices": (7, 15, 23),
    "decoder_dim": 512,
    "decoder_heads": 16,
    "decoder_layers": 3,
}
_ARCH_VIT_L_SHRUNK: dict[str, Any] = {**_ARCH_VIT_L, "out_indices": (7, 23), "shrink_idx": 8}


def _seg_resize(crop: int, stride: int, divisor: int) -> str:
    return (
        f"Official test (mmseg): resize keeping the aspect ratio by min(2048 / long side, "
        f"{crop} / short side), then sliding-window inference with {crop}x{crop} crops at stride "
        f"{stride}, averaging the class scores of overlapping crops. litevit runs the whole image "
        f"in one pass instead: the same aspect-preserving resize (short side {crop}, long side at "
        f"most 2048), then height and width rounded to the nearest multiple of {divisor}; the "
        f"position embedding is resampled to that grid; the label map is resized back to the "
        f"original image."
    )


# Smoke-test architecture: a 64-d ViT with 6 layers and a 2-layer, 32-d decoder.
_SMOKE_VIT = {
    "embed_dim": 64,
    "depth": 6,
    "num_heads": 2,
    "decoder_dim": 32,
    "decoder_heads": 2,
    "decoder_layers": 2,
}


def _segvit_cfg(
    name: str,
    *,
    crop: int,
    stride: int,
    divisor: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    checkpoint: str,
    paper: PaperFigures,
    arch: dict[str, Any],
    smoke_arch: dict[str, Any],
) -> ModelCfg:
    return ModelCfg(
        name=name,
        family="segvit",
        smoke_arch=smoke_arch,
        task="segmentation",
        input_size=(crop, crop),
        num_classes=150,
        label_set="ade20k150",
        size_divisor=divisor,
        mean=mean,
        std=std,
        pixel_scale=255.0,
        interpolation="bilinear",
        crop_pct=None,
        seg_resize=_seg_resize(crop, stride, divisor),
        checkpoint=f"{checkpoint} ({_CHECKPOINT_REPO})",
        paper=paper,
        arch=arch,
    )


_FLOPS_NOTE = (
    "README GFLOPs are fvcore MACs at the crop size, counting all attention matmuls; "
    "inference is sliding-window, so whole-image MACs scale with the image area."
)


@register_model(
    _segvit_cfg(
        "segvit_vit_b_ade",
        crop=512,
        stride=341,
        divisor=PATCH_SIZE,
        # No ViT-B config ships with the release; the mmseg ADE20K dataset base it would inherit
        # normalises with the ImageNet mean/std (the ViT-L configs override it with "jax" 127.5).
        mean=(123.675, 116.28, 103.53),
        std=(58.395, 57.12, 57.375),
        checkpoint="ade_51.3.pth",
        paper=PaperFigures(
            params_m=108.74,
            gmacs=120.9,
            resolution=(512, 512),
            metric="mIoU 51.3 (ss) / 53.0 (ms), ADE20K val",
            source="zbwxp/SegVit README",
            note=_FLOPS_NOTE + " params: fvcore re-measurement of the official classes.",
        ),
        arch=_ARCH_VIT_B,
        smoke_arch={**_SMOKE_VIT, "out_indices": (1, 3, 5)},
    ),
    checkpoint_filter=checkpoint_filter_fn,
)
def segvit_vit_b_ade(cfg: ModelCfg, **kwargs: Any) -> SegViT:
    """SegViT, ViT-B/16 + ATM head, ADE20K-150 at 512x512."""
    return SegViT(cfg, **{**cfg.arch, **kwargs})


@register_model(
    _segvit_cfg(
        "segvit_vit_l_ade",
        crop=640,
        stride=608,
        divisor=PATCH_SIZE,
        mean=_JAX_MEAN_STD_255,
        std=_JAX_MEAN_STD_255,
        checkpoint="ade_54.6.pth",
        paper=PaperFigures(
            params_m=344.31,
            gmacs=637.9,
            resolution=(640, 640),
            metric="mIoU 54.6 (ss) / 55.2 (ms), ADE20K val",
            source="zbwxp/SegVit README",
            note=_FLOPS_NOTE + " params: fvcore re-measurement of the official classes.",
        ),
        arch=_ARCH_VIT_L,
        smoke_arch={**_SMOKE_VIT, "out_indices": (1, 3, 5)},
    ),
    checkpoint_filter=checkpoint_filter_fn,
)
def segvit_vit_l_ade(cfg: ModelCfg, **kwargs: Any) -> SegViT:
    """SegViT, ViT-L/16 + ATM head, ADE20K-150 at 640x640."""
    return SegViT(cfg, **{**cfg.arch, **kwargs})


@register_model(
    _segvit_cfg(
        "segvit_shrunk_vit_l_ade",
        crop=640,
        stride=608,
        # QD halves the 1/16 grid, so the image must be a multiple of 32.
        divisor=2 * PATCH_SIZE,
        mean=_JAX_MEAN_STD_255,
        std=_JAX_MEAN_STD_255,
        checkpoint="ade_shrunk_53.9.pth",
        paper=PaperFigures(
            params_m=304.74 + 39.86,
            gmacs=373.5,
            resolution=(640, 640),
            metric="mIoU 53.9 (ss) / 55.1 (ms), ADE20K val",
            source="zbwxp/SegVit README",
            note=_FLOPS_NOTE
            + " Plain fvcore on torch>=2 reports 347.7 G: it misses the QU decoders' SDPA matmuls.",
        ),
        arch=_ARCH_VIT_L_SHRUNK,
        smoke_arch={**_SMOKE_VIT, "out_indices": (1, 5), "shrink_idx": 2},
    ),
    checkpoint_filter=checkpoint_filter_fn,
)
def segvit_shrunk_vit_l_ade(cfg: ModelCfg, **kwargs: Any) -> SegViT:
    """SegViT Shrunk (QD at layer 8 + QU/TPN + single ATM), ViT-L/16, ADE20K-150 at 640x640."""
    return SegViT(cfg, **{**cfg.arch, **kwargs})
