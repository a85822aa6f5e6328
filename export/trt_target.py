"""``litevit-export MODEL --trt RELEASE``: graphs the ONNX parser of one TensorRT release imports.

Every graph litevit writes by default uses what TensorRT >= 10 parses. Two operators in them are
missing from older parsers (onnx-tensorrt ``docs/operators.md`` and the importer sources, kept as
data in ``litevit.runtime.trt_build.parser_coverage``):

* ``LayerNormalization`` (opset 17): no importer in TensorRT 8.5 (JetPack 5.1); the importer
  arrives in 8.6;
* ``CastLike`` (opset 15, in RASA's function body and so in every ``--ops inline`` LVT graph):
  no importer in 8.5 or 8.6.

For a target whose parser lacks one, the export writes it in operators that parser has, so the
default graphs stay as fast as they are on newer releases and the choice is explicit (and recorded
in the manifest as ``trt_target``; ``litevit build`` compares it with the installed TensorRT):

* LayerNormalization becomes ``ReduceMean, Sub, Pow 2, ReduceMean, Add epsilon, Sqrt, Div, Mul
  scale, Add bias`` -- the form torch.onnx wrote before opset 17 -- computed in float32 whatever
  the input type (the op's ``stash_type`` 1: casts around it when the input is float16). The FP16
  graph is converted from the graph that still has LayerNormalization, which its rules keep in
  float32 as one op, and decomposed afterwards, so the whole normalization (mean, variance and
  the division) stays in float32 there.
* CastLike becomes ``Cast`` to the element type of its second input.

Which operators get rewritten for a release is decided by the coverage table, not here: an
operator of :data:`REWRITES` is rewritten exactly when that release's row says its parser lacks it.
Function bodies are left alone: the releases that lack these operators (8.5, 8.6) do not read
function bodies at all. The parity gate then checks the rewritten graphs against PyTorch as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from litevit.errors import LitevitError
from litevit.onnx_graphs import UniqueNames, value_types_and_ranks
from litevit.runtime.trt_build.parser_coverage import TARGET_RELEASES, TRT_TARGET_KEY, release_support

DECOMPOSED_KEY = "litevit.decomposed_from"

_STANDARD = ("", "ai.onnx")


def check_target(target: str) -> str:
    """``target`` as a release row name, or one sentence naming the accepted ones."""
    if target not in TARGET_RELEASES:
        raise LitevitError(
            f"unknown --trt release {target!r}; choose one of {', '.join(TARGET_RELEASES)} "
            f"(8.5: JetPack 5.1; 8.6: JetPack 6.0; 10.3: JetPack 6.1/6.2; 10.4: the last with V100)."
        )
    return target


def rewritten_ops(target: str) -> list[str]:
    """The operators of :data:`REWRITES` that ``target``'s parser lacks."""
    ops = release_support(check_target(target)).ops
    return sorted(op for op in REWRITES if not (ops.get(op) or {}).get("supported", False))


def adapt_for_target(model: onnx.ModelProto, target: str) -> tuple[onnx.ModelProto, dict[str, int]]:
    """A copy of ``model`` whose main-graph nodes ``target``'s parser lacks are rewritten; the
    counts of rewritten nodes per op. The copy records the target in its metadata."""
    ops = rewritten_ops(target)
    adapted = onnx.ModelProto()
    adapted.CopyFrom(model)
    counts: dict[str, int] = {}
    if any(node.op_type in ops and node.domain in _STANDARD for node in adapted.graph.node):
        inferred = onnx.shape_inference.infer_shapes(adapted)
        facts = _value_facts(inferred.graph)
        names = UniqueNames(adapted.graph)
        rebuilt: list[onnx.NodeProto] = []
        for node in adapted.graph.node:
            if node.op_type in ops and node.domain in _STANDARD:
                rebuilt.extend(REWRITES[node.op_type](node, adapted, facts, names))
                counts[node.op_type] = counts.get(node.op_type, 0) + 1
            else:
                rebuilt.append(node)
        del adapted.graph.node[:]
        adapted.graph.node.extend(rebuilt)
        onnx.checker.check_model(adapted)
    entries = [p for p in adapted.metadata_props if p.key != TRT_TARGET_KEY]
    del adapted.metadata_props[:]
    adapted.metadata_props.extend(entries)
    adapted.metadata_props.append(onnx.StringStringEntryProto(key=TRT_TARGET_KEY, value=target))
    return adapted, counts


