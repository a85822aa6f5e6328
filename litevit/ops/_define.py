"""``define_op``: turn a pure-PyTorch reference function into a litevit op, once.

An op is registered as ``torch.ops.litevit.<name>`` (a ``torch.library.custom_op``), so that

* models call one opaque op whose body is the reference implementation (CPU, no extension);
* FLOP counting sees the op as a whole and uses its formula (``litevit.flops``);
* autograd works by differentiating the reference (training the small test fixtures);
* export (``litevit.export``) can map the op to one ONNX node of domain ``litevit``;
* the CUDA kernel and TensorRT plugin (``plugins/<op>/``) implement the same contract.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

DOMAIN = "litevit"
OP_VERSION = 1


@dataclass(frozen=True)
class OpDef:
    """Everything litevit knows about one custom op."""

    onnx_name: str  # op_type of the ONNX node, e.g. "CSA"
    torch_name: str  # torch.ops.litevit.<torch_name>
    reference: Callable[..., torch.Tensor]  # pure-PyTorch implementation
    output_shape: Callable[..., tuple[int, ...]]  # same arguments, tensors replaced by shapes
    macs: Callable[..., int]  # same arguments, tensors replaced by shapes
    tensor_args: tuple[str, ...]  # names of the tensor inputs, in order
    attr_args: tuple[str, ...]  # names of the attributes, in order

    @property
    def torch_op(self) -> Any:
        return getattr(getattr(torch.ops, DOMAIN), self.torch_name).default

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.torch_op(*args, **kwargs)

    def split_args(self, args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Bind a call's arguments: (tensor inputs, {attribute: value})."""
        bound = inspect.signature(self.reference).bind(*args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        return [values[n] for n in self.tensor_args], {n: values[n] for n in self.attr_args}

    def shapes_and_attrs(
        self, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> tuple[list[tuple[int, ...]], dict[str, Any]]:
        tensors, attrs = self.split_args(args, kwargs)
        return [tuple(t.shape) for t in tensors], attrs

    def count_macs(self, *args: Any, **kwargs: Any) -> int:
        shapes, attrs = self.shapes_and_attrs(args, kwargs)
        return int(self.macs(*shapes, **attrs))


OPS: dict[str, OpDef] = {}


def define_op(
    onnx_name: str,
    reference: Callable[..., torch.Tensor],
    output_shape: Callable[..., tuple[int, ...]],
    macs: Callable[..., int],
) -> OpDef:
    """Register ``reference`` as ``torch.ops.litevit.<reference.__name__>``.

    ``reference`` must be fully type-annotated (tensors first, then int/float/list attributes);
    ``output_shape`` and ``macs`` take the same arguments with each tensor replaced by its shape.
    """
    torch_name = reference.__name__
    params = inspect.signature(reference).parameters
    tensor_args = tuple(
        n for n, p in params.items() if p.annotation in (torch.Tensor, "torch.Tensor", "Tensor")
    )
    attr_args = tuple(n for n in params if n not in tensor_args)

    op = torch.library.custom_op(f"{DOMAIN}::{torch_name}", mutates_args=())(reference)

    def _fake(*args: Any, **kwargs: Any) -> torch.Tensor:
        bound = inspect.signature(reference).bind(*args, **kwargs)
        bound.apply_defaults()
        first = bound.arguments[tensor_args[0]]
        shaped = {n: (tuple(v.shape) if n in tensor_args else v) for n, v in bound.arguments.items()}
        return first.new_empty(output_shape(**shaped))

    op.register_fake(_fake)

    def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.inputs = inputs
        ctx.save_for_backward(*(a for a in inputs if isinstance(a, torch.Tensor)))

    def _backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        # Differentiate the reference itself: one definition serves forward and backward.
        saved = iter(ctx.saved_tensors)
        inputs = [
            next(saved).detach().requires_grad_(True) if isinstance(a, torch.Tensor) else a
            for a in ctx.inputs
        ]
        with torch.enable_grad():
            out = reference(*inputs)
        wrt = [a for a in inputs if isinstance(a, torch.Tensor)]
        grads = iter(torch.autograd.grad(out, wrt, grad, allow_unused=True))
        return tuple(next(grads) if isinstance(a, torch.Tensor) else None for a in inputs)

    op.register_autograd(_backward, setup_context=_setup_context)

    opdef = OpDef(onnx_name, torch_name, reference, output_shape, macs, tensor_args, attr_args)
    OPS[onnx_name] = opdef
    return opdef
