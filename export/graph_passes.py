"""Graph rewrites at export: the same arithmetic in the form ONNX Runtime runs fast, standard ONNX
that every supported TensorRT parser (8.5 -> 11) still takes.

Each pass was chosen from ONNX Runtime's profiler (per-node time, ``SessionOptions.enable_profiling``;
figures in the README's performance section) and is exact up to float rounding order:

* :func:`decompose_softmax` — ``Softmax`` over an axis that is not the last (ELSA's softmax over
  the k² taps of (B, heads, k², H, W)): ONNX Runtime transposes the axis to the end and back
  around its kernel, 4-7x slower than ``ReduceMax, Sub, Exp, ReduceSum, Div`` over the axis in
  place (its reductions of a middle axis run vectorised over the contiguous inner axes).
* :func:`channels_last_argmax` — the label-map tail ``Resize(NCHW) -> ArgMax(axis=1)``:
  ONNX Runtime's ArgMax over the channel axis walks 150 strided planes per pixel (about 180 ms
  for 150 x 512²) and its NCHW bilinear Resize is 2.6x slower than its NHWC one; transposing the
  small pre-resize scores to NHWC, resizing there and taking the ArgMax over the last axis does
  the same work in about a fifth of the time. TensorRT 8.5's parser resizes linearly on the
  innermost three axes, which (H, W, C) with a scale of 1 on C satisfies.
* :func:`fold_static_shapes` — in a graph whose input shapes are all static, ``Shape`` nodes and
  the small integer arithmetic on them (function bodies written for dynamic sizes, once inlined)
  become constants, so no shape computation is left to run per inference.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
import onnx.reference
from onnx import helper, numpy_helper

from litevit.export.opset import default_opset
from litevit.onnx_graphs import UniqueNames

_STANDARD = ("", "ai.onnx")
# Ops :func:`fold_static_shapes` evaluates when all their inputs are constants: shape arithmetic.
_FOLDABLE = frozenset(
    {
        "Shape", "Size", "Gather", "Concat", "Slice", "Unsqueeze", "Squeeze", "Reshape", "Cast",
        "Add", "Sub", "Mul", "Div", "Equal", "Where", "Range", "Identity", "Max", "Min", "Neg",
    }
)  # fmt: skip
# Folded values larger than this stay computed: the pass removes shape logic, it does not bake
# activation-sized tensors into the file.
_MAX_FOLDED_ELEMENTS = 4096


def optimize_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """The passes every exported main graph gets (before the ``--ops`` mode is applied)."""
    return channels_last_argmax(decompose_softmax(model))


def _ranks(graph: onnx.GraphProto) -> dict[str, int]:
    """Rank of every value whose shape the exporter (or shape inference) recorded."""
    return {
        v.name: len(v.type.tensor_type.shape.dim)
        for v in (*graph.input, *graph.value_info, *graph.output)
        if v.type.tensor_type.HasField("shape")
    }


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), default)


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _replace_nodes(graph: onnx.GraphProto, replacements: dict[int, list[onnx.NodeProto]]) -> None:
    """Replace ``graph.node[i]`` by ``replacements[i]`` (an empty list removes it), order kept."""
    rebuilt: list[onnx.NodeProto] = []
    for index, node in enumerate(graph.node):
        rebuilt.extend(replacements.get(index, [node]))
    del graph.node[:]
    graph.node.extend(rebuilt)


def _reduce(
    op_type: str, data: str, axis: int, output: str, opset: int, graph: onnx.GraphProto, names: UniqueNames
) -> onnx.NodeProto:
    """``op_type`` over ``axis`` with keepdims, in the form of ``opset`` (axes input from 18 for
    ReduceMax, from 13 for ReduceSum)."""
    axes_as_input = opset >= 18 or op_type == "ReduceSum"
    if not axes_as_input:
        return helper.make_node(op_type, [data], [output], axes=[axis], keepdims=1, name=names(output))
    axes = names(f"{output}_axes")
    graph.initializer.append(numpy_helper.from_array(np.array([axis], dtype=np.int64), axes))
    return helper.make_node(op_type, [data, axes], [output], keepdims=1, name=names(output))


def decompose_softmax(model: onnx.ModelProto) -> onnx.ModelProto:
    """``Softmax`` over a non-last axis -> ``e = Exp(x - ReduceMax(x)); e / ReduceSum(e)`` there."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    opset = default_opset(out)
    ranks = _ranks(graph)
    names = UniqueNames(graph)
    replacements: dict[int, list[onnx.NodeProto]] = {}
    for index, node in enumerate(graph.node):
        if node.op_type != "Softmax" or node.domain not in _STANDARD or node.input[0] not in ranks:
            continue
        rank = ranks[node.input[0]]
        axis = _attribute(node, "axis", -1) % rank
        if axis == rank - 1:
            continue
        x, y = node.input[0], node.output[0]
        peak, shifted, exp, total = (names(f"{y}_{part}") for part in ("max", "shifted", "exp", "sum"))
        replacements[index] = [
            _reduce("ReduceMax", x, axis, peak, opset, graph, names),
            helper.make_node("Sub", [x, peak], [shifted], name=names(shifted)),
            helper.make_node("Exp", [shifted], [exp], name=names(exp)),
            _reduce("ReduceSum", exp, axis, total, opset, graph, names),
            helper.make_node("Div", [exp, total], [y], name=node.name or names(y)),
        ]
    _replace_nodes(graph, replacements)
    return out


