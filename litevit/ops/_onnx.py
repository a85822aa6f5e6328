"""A small builder for the ops' ONNX function bodies (``<op>_onnx_function``).

A body is a :class:`onnx.FunctionProto` of domain ``litevit`` built node by node in Python:
structural attributes (kernel geometry, dilations) are unrolled while building, everything that
depends on the input sizes is computed from ``Shape`` at run time, and every float constant is
``CastLike``-d to an input so that one body serves float32 and float16 models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from litevit.ops._define import DOMAIN, OPS, PLUGIN_ATTRS

# ``Slice`` end meaning "to the end of the axis" (ONNX clamps it to the axis length).
_SLICE_TO_END = np.iinfo(np.int64).max


class FunctionBuilder:
    """Collects nodes for one FunctionProto; each method adds nodes and returns the output name."""

    def __init__(self, op_name: str, opset: int) -> None:
        """Start the body of the registered op ``OPS[op_name]`` at ai.onnx version ``opset``."""
        opdef = OPS[op_name]
        self.name = op_name
        self.inputs = list(opdef.tensor_args)
        # Nodes may carry the TensorRT plugin attributes too, so the body must declare them.
        self.attributes = [*opdef.attr_args, *opdef.onnx_attr_names, *PLUGIN_ATTRS]
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self._count = 0

    def op(self, op_type: str, *inputs: str, refs: dict[str, str] | None = None, **attrs: Any) -> str:
        """Add one standard-domain node with a single output.

        ``refs`` maps a node attribute to the body attribute whose value it takes
        (``ref_attr_name``), e.g. a Conv's ``group`` from the op node's ``channels``.
        """
        self._count += 1
        output = f"{op_type.lower()}_{self._count}"
        node = helper.make_node(op_type, list(inputs), [output], **attrs)
        for name, body_attr in (refs or {}).items():
            node.attribute.append(
                onnx.AttributeProto(name=name, ref_attr_name=body_attr, type=onnx.AttributeProto.INT)
            )
        self.nodes.append(node)
        return output

    def ints(self, values: Sequence[int]) -> str:
        """A 1-D int64 constant (shapes, axes, slice bounds)."""
        return self.op("Constant", value=numpy_helper.from_array(np.asarray(values, dtype=np.int64)))

    def take(self, tensor: str, index: int, axis: int) -> str:
        """``tensor[..., index, ...]`` along ``axis``, which is dropped (a ``Gather`` with a 0-d index)."""
        scalar = self.op("Constant", value=numpy_helper.from_array(np.asarray(index, dtype=np.int64)))
        return self.op("Gather", tensor, scalar, axis=axis)

    def float_like(self, values: np.ndarray, like: str) -> str:
        """A float constant with the element type of tensor ``like`` (float32 or float16)."""
        constant = self.op("Constant", value=numpy_helper.from_array(np.asarray(values, dtype=np.float32)))
        return self.op("CastLike", constant, like)

    def dims(self, tensor: str, start: int, end: int) -> str:
        """``Shape(tensor)[start:end]`` as a 1-D int64 tensor."""
        return self.op("Shape", tensor, start=start, end=end)

    def reshape(self, tensor: str, *parts: str) -> str:
        """Reshape ``tensor`` to the concatenation of the 1-D int64 tensors ``parts``."""
        shape = parts[0] if len(parts) == 1 else self.op("Concat", *parts, axis=0)
        return self.op("Reshape", tensor, shape)

    def window(self, padded: str, border: int, top: int, left: int, axes: Sequence[int]) -> str:
        """The unpadded-size window at (top, left) of a map padded by ``border`` on every side.

        The rows ``top .. top + H`` of the (H + 2·border)-row map end ``2·border - top`` rows
        before its end: constant bounds, so H and W stay dynamic.
        """
        ends = [start - 2 * border or _SLICE_TO_END for start in (top, left)]  # end 0: to the end
        return self.op("Slice", padded, self.ints([top, left]), self.ints(ends), self.ints(axes))

    def add_all(self, terms: Sequence[str]) -> str:
        """The sum of ``terms`` as a chain of ``Add`` (faster than one ``Sum`` in ONNX Runtime)."""
        total = terms[0]
        for term in terms[1:]:
            total = self.op("Add", total, term)
        return total

    def build(self, output: str) -> onnx.FunctionProto:
        """The FunctionProto whose single output, ``output``, is the tensor named ``output`` so far."""
        for node in self.nodes:
            node.output[:] = ["output" if name == output else name for name in node.output]
            node.input[:] = ["output" if name == output else name for name in node.input]
        return helper.make_function(
            DOMAIN,
            self.name,
            self.inputs,
            ["output"],
            self.nodes,
            opset_imports=[helper.make_opsetid("", self.opset)],
            attributes=self.attributes,
        )
