"""``define_standard_op``: detection ops that export to *standard* ONNX operators.

RoIAlign and non-maximum suppression have standard ONNX operators (``RoiAlign``,
``NonMaxSuppression``) that ONNX Runtime runs and TensorRT's ONNX parser maps to its own layers
(``ROIAlign_TRT`` plugin, ``INMSLayer``). So, unlike litevit's own ops (``_define.py``: domain
``litevit`` + plugin + function body), these are registered as ``torch.ops.litevit_std.<name>``
custom ops whose ONNX translation writes standard-domain nodes. Each is defined once:

* a pure-PyTorch reference (the eager model runs it: no torchvision, no mmcv);
* a fake (shape-only) implementation for ``torch.export``;
* the translation to standard ONNX nodes (``onnxscript`` ops at the exporter's opset, 18, which
  litevit then writes as 17: RoiAlign-16, NonMaxSuppression-11, ScatterND-16 are unchanged).

Why not torchvision: its ``roi_align``/``nms`` would be the natural reference, but torchvision
cannot be installed beside the torch this project is tested with (2.13.0 CPU): the only
torchvision build for it requires torch 2.14.1 and a CUDA 13 stack that conflicts with the
NVRTC 12.9 the V100/Xavier kernels are compiled with. mmdet's semantics (mmcv ``RoIAlign`` with
``aligned=True`` and adaptive sampling, mmcv ``nms``) are what the checkpoints were trained
and evaluated with in any case, and the references here implement exactly those.

FLOP counting (``litevit.flops``) does not count these ops, as mmcv's counter and fvcore (the
tools behind the published GFLOPs) do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

NAMESPACE = "litevit_std"


@dataclass(frozen=True)
class StandardOp:
    """A detection op: torch custom op + its translation to standard ONNX nodes."""

    name: str
    reference: Callable[..., Any]
    translation: Callable[..., Any]

    @property
    def torch_op(self) -> Any:
        return getattr(getattr(torch.ops, NAMESPACE), self.name).default

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.torch_op(*args, **kwargs)


STANDARD_OPS: dict[str, StandardOp] = {}


def define_standard_op(
    reference: Callable[..., Any], fake: Callable[..., Any], translation: Callable[..., Any]
) -> StandardOp:
    """Register ``reference`` as ``torch.ops.litevit_std.<reference.__name__>``.

    ``fake`` computes the output's shape and dtype from the same (fake) arguments;
    ``translation`` takes onnxscript tensors and the attribute values and returns the standard
    ONNX nodes' output (see ``litevit.export.onnx_export``).
    """
    name = reference.__name__
    op = torch.library.custom_op(f"{NAMESPACE}::{name}", mutates_args=())(reference)
    op.register_fake(fake)
    op.register_autograd(_backward_through(reference), setup_context=_save_inputs)
    definition = StandardOp(name, reference, translation)
    STANDARD_OPS[name] = definition
    return definition


def _save_inputs(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.inputs = inputs
    ctx.save_for_backward(*(a for a in inputs if isinstance(a, torch.Tensor)))


def _backward_through(reference: Callable[..., Any]) -> Callable[..., tuple[Any, ...]]:
    """Backward by differentiating the reference (the small trained fixtures backpropagate
    through RoIAlign into the features; integer inputs and NMS's mask get no gradient)."""

    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        saved = iter(ctx.saved_tensors)
        inputs = []
        for arg in ctx.inputs:
            if isinstance(arg, torch.Tensor):
                tensor = next(saved).detach()
                inputs.append(tensor.requires_grad_(True) if tensor.is_floating_point() else tensor)
            else:
                inputs.append(arg)
        wrt = [a for a in inputs if isinstance(a, torch.Tensor) and a.requires_grad]
        with torch.enable_grad():
            out = reference(*inputs)
        grads = iter(torch.autograd.grad(out, wrt, grad, allow_unused=True)) if out.requires_grad else None
        return tuple(
            (next(grads) if grads is not None else None)
            if isinstance(a, torch.Tensor) and a.requires_grad
            else None
            for a in inputs
        )

    return backward


def translation_table() -> dict[Any, Callable[..., Any]]:
    """``{torch op: translation}`` for ``torch.onnx.export(custom_translation_table=...)``."""
    return {op.torch_op: op.translation for op in STANDARD_OPS.values()}