def channels_last_argmax(model: onnx.ModelProto) -> onnx.ModelProto:
    """``ArgMax(axis=1, keepdims=0)`` of a 4-D ``Resize`` used by nothing else -> the same over the
    last axis of the resize done in NHWC: ``Transpose(0,2,3,1) -> Resize -> ArgMax(axis=3)``."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    ranks = _ranks(graph)
    users = _consumers(graph)
    producer = {name: index for index, node in enumerate(graph.node) for name in node.output}
    constants = {init.name: init for init in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    names = UniqueNames(graph)
    replacements: dict[int, list[onnx.NodeProto]] = {}
    for index, argmax in enumerate(graph.node):
        if argmax.op_type != "ArgMax" or argmax.domain not in _STANDARD:
            continue
        scores = argmax.input[0]
        if (
            ranks.get(scores) != 4
            or _attribute(argmax, "axis", 0) not in (1, -3)
            or _attribute(argmax, "keepdims", 1) != 0
            or scores not in producer
            or len(users.get(scores, [])) != 1
            or scores in graph_outputs
        ):
            continue
        resize_index = producer[scores]
        resize = graph.node[resize_index]
        if (
            resize.op_type != "Resize"
            or resize.domain not in _STANDARD
            or any(a.name == "axes" for a in resize.attribute)
        ):
            continue
        inputs = list(resize.input) + [""] * (4 - len(resize.input))
        if inputs[1] and not _is_empty(constants.get(inputs[1])):  # a region of interest: leave it
            continue
        nhwc = names(f"{inputs[0]}_nhwc")
        before = [helper.make_node("Transpose", [inputs[0]], [nhwc], perm=[0, 2, 3, 1], name=names(nhwc))]
        permuted = [nhwc, ""]
        for factor in (inputs[2], inputs[3]):  # scales, sizes
            if not factor:
                permuted.append("")
            elif factor in constants:
                values = numpy_helper.to_array(constants[factor])
                name = names(f"{factor}_nhwc")
                graph.initializer.append(numpy_helper.from_array(values[[0, 2, 3, 1]], name))
                permuted.append(name)
            else:
                order, name = names(f"{factor}_nhwc_order"), names(f"{factor}_nhwc")
                graph.initializer.append(
                    numpy_helper.from_array(np.array([0, 2, 3, 1], dtype=np.int64), order)
                )
                before.append(helper.make_node("Gather", [factor, order], [name], axis=0, name=names(name)))
                permuted.append(name)
        while permuted and not permuted[-1]:
            permuted.pop()
        resized = names(f"{scores}_nhwc")
        new_resize = helper.make_node("Resize", permuted, [resized], name=resize.name or names(resized))
        new_resize.attribute.extend(resize.attribute)
        new_argmax = helper.make_node(
            "ArgMax", [resized], list(argmax.output), name=argmax.name or names("argmax")
        )
        new_argmax.attribute.extend(a for a in argmax.attribute if a.name != "axis")
        new_argmax.attribute.append(helper.make_attribute("axis", 3))
        replacements[resize_index] = [*before, new_resize]
        replacements[index] = [new_argmax]
    _replace_nodes(graph, replacements)
    _drop_unused_initializers(graph)
    return out


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    if len(kept) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)


def _is_empty(tensor: onnx.TensorProto | None) -> bool:
    return tensor is not None and int(np.prod(tensor.dims)) == 0


def fold_static_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ``Shape`` of statically shaped values, and the small shape arithmetic fed only by
    constants, with initializers (a graph without dynamic axes then runs no shape logic)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    values = {
        init.name: numpy_helper.to_array(init)
        for init in graph.initializer
        if int(np.prod(init.dims)) <= _MAX_FOLDED_ELEMENTS
    }
    changed = True
    while changed:  # one sweep in graph order folds chains; a new sweep sees the shapes they fixed
        changed = False
        static = _static_shapes(out)
        kept: list[onnx.NodeProto] = []
        for node in graph.node:
            folded = _fold(node, values, static)
            if folded is None:
                kept.append(node)
                continue
            changed = True
            for name, value in zip(node.output, folded, strict=True):
                values[name] = value
                graph.initializer.append(numpy_helper.from_array(value, name))
        del graph.node[:]
        graph.node.extend(kept)
    _drop_unused_initializers(graph)
    kept_info = [v for v in graph.value_info if v.name not in values]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    return out


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Fully static shapes by ONNX shape inference (with data propagation) on a weight-free copy:
    large initializers become graph inputs of the same type and shape."""
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)
    del skeleton.graph.initializer[:]
    del skeleton.graph.value_info[:]
    for init in model.graph.initializer:
        if int(np.prod(init.dims)) <= _MAX_FOLDED_ELEMENTS:
            skeleton.graph.initializer.append(init)
        else:
            skeleton.graph.input.append(
                helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
            )
    inferred = onnx.shape_inference.infer_shapes(skeleton, data_prop=True)
    shapes: dict[str, list[int]] = {}
    for v in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        dims = v.type.tensor_type.shape.dim
        if v.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[v.name] = [d.dim_value for d in dims]
    return shapes