class _Facts:
    """Element types and ranks of the graph's values, from shape inference."""

    def __init__(self) -> None:
        self.types: dict[str, int] = {}
        self.ranks: dict[str, int] = {}

    def type_of(self, name: str, node: onnx.NodeProto) -> int:
        if name not in self.types:
            raise LitevitError(
                f"cannot rewrite {node.op_type} node {node.name!r} for the target: the type of {name!r} "
                f"is unknown."
            )
        return self.types[name]


def _value_facts(graph: onnx.GraphProto) -> _Facts:
    facts = _Facts()
    facts.types, facts.ranks = value_types_and_ranks(graph)
    return facts


def _opset(model: onnx.ModelProto) -> int:
    return next(int(o.version) for o in model.opset_import if o.domain in _STANDARD)


def _attribute(node: onnx.NodeProto, name: str, default: object) -> object:
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _layer_normalization(
    node: onnx.NodeProto, model: onnx.ModelProto, facts: _Facts, names: UniqueNames
) -> list[onnx.NodeProto]:
    x, scale = node.input[0], node.input[1]
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    axis = int(_attribute(node, "axis", -1))  # type: ignore[call-overload]
    epsilon = float(_attribute(node, "epsilon", 1e-5))  # type: ignore[arg-type]
    if axis < 0:
        axes = list(range(axis, 0))
    elif x in facts.ranks:
        axes = list(range(axis, facts.ranks[x]))
    else:
        raise LitevitError(
            f"cannot rewrite LayerNormalization node {node.name!r}: axis {axis} needs the input's rank, "
            f"which is unknown."
        )
    base = node.name or node.output[0]
    graph = model.graph
    nodes: list[onnx.NodeProto] = []

    def add(op_type: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        out = output or names(f"{base}/{op_type.lower()}")
        made = helper.make_node(op_type, inputs, [out], name=names(f"{base}/{op_type}"), **attrs)
        made.metadata_props.append(
            onnx.StringStringEntryProto(key=DECOMPOSED_KEY, value="LayerNormalization")
        )
        nodes.append(made)
        return out

    def reduce_mean(value: str) -> str:
        if _opset(model) >= 18:
            axes_name = names(f"{base}/axes")
            graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), axes_name))
            return add("ReduceMean", [value, axes_name], keepdims=1)
        return add("ReduceMean", [value], axes=axes, keepdims=1)

    def constant(value: float, suffix: str) -> str:
        name = names(f"{base}/{suffix}")
        graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), name))
        return name

    def as_float(value: str) -> str:
        # stash_type 1: the statistics are computed in float32 whatever the input type.
        if facts.type_of(value, node) == TensorProto.FLOAT:
            return value
        return add("Cast", [value], to=TensorProto.FLOAT)

    x_type = facts.type_of(x, node)
    x32 = as_float(x)
    mean = reduce_mean(x32)
    centred = add("Sub", [x32, mean])
    variance = reduce_mean(add("Mul", [centred, centred]))
    std = add("Sqrt", [add("Add", [variance, constant(epsilon, "epsilon")])])
    normalized = add("Div", [centred, std])
    wants_cast = x_type != TensorProto.FLOAT
    y = node.output[0]
    scaled = add("Mul", [normalized, as_float(scale)], None if bias or wants_cast else y)
    if bias:
        scaled = add("Add", [scaled, as_float(bias)], None if wants_cast else y)
    if wants_cast:
        add("Cast", [scaled], y, to=x_type)
    # The optional outputs, where the graph reads them.
    if len(node.output) > 1 and node.output[1]:
        add("Identity", [mean], node.output[1])
    if len(node.output) > 2 and node.output[2]:
        add("Reciprocal", [std], node.output[2])
    return nodes


def _cast_like(
    node: onnx.NodeProto, model: onnx.ModelProto, facts: _Facts, names: UniqueNames
) -> list[onnx.NodeProto]:
    target = facts.type_of(node.input[1], node)
    return [helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name, to=target)]


Rewrite = Callable[[onnx.NodeProto, onnx.ModelProto, _Facts, UniqueNames], "list[onnx.NodeProto]"]
# The keys are parser_coverage.REWRITTEN_AT_EXPORT (which names them in its refusals); a test
# keeps the two equal.
REWRITES: dict[str, Rewrite] = {"LayerNormalization": _layer_normalization, "CastLike": _cast_like}
