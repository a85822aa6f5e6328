"""Opset handling: torch's ONNX exporter writes opset 18 or newer; TensorRT 8.5/8.6 read opsets up
to 17 (and parse a graph only if they import every operator in it: LayerNormalization not on 8.5,
CastLike on neither; ``litevit-export --trt`` writes graphs for them, see export/trt_target.py).

``convert_opset(model, 17)`` rewrites the few operators whose signature changed at opset 18 and
refuses, naming them, any it cannot express at 17. onnx's own version converter is not used: it
has no 18 -> 17 adapter for ``Pad`` and, when it fails, torch's exporter silently keeps opset 18.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from litevit.errors import LitevitError

MIN_OPSET = 17  # LayerNormalization needs 17; TensorRT 8.5/8.6 (JetPack 5.1/6.0) read up to 17
EXPORTER_MIN_OPSET = 18  # torch.onnx (dynamo) builds graphs at 18 or newer

# Reductions whose `axes` moved from an attribute (<= 17) to an input (>= 18).
_REDUCE_AXES_INPUT = {
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
}
# New at 18 with no opset-17 equivalent (Col2Im is also refused by the exporter on its own).
_NO_OPSET17_FORM = {
    "Col2Im",
    "CenterCropPad",
    "GroupNormalization",
    "Mish",
    "OptionalHasElement",
    "OptionalGetElement",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
    "BitwiseNot",
}


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise LitevitError("the ONNX model declares no default-domain opset.")


def convert_opset(model: onnx.ModelProto, target: int) -> onnx.ModelProto:
    """Return ``model`` at default opset ``target`` (17, or the model's own opset)."""
    current = default_opset(model)
    if target == current:
        return model
    if not (target == MIN_OPSET and current == EXPORTER_MIN_OPSET):
        raise LitevitError(
            f"cannot convert opset {current} to {target}: litevit writes opset {MIN_OPSET} "
            f"or {EXPORTER_MIN_OPSET} and newer as torch exports them."
        )
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    constants = _constant_values(converted.graph)
    static_dims = _static_dims(converted)
    problems: list[str] = []
    for node in converted.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        problem = _downgrade_node(node, converted.graph, constants, static_dims)
        if problem:
            problems.append(problem)
    if problems:
        raise LitevitError(
            f"cannot write opset {target}: "
            + "; ".join(sorted(set(problems)))
            + f". Export with --opset {current} (TensorRT >= 10 parses it)."
        )
    for entry in converted.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = target
    return converted


def _constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _static_dims(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    dims: dict[str, list[int | None]] = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        shape = info.type.tensor_type.shape
        dims[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]
    return dims


def _attr(node: onnx.NodeProto, name: str) -> onnx.AttributeProto | None:
    return next((a for a in node.attribute if a.name == name), None)


def _downgrade_node(
    node: onnx.NodeProto,
    graph: onnx.GraphProto,
    constants: dict[str, np.ndarray],
    static_dims: dict[str, list[int | None]],
) -> str | None:
    """Rewrite ``node`` in place to its opset-17 form; return a problem description if impossible."""
    op = node.op_type
    if op in _NO_OPSET17_FORM:
        return f"{op} has no opset-17 form"
    if op in _REDUCE_AXES_INPUT:
        noop = _attr(node, "noop_with_empty_axes")
        if len(node.input) > 1 and node.input[1]:
            if node.input[1] not in constants:
                return f"{op} with run-time axes"
            axes = [int(a) for a in constants[node.input[1]].reshape(-1)]
            del node.input[1:]
            if axes:
                node.attribute.append(helper.make_attribute("axes", axes))
            elif noop is not None and noop.i:
                return f"{op} with empty axes as a no-op"
        elif noop is not None and noop.i:
            return f"{op} with empty axes as a no-op"
        if noop is not None:
            node.attribute.remove(noop)
        return None
    if op == "Pad":
        return "Pad with an axes input" if len(node.input) > 3 and node.input[3] else None
    if op == "Resize":
        for name, default in (("antialias", 0), ("keep_aspect_ratio_policy", b"stretch")):
            attr = _attr(node, name)
            if attr is not None:
                if (attr.i if name == "antialias" else attr.s) != default:
                    return f"Resize with {name}"
                node.attribute.remove(attr)
        return "Resize with axes" if _attr(node, "axes") is not None else None
    if op in ("ScatterElements", "ScatterND"):
        reduction = _attr(node, "reduction")
        return (
            f"{op} with min/max reduction"
            if reduction is not None and reduction.s in (b"min", b"max")
            else None
        )
    if op == "LpPool":
        return "LpPool with ceil_mode" if _attr(node, "ceil_mode") is not None else None
    if op == "Split":
        return _split_sizes_from_num_outputs(node, graph, static_dims)
    return None


def _split_sizes_from_num_outputs(
    node: onnx.NodeProto, graph: onnx.GraphProto, static_dims: dict[str, list[int | None]]
) -> str | None:
    num_outputs = _attr(node, "num_outputs")
    if num_outputs is None:
        return None
    axis_attr = _attr(node, "axis")
    axis = axis_attr.i if axis_attr is not None else 0
    dims = static_dims.get(node.input[0])
    size = dims[axis] if dims is not None and -len(dims) <= axis < len(dims) else None
    if size is None:
        return "Split into equal parts of a dynamic dimension"
    parts = int(num_outputs.i)
    chunk = -(-size // parts)  # opset 18: equal chunks, the last one smaller
    sizes = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else [])
    split_name = f"{node.name or node.output[0]}_split_sizes"
    graph.initializer.append(numpy_helper.from_array(np.array(sizes, dtype=np.int64), split_name))
    node.attribute.remove(num_outputs)
    node.input.append(split_name)
    return None
