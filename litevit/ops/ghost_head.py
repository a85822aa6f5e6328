"""GhostHead: ELSA's local aggregation with ghost heads (the op behind ``elsa_ext``).

Boundary
    Exactly the boundary of ELSA's own CUDA kernel (``cls/models/elsa/src/cuda/elsa_cuda_kernel.cu``,
    ``elsa_op`` in ``cls/models/elsa/elsa.py`` of damo-cv/ELSA): the values, the post-softmax
    local attention (the "spatial filter") and the static ghost-head matrices go in, the
    aggregated values come out. Everything before it stays outside as standard ops: the qkv
    1x1 conv, the Hadamard product ``q * k`` (scale 1 in the release), the grouped kxk conv +
    GELU + 1x1 conv that produce the attention logits and the softmax over the k*k axis; the
    ``post_proj`` Linear after it is outside as well. So is ``O ** lambda`` / ``gamma * S``:
    the op takes the effective multiplicative and additive matrices.

Inputs
    ``v``          (B, C, H, W)       values.
    ``attn``       (B, G*k*k, H, W)   local attention, softmaxed over each head's k*k taps,
                                      head-major: channel ``g*k*k + t`` is tap ``t`` of head ``g``.
    ``ghost_mul``  (C, k, k)          multiplicative ghost matrix, ``O ** lambda`` (all ones in
                                      the released lambda = 0 setting).
    ``ghost_add``  (C, k, k)          additive ghost matrix, ``gamma * S``.

Attributes
    ``heads`` (G, divides C), ``kernel_size`` (k, odd), ``dilation`` (d >= 1). Stride is always 1:
    ``ELSABlock`` asserts it, and the kernel's other strides only serve an unused code path.

Output
    (B, C, H, W)::

        y[b, c, i, j] = sum_{ky, kx} v[b, c, i + (ky - k//2)*d, j + (kx - k//2)*d]
                        * (attn[b, head(c)*k*k + ky*k + kx, i, j] * ghost_mul[c, ky, kx]
                           + ghost_add[c, ky, kx])

    with zero padding outside the map and ``head(c) = c // (C / G)``: the official code reshapes
    ``v`` (B, C, H, W) to (B*G, C/G, H, W), so each head owns a contiguous block of channels.
    The tap order ``t = ky*k + kx`` with offset ``(t - k//2)*d`` is the CUDA kernel's
    (``filter_c = kernel_iy * kernel_size + kernel_ix``) and ``F.unfold``'s (CPU fallback).

MACs
    ``B * C * H * W * k*k``: one multiply-add per value tap (the filter ``attn*mul + add`` is
    shared by the k*k products of one output and not counted separately, as in the published
    "+ELSA aggregation" figures).

The reference sums k*k shifted slices of a zero-padded ``v``: no ``F.unfold`` (Im2Col), so the
same formulation exports to plain ONNX if ever needed.
"""

from __future__ import annotations

from typing import Any

import onnx
import torch
import torch.nn.functional as F

from litevit.ops._define import define_op
from litevit.ops._onnx import FunctionBuilder


def ghost_head_output_shape(
    v: tuple[int, ...],
    attn: tuple[int, ...],
    ghost_mul: tuple[int, ...],
    ghost_add: tuple[int, ...],
    heads: int,
    kernel_size: int,
    dilation: int,
) -> tuple[int, ...]:
    """Output shape (B, C, H, W); raises ValueError naming the first inconsistent input."""
    if len(v) != 4:
        raise ValueError(f"GhostHead: v must be (B, C, H, W); got {v}.")
    batch, channels, height, width = v
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"GhostHead: kernel_size must be odd and positive; got {kernel_size}.")
    if dilation < 1:
        raise ValueError(f"GhostHead: dilation must be >= 1; got {dilation}.")
    if heads < 1 or channels % heads:
        raise ValueError(f"GhostHead: heads ({heads}) must divide the {channels} channels of v.")
    expected_attn = (batch, heads * kernel_size**2, height, width)
    if tuple(attn) != expected_attn:
        raise ValueError(f"GhostHead: attn must be {expected_attn} (B, heads*k*k, H, W); got {tuple(attn)}.")
    expected_ghost = (channels, kernel_size, kernel_size)
    for name, shape in (("ghost_mul", ghost_mul), ("ghost_add", ghost_add)):
        if tuple(shape) != expected_ghost:
            raise ValueError(f"GhostHead: {name} must be {expected_ghost} (C, k, k); got {tuple(shape)}.")
    return (batch, channels, height, width)


def ghost_head_macs(
    v: tuple[int, ...],
    attn: tuple[int, ...],
    ghost_mul: tuple[int, ...],
    ghost_add: tuple[int, ...],
    heads: int,
    kernel_size: int,
    dilation: int,
) -> int:
    """B*C*H*W*k*k multiply-adds (one per value tap)."""
    batch, channels, height, width = v
    return batch * channels * height * width * kernel_size**2


