"""Parameters, MACs and FLOPs of litevit models.

Convention (named in every report): **MACs** count one fused multiply-add as 1, following
fvcore, which is what the four papers' "FLOPs"/"MAdds" figures were measured with;
**FLOPs = 2 x MACs**. Counted, as fvcore counts them:

* convolutions and matrix products (``mm``/``addmm``/``bmm``/``baddbmm``, i.e. Linear, matmul,
  einsum): one MAC per multiply-add, biases not counted;
* attention kernels fvcore cannot see (``scaled_dot_product_attention`` and the fused
  ``nn.MultiheadAttention`` path): their q·kᵀ and attention·v products, plus projections;
* eval BatchNorm 2 per element (1 without affine), LayerNorm/GroupNorm 5 per element
  (4 without affine), bilinear upsampling 4 and nearest 1 per output element, adaptive average
  pooling 1 per input element (except global pooling, which PyTorch runs as ``mean``: not
  counted, at most a few hundred thousand MACs in these models);
* litevit's custom ops (CSA, RASA, GhostHead) through the MAC formula in their op module.

Not counted (as in fvcore): elementwise ops, activations, softmax, plain pooling, reductions,
RoIAlign and NMS. Detectors are counted on their ``forward_dummy`` (as mmdet's ``get_flops.py``,
behind the published detection GFLOPs: the network on 1000 RoIs and 100 masks, without
post-processing).
Counting runs the model once under a dispatch mode; models built on the ``meta`` device are
counted without computing anything, so even the largest models count in well under a second.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from litevit.ops import OPS

CONVENTION = "MACs: one fused multiply-add = 1 (fvcore convention, as the papers count); FLOPs = 2 x MACs"

_aten = torch.ops.aten


def _numel(shape: Sequence[int]) -> int:
    return math.prod(int(s) for s in shape)


def _mm(args: Sequence[Any], out: Any) -> int:
    a, b = args[0], args[1]
    return _numel(a.shape) * int(b.shape[-1])


def _addmm(args: Sequence[Any], out: Any) -> int:  # (bias, a, b)
    return _mm(args[1:], out)


def _bmm(args: Sequence[Any], out: Any) -> int:
    a, b = args[0], args[1]
    return _numel(a.shape) * int(b.shape[-1])


def _baddbmm(args: Sequence[Any], out: Any) -> int:  # (bias, a, b)
    return _bmm(args[1:], out)


def _convolution(args: Sequence[Any], out: Any) -> int:
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    if transposed:
        # Each input element is multiplied with every weight element of its group.
        return _numel(x.shape) * _numel(w.shape[1:])
    # Per output element: (C_in / groups) * prod(kernel) multiply-adds.
    return _numel(out.shape) * _numel(w.shape[1:])


def _batch_norm(args: Sequence[Any], out: Any) -> int:
    # (input, weight, bias, running_mean, running_var, training, ...); fvcore counts eval BN as
    # 2 per element (scale + shift) and training BN like a LayerNorm.
    affine = args[1] is not None
    if bool(args[5]):
        return _numel(args[0].shape) * (5 if affine else 4)
    return _numel(args[0].shape) * (2 if affine else 1)


def _batch_norm_no_training(args: Sequence[Any], out: Any) -> int:
    affine = args[1] is not None
    return _numel(args[0].shape) * (2 if affine else 1)


def _layer_norm(args: Sequence[Any], out: Any) -> int:
    affine = len(args) > 2 and args[2] is not None
    return _numel(args[0].shape) * (5 if affine else 4)


def _group_norm(args: Sequence[Any], out: Any) -> int:
    affine = len(args) > 1 and args[1] is not None
    return _numel(args[0].shape) * (5 if affine else 4)


def _per_output(scale: int) -> Callable[[Sequence[Any], Any], int]:
    return lambda args, out: scale * _numel(out.shape)


def _per_input(scale: int) -> Callable[[Sequence[Any], Any], int]:
    return lambda args, out: scale * _numel(args[0].shape)


def _sdpa(args: Sequence[Any], out: Any) -> int:
    q, k, v = args[0], args[1], args[2]
    lead = _numel(q.shape[:-2])
    lq, d = int(q.shape[-2]), int(q.shape[-1])
    lk, dv = int(k.shape[-2]), int(v.shape[-1])
    return lead * lq * lk * (d + dv)


def _native_mha(args: Sequence[Any], out: Any) -> int:
    # (query, key, value, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, ...)
    q, k = args[0], args[1]
    e = int(args[3])
    batch = _numel(q.shape[:-2])
    lq, lk = int(q.shape[-2]), int(k.shape[-2])
    in_proj = batch * (lq * e * e + 2 * lk * e * e)
    attention = batch * 2 * lq * lk * e
    out_proj = batch * lq * e * e
    return in_proj + attention + out_proj


_HANDLERS: dict[Any, Callable[[Sequence[Any], Any], int]] = {
    _aten.mm.default: _mm,
    _aten.addmm.default: _addmm,
    _aten.bmm.default: _bmm,
    _aten.baddbmm.default: _baddbmm,
    _aten.convolution.default: _convolution,
    _aten.native_batch_norm.default: _batch_norm,
    _aten._native_batch_norm_legit.default: _batch_norm,
    _aten._native_batch_norm_legit_no_training.default: _batch_norm_no_training,
    _aten.native_layer_norm.default: _layer_norm,
    _aten.native_group_norm.default: _group_norm,
    _aten.upsample_bilinear2d.default: _per_output(4),
    _aten.upsample_bilinear2d.vec: _per_output(4),
    _aten.upsample_nearest2d.default: _per_output(1),
    _aten.upsample_nearest2d.vec: _per_output(1),
    _aten._adaptive_avg_pool2d.default: _per_input(1),
    _aten._scaled_dot_product_flash_attention_for_cpu.default: _sdpa,
    _aten._scaled_dot_product_flash_attention.default: _sdpa,
    _aten._scaled_dot_product_efficient_attention.default: _sdpa,
    _aten._scaled_dot_product_cudnn_attention.default: _sdpa,
    _aten._native_multi_head_attention.default: _native_mha,
}


class _MacCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.by_op: Counter[str] = Counter()

    def __torch_dispatch__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = getattr(func, "_overloadpacket", None)
        namespace = getattr(packet, "__module__", "") or ""
        if packet is not None and namespace.endswith("litevit"):
            opdef = next(o for o in OPS.values() if o.torch_name == packet.__name__)
            self.by_op[opdef.onnx_name] += opdef.count_macs(*args, **kwargs)
            return out
        handler = _HANDLERS.get(func)
        if handler is not None and packet is not None:
            first_out = out[0] if isinstance(out, (tuple, list)) else out
            self.by_op[packet.__name__] += handler(args, first_out)
        return out


@dataclass
class ComplexityReport:
    """Parameters and MACs of one model at one input size."""

    model: str
    input_shape: tuple[int, ...]
    params: int
    macs: int
    by_op: dict[str, int] = field(default_factory=dict)
    convention: str = CONVENTION

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    def __str__(self) -> str:
        shape = "x".join(str(d) for d in self.input_shape)
        return (
            f"{self.model} at {shape}: {self.params_m:.3f} M parameters, {self.gmacs:.3f} GMACs, "
            f"{self.flops / 1e9:.3f} GFLOPs"
        )


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(
    model: Callable[..., Any], inputs: torch.Tensor | Sequence[torch.Tensor]
) -> tuple[int, dict[str, int]]:
    """MACs of one forward pass on ``inputs``, total and per counted op."""
    args = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    counter = _MacCounter()
    with torch.no_grad(), counter:
        model(*args)
    return sum(counter.by_op.values()), dict(counter.by_op)


def count_model(
    model: nn.Module, img_size: int | Sequence[int] | None = None, batch: int = 1
) -> ComplexityReport:
    """Parameters and MACs of a litevit model at ``img_size`` (default: the model's input size).

    The input is created on the model's device, so a model built under
    ``torch.device("meta")`` is counted without any arithmetic.
    """
    cfg = getattr(model, "cfg", None)
    if img_size is None:
        if cfg is None:
            raise ValueError("img_size is required for a model without a litevit cfg")
        img_size = cfg.input_size
    h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    param = next(model.parameters())
    x = torch.zeros(batch, 3, h, w, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        macs, by_op = count_macs(getattr(model, "forward_dummy", model), x)
    finally:
        model.train(was_training)
    name = cfg.name if cfg is not None else type(model).__name__
    return ComplexityReport(name, tuple(x.shape), count_params(model), macs, by_op)
