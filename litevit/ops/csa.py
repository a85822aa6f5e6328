"""CSA: the window aggregation + fold-sum of LVT's Convolutional Self-Attention.

What CSA computes (official ``CSA`` in ``Chenglin-Yang/LVT`` ``classification/models/lvt.py``),
for an input ``x`` of C channels, ``heads`` heads, a k x k window (k=3), padding p (1) and
stride s (2)::

    windows w = every k x k patch of x padded by p, taken with stride s (H' x W' of them)
    A_w   = softmax_j(scale * Linear(avgpool_s(x))_w)  # (heads, k², k²): target i x source j
    V_w,j = W_j x[pos_w(j)]                          # one C x C matrix per *source* offset j
    out[pos_w(i)] += sum_j A_w[i, j] V_w,j           # summed over all windows covering a pixel

The value matrices are indexed by the source offset only (k² = 9 matrices, not 81), and the
overlapping windows (stride 2 < k = 3) are summed without dividing by the overlap count: a
pixel gets 1, 2 or 4 window contributions.

Op boundary (chosen so that INT8 and fused kernels can work):

* **Outside**, as standard ONNX ops the caller builds: the 2 x 2 average pool (ceil mode) and
  Linear giving the attention logits, their scaling and softmax over the k² sources; the window
  gather of the values without ``F.unfold`` (:func:`gather_windows`: a one-hot depthwise
  convolution); the per-source-offset value transform as a grouped 1 x 1 convolution (groups = k²).
  These are the dense matmuls with weights: TensorRT runs them as (INT8) GEMMs/convolutions.
* **Inside** ``CSA_OP``: the per-window attention aggregation (for each of the k² target
  offsets, a weighted sum over the k² source offsets) and the overlapping-window fold-sum, the
  irregular, memory-bound part with no weights. The official code does this with ``attn @ v``
  and ``F.fold`` (ONNX Col2Im, which TensorRT does not parse); the reference below uses only an
  einsum and strided slice additions.

Inputs (NCHW-friendly, one spatial position per window):

* ``attn``: (B, heads·k²·k², H', W') post-softmax weights; channel ``(h·k² + i)·k² + j`` is head
  h, target offset i, source offset j (offsets row-major in the window: ``i = ki·k + kj``), the
  channel order of the official ``Linear(C, heads·k⁴)`` output.
* ``values``: (B, k²·C, H', W') transformed values; channel ``j·C + c`` is source offset j,
  channel c (head h owns channels ``h·C/heads ... (h+1)·C/heads - 1``), the output of the grouped
  1 x 1 convolution.

Attributes: ``heads``, ``kernel_size`` (k), ``stride`` (s), ``padding`` (p), 0 <= p < k.

Output: (B, C, s·(H'-1) + k - p, s·(W'-1) + k - p) NCHW, every non-negative row/column some
window reaches (s·H' x s·W' for LVT's k=3, p=1, s=2). The caller crops to (H, W) with a slice.
That is exact: fold with ``output_size=(H, W)`` drops exactly the contributions that land on rows
or columns >= H or >= W, and those never mix with the kept ones (the sum is per pixel).

MACs: ``B·H'·W'·k⁴·C`` (for each window, head and target, a k²-term sum over C/heads channels),
exactly what fvcore counts for the official ``attn @ v`` matmul; fvcore counts nothing for
``F.fold``, and the fold-sum's additions are not MACs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from litevit.ops._define import define_op
from litevit.ops._onnx import FunctionBuilder


def _window_count(size: int, kernel_size: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel_size) // stride + 1


def _fold_size(windows: int, kernel_size: int, stride: int, padding: int) -> int:
    return stride * (windows - 1) + kernel_size - padding


def _check(
    attn: tuple[int, ...], values: tuple[int, ...], heads: int, kernel_size: int, stride: int, padding: int
) -> tuple[int, int, int, int, int]:
    """Validate the shapes; return (B, C, H', W', k²)."""
    kk = kernel_size * kernel_size
    if kernel_size < 1 or stride < 1 or not 0 <= padding < kernel_size or heads < 1:
        raise ValueError(
            f"CSA needs kernel_size, stride, heads >= 1 and 0 <= padding < kernel_size; "
            f"got kernel_size={kernel_size}, stride={stride}, padding={padding}, heads={heads}."
        )
    if len(attn) != 4 or len(values) != 4:
        raise ValueError(f"CSA takes 4-D attn and values; got shapes {attn} and {values}.")
    batch, channels_kk, h, w = values
    if channels_kk % kk or (channels_kk // kk) % heads:
        raise ValueError(
            f"CSA values need k²·C channels with C divisible by heads={heads}; got {channels_kk}."
        )
    if tuple(attn) != (batch, heads * kk * kk, h, w):
        raise ValueError(
            f"CSA attn must have shape {(batch, heads * kk * kk, h, w)} for values {values}; got {attn}."
        )
    return batch, channels_kk // kk, h, w, kk


def csa(
    attn: torch.Tensor, values: torch.Tensor, heads: int, kernel_size: int, stride: int, padding: int
) -> torch.Tensor:
    """Aggregate every window's values with its attention, then sum the overlapping windows."""
    batch, channels, h, w, kk = _check(
        tuple(attn.shape), tuple(values.shape), heads, kernel_size, stride, padding
    )
    head_dim = channels // heads
    weights = attn.reshape(batch, heads, kk, kk, h, w)  # (b, head, target i, source j, y, x)
    vals = values.reshape(batch, kk, heads, head_dim, h, w)  # (b, source j, head, d, y, x)
    per_target = torch.einsum("bhijyx,bjhdyx->bihdyx", weights, vals).reshape(batch, kk, channels, h, w)
    # Window (y, x) puts its target (ki, kj) at output (s·y + ki - p, s·x + kj - p); the k²
    # strided slice additions below are F.fold without Col2Im. Positions < 0 (the padding) are
    # skipped by starting at the first window whose target lands inside.
    out = per_target.new_zeros(
        batch,
        channels,
        _fold_size(h, kernel_size, stride, padding),
        _fold_size(w, kernel_size, stride, padding),
    )
    for ki in range(kernel_size):
        y0 = max(0, -((ki - padding) // stride))
        row0 = stride * y0 + ki - padding
        for kj in range(kernel_size):
            x0 = max(0, -((kj - padding) // stride))
            col0 = stride * x0 + kj - padding
            out[
                :,
                :,
                row0 : row0 + stride * (h - y0 - 1) + 1 : stride,
                col0 : col0 + stride * (w - x0 - 1) + 1 : stride,
            ] += per_target[:, ki * kernel_size + kj, :, y0:, x0:]
    return out


def csa_output_shape(
    attn: tuple[int, ...], values: tuple[int, ...], heads: int, kernel_size: int, stride: int, padding: int
) -> tuple[int, ...]:
    batch, channels, h, w, _ = _check(attn, values, heads, kernel_size, stride, padding)
    return (
        batch,
        channels,
        _fold_size(h, kernel_size, stride, padding),
        _fold_size(w, kernel_size, stride, padding),
    )


def csa_macs(
    attn: tuple[int, ...], values: tuple[int, ...], heads: int, kernel_size: int, stride: int, padding: int
) -> int:
    batch, channels, h, w, kk = _check(attn, values, heads, kernel_size, stride, padding)
    return batch * h * w * kk * kk * channels


def csa_onnx_function(attrs: dict[str, Any], opset: int) -> onnx.FunctionProto:
    """CSA's body in standard ONNX ops: k² broadcast multiply-adds, then a one-hot ConvTranspose.

    * Aggregation, pixels kept last (no transposes, which cost ONNX Runtime more than the
      arithmetic): with ``attn`` viewed as (B, heads, 1, i, j, H'W') and ``values`` as
      (B, j, heads, d, 1, H'W'), the sum over the k² source offsets j is unrolled as
      ``sum_j attn[..., j, :] * values[:, j]`` broadcast to (B, heads, d, i, H'W'): one row per
      channel c = (head, d) with the k² target offsets i as channels.
    * Fold-sum: ``ConvTranspose`` of that, viewed as (B·C, k², H', W'), with stride s and the
      one-hot weight (k², 1, k, k) (target offset i = ki·k + kj -> kernel tap (ki, kj)) puts
      target i of window (y, x) at (s·y + ki - p, s·x + kj - p) and sums the overlaps, i.e.
      ``F.fold`` without Col2Im; pads (p, p, 0, 0) drop what lands above/left of the map and give
      the op's output size s·(H'-1) + k - p.

    ``kernel_size``, ``stride`` and ``padding`` are baked; ``heads`` = channels(attn) / k⁴ and all
    sizes come from the input shapes at run time.
    """
    kernel_size, stride, padding = attrs["kernel_size"], attrs["stride"], attrs["padding"]
    taps = kernel_size * kernel_size
    fb = FunctionBuilder("CSA", opset)
    batch = fb.dims("values", 0, 1)
    windows = fb.dims("values", 2, 4)  # (H', W')
    pixels = fb.op("Mul", fb.dims("values", 2, 3), fb.dims("values", 3, 4))
    heads = fb.op("Div", fb.dims("attn", 1, 2), fb.ints([taps * taps]))

    # attn as (B, heads, 1, i, j, P) and values as (B, j, heads, d, 1, P), P = H'·W'.
    attn = fb.reshape("attn", batch, fb.ints([-1, 1, taps, taps]), pixels)
    values = fb.reshape("values", batch, fb.ints([taps]), heads, fb.ints([-1, 1]), pixels)
    terms = [
        fb.op("Mul", fb.take(attn, source, axis=4), fb.take(values, source, axis=1)) for source in range(taps)
    ]
    per_target = fb.add_all(terms)  # (B, heads, d, i, P)
    per_target = fb.reshape(per_target, fb.ints([-1, taps]), windows)  # (B·C, i, H', W')

    one_hot = np.eye(taps, dtype=np.float32).reshape(taps, 1, kernel_size, kernel_size)
    folded = fb.op(
        "ConvTranspose",
        per_target,
        fb.float_like(one_hot, "values"),
        kernel_shape=[kernel_size, kernel_size],
        strides=[stride, stride],
        pads=[padding, padding, 0, 0],
    )  # (B·C, 1, H_out, W_out)
    return fb.build(fb.reshape(folded, batch, fb.ints([-1]), fb.dims(folded, 2, 4)))


def csa_onnx_attrs(
    attn: tuple[int, ...], values: tuple[int, ...], heads: int, kernel_size: int, stride: int, padding: int
) -> dict[str, int]:
    """The node's ``channels`` attribute: the output's C, which the TensorRT plugin's output-shape
    rules cannot derive from the values' k²·C channels (they have no division)."""
    return {"channels": values[1] // (kernel_size * kernel_size)}


CSA_OP = define_op(
    "CSA",
    csa,
    csa_output_shape,
    csa_macs,
    onnx_function=csa_onnx_function,
    baked_attrs=("kernel_size", "stride", "padding"),
    onnx_attrs=csa_onnx_attrs,
    onnx_attr_names=("channels",),
)


def window_gather_weight(channels: int, kernel_size: int) -> torch.Tensor:
    """One-hot depthwise weight (C·k², 1, k, k) for :func:`gather_windows`: output channel
    ``c·k² + j`` copies window offset ``j = ki·k + kj`` of input channel c."""
    taps = kernel_size * kernel_size
    return torch.eye(taps).reshape(taps, 1, kernel_size, kernel_size).repeat(channels, 1, 1, 1)


def gather_windows(
    x: torch.Tensor, gather_weight: torch.Tensor, kernel_size: int, stride: int, padding: int
) -> torch.Tensor:
    """``F.unfold`` without Im2Col/Col2Im: a depthwise convolution with a one-hot weight.

    ``x`` (B, C, H, W) -> (B, k²·C, H', W') with channel ``j·C + c`` holding channel c at
    source offset ``j = ki·k + kj`` of the window at (y, x), i.e. ``x_pad[c, s·y + ki, s·x + kj]``
    (the official unfold's ``c·k² + j`` order regrouped by offset, as the grouped value conv
    wants it). H' and W' follow the unfold formula ``(H + 2p - k) // s + 1``. Exact: each output
    is one input times 1 plus zeros. Chosen over k² strided slices + concat because ONNX Runtime
    runs those about 3x slower (1.0 vs 0.35 ms at LVT's stage 1) and TensorRT runs depthwise
    convolutions natively; torch eager pays about 0.2 ms. Not part of ``CSA_OP``: no arithmetic.
    """
    channels = x.shape[1]
    taps = kernel_size * kernel_size
    windows = F.conv2d(x, gather_weight.to(x.dtype), stride=stride, padding=padding, groups=channels)
    batch, _, height, width = windows.shape
    return (
        windows.reshape(batch, channels, taps, height, width)
        .transpose(1, 2)
        .reshape(batch, taps * channels, height, width)
    )