def ghost_head(
    v: torch.Tensor,
    attn: torch.Tensor,
    ghost_mul: torch.Tensor,
    ghost_add: torch.Tensor,
    heads: int,
    kernel_size: int,
    dilation: int,
) -> torch.Tensor:
    """Reference GhostHead: per-channel filter ``attn*mul + add`` applied to k*k shifted values."""
    ghost_head_output_shape(
        tuple(v.shape),
        tuple(attn.shape),
        tuple(ghost_mul.shape),
        tuple(ghost_add.shape),
        heads,
        kernel_size,
        dilation,
    )
    batch, channels, height, width = v.shape
    per_head = channels // heads
    taps = kernel_size**2
    pad = (kernel_size // 2) * dilation
    v_padded = F.pad(v, (pad, pad, pad, pad)).reshape(
        batch, heads, per_head, height + 2 * pad, width + 2 * pad
    )
    # Broadcast shapes: attention is shared by the channels of a head, ghost matrices by batch
    # and pixels.
    attn_taps = attn.reshape(batch, heads, 1, taps, height, width)
    mul_taps = ghost_mul.reshape(heads, per_head, taps, 1, 1)
    add_taps = ghost_add.reshape(heads, per_head, taps, 1, 1)
    out = v.new_zeros(batch, heads, per_head, height, width)
    for ky in range(kernel_size):
        for kx in range(kernel_size):
            tap = ky * kernel_size + kx
            top, left = ky * dilation, kx * dilation
            shifted = v_padded[..., top : top + height, left : left + width]
            spatial_filter = attn_taps[:, :, :, tap] * mul_taps[:, :, tap] + add_taps[:, :, tap]
            out = out + shifted * spatial_filter
    return out.reshape(batch, channels, height, width)


def ghost_head_onnx_function(attrs: dict[str, Any], opset: int) -> onnx.FunctionProto:
    """GhostHead's body in standard ONNX ops: the reference's k² shifted-slice multiply-adds.

    With G = heads and the channels split per head (all views, no transposes)::

        v_pad  = Pad(v, (k//2)·d) as (B, G, C/G, H + 2·(k//2)·d, W + 2·(k//2)·d)
        attn   as (B, G, 1, k², H, W);  ghost_mul, ghost_add as (G, C/G, k², 1, 1)
        out    = sum_t Slice(v_pad, shifted by (ky·d, kx·d))
                       * (attn[:, :, :, t] * ghost_mul[:, :, t] + ghost_add[:, :, t])

    unrolled over the taps t = ky·k + kx (an im2col would need Im2Col, or a one-hot ``Conv``
    costing k⁴ instead of k² per value). ``heads`` is not baked: G = channels(attn) / k², so one
    body serves every head count; ``kernel_size`` and ``dilation`` are baked.

    Kept after profiling ELSA-Swin-T in ONNX Runtime (1 thread; the body is about a third of the
    model's time there): it is bound by full-size elementwise passes, about five per tap, and every
    exact alternative in standard ops measured slower at ELSA's shapes (k = 7; 56², 28², 14²) —
    slices of the row-flattened map (contiguous copies, output cropped) 0.95-0.97x, all taps
    sliced, concatenated and reduced with one ``Mul`` + ``ReduceSum`` 0.30-0.78x, width taps
    concatenated and reduced per row 0.38-0.95x. A depthwise ``Conv`` for the additive ghost
    matrix would need the channel count as a node attribute, which the op (and the TensorRT
    plugin's node) does not carry.
    """
    kernel_size, dilation = attrs["kernel_size"], attrs["dilation"]
    taps = kernel_size * kernel_size
    border = (kernel_size // 2) * dilation
    fb = FunctionBuilder("GhostHead", opset)
    heads = fb.op("Div", fb.dims("attn", 1, 2), fb.ints([taps]))
    padded = fb.op("Pad", "v", fb.ints([0, 0, border, border, 0, 0, border, border]))
    padded = fb.reshape(padded, fb.dims("v", 0, 1), heads, fb.ints([-1]), fb.dims(padded, 2, 4))
    attn = fb.reshape("attn", fb.dims("attn", 0, 1), fb.ints([-1, 1, taps]), fb.dims("attn", 2, 4))
    ghost_shape = fb.op("Concat", heads, fb.ints([-1, taps, 1, 1]), axis=0)
    ghost_mul = fb.reshape("ghost_mul", ghost_shape)
    ghost_add = fb.reshape("ghost_add", ghost_shape)

    terms = []
    for ky in range(kernel_size):
        for kx in range(kernel_size):
            tap = ky * kernel_size + kx
            shifted = fb.window(padded, border, ky * dilation, kx * dilation, [3, 4])  # (B, G, C/G, H, W)
            spatial_filter = fb.op(
                "Add",
                fb.op("Mul", fb.take(attn, tap, axis=3), fb.take(ghost_mul, tap, axis=2)),
                fb.take(ghost_add, tap, axis=2),
            )
            terms.append(fb.op("Mul", shifted, spatial_filter))
    out = fb.add_all(terms)
    return fb.build(fb.reshape(out, fb.op("Shape", "v")))


GHOST_HEAD_OP = define_op(
    "GhostHead",
    ghost_head,
    ghost_head_output_shape,
    ghost_head_macs,
    onnx_function=ghost_head_onnx_function,
    baked_attrs=("kernel_size", "dilation"),
)
