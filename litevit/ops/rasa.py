"""RASA: the multi-dilation shared-weight depthwise filtering of LVT's query.

LVT's Recursive Atrous Self-Attention (official ``Attention`` with ``rasa_cfg`` and
``ds_conv2d`` in ``Chenglin-Yang/LVT`` ``classification/models/lvt.py``) replaces the query of a
spatial-reduction attention by a multi-scale one::

    q = sum_{d in dilations} SiLU(depthwise_conv_kxk(q, weight, padding=d·(k-1)/2, dilation=d))

with **one** depthwise weight shared by all dilations (1, 3, 5 in LVT), no bias, and without
adding the original q back. The attention A around it is then applied recursively with shared
weights: y1 = SiLU(A(x)), y2 = SiLU(A(y1 + x)).

Op boundary:

* **Inside** ``RASA_OP``: only the filtering above, the part with an irregular access
  pattern (three dilated 3 x 3 windows per output) and a tiny weight, memory-bound and fusable
  into one pass that reads q once.
* **Outside**, as standard ops in the model: the q / kv Linear layers, the spatial-reduction
  convolution + LayerNorm, softmax(q·kᵀ·scale)·v, the output projection and the recursion.
  These are the dense matmuls that TensorRT runs as (INT8) GEMMs and fuses as attention.

Inputs: ``q`` (B, C, H, W) NCHW (channel ``h·C/heads + d`` for head h: the official head-major
order), ``weight`` (C, 1, k, k), the official ``attn.ds.weight``.
Attributes: ``dilations`` (list[int], each >= 1), ``kernel_size`` (odd k; LVT: 3).
Output: (B, C, H, W).

MACs: ``len(dilations)·B·C·H·W·k²``, one depthwise convolution per dilation, exactly what
fvcore counts for the official ``ds_conv2d`` (three ``F.conv2d`` calls); SiLU and the sum are
not MACs.
"""

from __future__ import annotations

from typing import Any

import onnx
import torch
import torch.nn.functional as F

from litevit.ops._define import define_op
from litevit.ops._onnx import FunctionBuilder


def _check(q: tuple[int, ...], weight: tuple[int, ...], dilations: list[int], kernel_size: int) -> None:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"RASA needs an odd kernel_size (same-size output); got {kernel_size}.")
    if not dilations or any(d < 1 for d in dilations):
        raise ValueError(f"RASA needs a non-empty list of dilations >= 1; got {dilations}.")
    if len(q) != 4:
        raise ValueError(f"RASA takes a 4-D (B, C, H, W) query; got shape {q}.")
    if tuple(weight) != (q[1], 1, kernel_size, kernel_size):
        raise ValueError(
            f"RASA weight must have shape {(q[1], 1, kernel_size, kernel_size)} for query {q}; got {weight}."
        )


def rasa(q: torch.Tensor, weight: torch.Tensor, dilations: list[int], kernel_size: int) -> torch.Tensor:
    """Sum over dilations of SiLU(depthwise conv of q with the shared weight)."""
    _check(tuple(q.shape), tuple(weight.shape), dilations, kernel_size)
    half = (kernel_size - 1) // 2
    out = torch.zeros_like(q)
    for dilation in dilations:
        out = out + F.silu(F.conv2d(q, weight, padding=dilation * half, dilation=dilation, groups=q.shape[1]))
    return out


def rasa_output_shape(
    q: tuple[int, ...], weight: tuple[int, ...], dilations: list[int], kernel_size: int
) -> tuple[int, ...]:
    _check(q, weight, dilations, kernel_size)
    return tuple(q)


def rasa_macs(q: tuple[int, ...], weight: tuple[int, ...], dilations: list[int], kernel_size: int) -> int:
    _check(q, weight, dilations, kernel_size)
    batch, channels, height, width = q
    return len(dilations) * batch * channels * height * width * kernel_size * kernel_size


def rasa_onnx_attrs(
    q: tuple[int, ...], weight: tuple[int, ...], dilations: list[int], kernel_size: int
) -> dict[str, int]:
    """The node's ``channels`` attribute: the depthwise group count the body's Conv needs."""
    return {"channels": weight[0]}


def rasa_onnx_function(attrs: dict[str, Any], opset: int) -> onnx.FunctionProto:
    """RASA's body in standard ONNX ops: one depthwise ``Conv`` per dilation, SiLU, summed::

        out = sum_d SiLU(Conv(q, weight, group=C, dilation=d, pads=d·(k-1)/2))

    with SiLU as ``x * Sigmoid(x)``. ``Conv``'s ``group`` must be an attribute, and C differs
    between a model's stages, so it references the node's ``channels`` attribute (set at export
    from the weight's shape) instead of being baked. ``dilations`` and ``kernel_size`` are baked.
    (Measured on ONNX Runtime CPU: 3 depthwise Convs beat the k² shifted-slice formulation by
    several times, and an im2col by one-hot Conv + MatMul.)
    """
    kernel_size, dilations = attrs["kernel_size"], attrs["dilations"]
    half = (kernel_size - 1) // 2
    fb = FunctionBuilder("RASA", opset)
    silu_per_dilation = []
    for dilation in dilations:
        conv = fb.op(
            "Conv",
            "q",
            "weight",
            refs={"group": "channels"},
            kernel_shape=[kernel_size, kernel_size],
            dilations=[dilation, dilation],
            pads=[dilation * half] * 4,
        )
        silu_per_dilation.append(fb.op("Mul", conv, fb.op("Sigmoid", conv)))
    return fb.build(fb.add_all(silu_per_dilation))


RASA_OP = define_op(
    "RASA",
    rasa,
    rasa_output_shape,
    rasa_macs,
    onnx_function=rasa_onnx_function,
    baked_attrs=("dilations", "kernel_size"),
    onnx_attrs=rasa_onnx_attrs,
    onnx_attr_names=("channels",),
)
