"""``define_op``: turn a pure-PyTorch reference function into a litevit op, once.

An op is registered as ``torch.ops.litevit.<name>`` (a ``torch.library.custom_op``), so that

* models call one opaque op whose body is the reference implementation (CPU, no extension);
* FLOP counting sees the op as a whole and uses its formula (``litevit.flops``);
* autograd works by differentiating the reference (training the small test fixtures);
* export (``litevit.export``) maps the op to one ONNX node of domain ``litevit`` (its schema is
  registered with onnx here, so the checker validates the node's attributes), with the op's
  ONNX function body (standard ops) attached, stripped or inlined;
* the CUDA kernel and TensorRT plugin (``plugins/<op>/``) implement the same contract;
* ``torch.compile`` and ``torch.export`` trace it through its fake kernel, and torch's own
  ``FlopCounterMode`` counts it with the op's MAC formula (2 FLOPs per MAC, torch's convention).

Output contract, the same for every op and described exactly by the fake kernel (which
``torch.compile`` trusts, and ``torch.library.opcheck`` checks): a **new, contiguous** tensor of
the shape ``output_shape`` gives, with the dtype and device of the inputs, whatever their
strides (channels-last, permuted, sliced or batch-expanded views are all accepted). All tensor
inputs must share one dtype and device, as the ONNX schema's single type ``T`` and the kernels
require: mixed inputs are refused in one sentence rather than promoted.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import onnx
import torch
from torch.utils.flop_counter import register_flop_formula

DOMAIN = "litevit"
OP_VERSION = 1
# Attributes every litevit node carries so that TensorRT's ONNX parser maps it to our plugin
# (plugin_namespace is what TensorRT >= 10.15 needs to prefer a plugin over a function body).
PLUGIN_ATTRS = {"plugin_version": str(OP_VERSION), "plugin_namespace": DOMAIN}

OnnxFunctionBuilder = Callable[[dict[str, Any], int], onnx.FunctionProto]


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
    # onnx_function(node_attrs, opset) -> the op's body in standard ONNX ops at that opset.
    onnx_function: OnnxFunctionBuilder | None = None
    # Attributes the body bakes in (unrolled loops, kernel geometry): every node of this op in
    # one model must share their values, since a model holds one body per op.
    baked_attrs: tuple[str, ...] = ()
    # onnx_attrs(shapes..., attrs...) -> extra INT attributes the ONNX node carries, derived from
    # the static input shapes at export (e.g. the channel count a body's grouped Conv needs).
    onnx_attrs: Callable[..., dict[str, int]] | None = None
    onnx_attr_names: tuple[str, ...] = ()

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


def _check_tensors(onnx_name: str, tensors: Sequence[torch.Tensor]) -> None:
    """One dtype and one device for all tensor inputs (the output takes them)."""
    dtypes = {t.dtype for t in tensors}
    devices = {t.device for t in tensors}
    if len(dtypes) > 1 or len(devices) > 1:
        got = ", ".join(f"{t.dtype} on {t.device}" for t in tensors)
        raise ValueError(f"{onnx_name} takes tensors of one dtype on one device; got {got}.")


def define_op(
    onnx_name: str,
    reference: Callable[..., torch.Tensor],
    output_shape: Callable[..., tuple[int, ...]],
    macs: Callable[..., int],
    *,
    onnx_function: OnnxFunctionBuilder | None = None,
    baked_attrs: tuple[str, ...] = (),
    onnx_attrs: Callable[..., dict[str, int]] | None = None,
    onnx_attr_names: tuple[str, ...] = (),
) -> OpDef:
    """Register ``reference`` as ``torch.ops.litevit.<reference.__name__>``.

    ``reference`` must be fully type-annotated (tensors first, then int/float/list attributes);
    ``output_shape`` and ``macs`` take the same arguments with each tensor replaced by its shape.
    ``onnx_function`` builds the op's ONNX function body (see :class:`OpDef`).
    """
    torch_name = reference.__name__
    params = inspect.signature(reference).parameters
    tensor_args = tuple(
        n for n, p in params.items() if p.annotation in (torch.Tensor, "torch.Tensor", "Tensor")
    )
    attr_args = tuple(n for n in params if n not in tensor_args)

    signature = inspect.signature(reference)

    def _bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        _check_tensors(onnx_name, [bound.arguments[n] for n in tensor_args])
        return bound.arguments

    def _kernel(*args: Any, **kwargs: Any) -> torch.Tensor:
        _bind(args, kwargs)
        # The references follow their inputs' strides (zeros_like, elementwise ops); the op's
        # output is contiguous whatever the inputs, as the fake kernel below says.
        return reference(*args, **kwargs).contiguous()

    def _fake(*args: Any, **kwargs: Any) -> torch.Tensor:
        arguments = _bind(args, kwargs)
        shaped = {n: (tuple(v.shape) if n in tensor_args else v) for n, v in arguments.items()}
        first = arguments[tensor_args[0]]
        return torch.empty(output_shape(**shaped), dtype=first.dtype, device=first.device)  # contiguous

    # The schema comes from the reference's annotations; the registered kernel wraps it.
    schema = torch.library.infer_schema(reference, mutates_args=())
    op = torch.library.custom_op(f"{DOMAIN}::{torch_name}", _kernel, mutates_args=(), schema=schema)
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

    def _torch_flops(*shapes: Any, out_shape: Any = None, **attrs: Any) -> int:
        # torch's FlopCounterMode passes shapes in place of tensors; it counts 2 FLOPs per MAC.
        return 2 * int(macs(*shapes, **attrs))

    register_flop_formula(getattr(getattr(torch.ops, DOMAIN), torch_name))(_torch_flops)

    opdef = OpDef(
        onnx_name,
        torch_name,
        reference,
        output_shape,
        macs,
        tensor_args,
        attr_args,
        onnx_function,
        baked_attrs,
        onnx_attrs,
        onnx_attr_names,
    )
    _register_onnx_schema(opdef, params)
    OPS[onnx_name] = opdef
    return opdef


_ONNX_ATTR_TYPES = {
    int: onnx.defs.OpSchema.AttrType.INT,
    float: onnx.defs.OpSchema.AttrType.FLOAT,
    str: onnx.defs.OpSchema.AttrType.STRING,
    list[int]: onnx.defs.OpSchema.AttrType.INTS,
    "int": onnx.defs.OpSchema.AttrType.INT,
    "float": onnx.defs.OpSchema.AttrType.FLOAT,
    "str": onnx.defs.OpSchema.AttrType.STRING,
    "list[int]": onnx.defs.OpSchema.AttrType.INTS,
}


def _register_onnx_schema(opdef: OpDef, params: Any) -> None:
    """Register ``litevit::<op>`` with onnx so exporters can emit it and the checker validates it."""
    if onnx.defs.has(opdef.onnx_name, DOMAIN):
        return
    schema = onnx.defs.OpSchema
    attributes = [
        schema.Attribute(name, _ONNX_ATTR_TYPES[params[name].annotation], f"{opdef.onnx_name} {name}")
        for name in opdef.attr_args
    ]
    attributes += [
        schema.Attribute(name, schema.AttrType.INT, f"{opdef.onnx_name} {name}, from the input shapes")
        for name in opdef.onnx_attr_names
    ]
    attributes += [
        schema.Attribute(name, schema.AttrType.STRING, "TensorRT plugin lookup") for name in PLUGIN_ATTRS
    ]
    onnx.defs.register_schema(
        schema(
            opdef.onnx_name,
            DOMAIN,
            OP_VERSION,
            doc=(opdef.reference.__doc__ or "").strip().splitlines()[0],
            inputs=[schema.FormalParameter(name, "T") for name in opdef.tensor_args],
            outputs=[schema.FormalParameter("output", "T")],
            type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "float tensors")],
            attributes=attributes,
        )
    )