def _fold(
    node: onnx.NodeProto, values: dict[str, np.ndarray], static: dict[str, list[int]]
) -> list[np.ndarray] | None:
    """The node's outputs as arrays when it is shape logic computable now, else None."""
    if node.domain not in _STANDARD:
        return None
    if node.op_type == "Constant":
        attr = node.attribute[0] if len(node.attribute) == 1 else None
        if attr is None or attr.name != "value":
            return None
        value = numpy_helper.to_array(attr.t)
        return [value] if value.size <= _MAX_FOLDED_ELEMENTS else None
    if node.op_type == "Shape" and node.input[0] in static:
        shape = np.array(static[node.input[0]], dtype=np.int64)
        start, end = _attribute(node, "start", 0), _attribute(node, "end", len(shape))
        return [shape[start:end]]
    if node.op_type not in _FOLDABLE or not all(not name or name in values for name in node.input):
        return None
    outputs = _evaluate(node, (values[name] if name else None for name in node.input))
    if any(o.size > _MAX_FOLDED_ELEMENTS for o in outputs):
        return None
    return outputs


def _evaluate(node: onnx.NodeProto, inputs: Iterable[np.ndarray | None]) -> list[np.ndarray]:
    arrays = list(inputs)
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(arrays)]
    single = helper.make_node(node.op_type, names, list(node.output), domain=node.domain)
    single.attribute.extend(node.attribute)
    evaluator = onnx.reference.ReferenceEvaluator(single)
    return [
        np.asarray(o) for o in evaluator.run(None, {n: a for n, a in zip(names, arrays, strict=True) if n})
    ]
