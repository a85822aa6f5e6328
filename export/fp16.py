"""A strongly typed FP16 ONNX graph from an FP32 one (``MODEL.fp16.onnx``).

TensorRT 11 builds only strongly typed networks: every tensor's precision is the one written in
the ONNX graph (no ``--fp16`` builder flag). TensorRT 8.5-10.x accept the same graph, so one
pre-cast model serves every target. :func:`convert_to_fp16` produces it:

* weights (float initializers, float ``Constant`` values) and activations are float16
  (``ConstantOfShape`` fills stay float32, rule 3);
* graph inputs and outputs stay float32: a ``Cast`` to float16 follows each float input and a
  ``Cast`` to float32 precedes each float output, so callers feed and read the same arrays as
  for the FP32 model;
* numerically sensitive nodes run in float32 with casts around them (see :data:`DEFAULT_KEEP_FP32`
  and the rules below); the weights they read stay float32;
* custom-domain nodes (``litevit::CSA``/``RASA``/``GhostHead``) take and produce float16.

Which nodes run in float32 (every other node with float tensors runs in float16):

1. Nodes of the standard domain whose op_type is in ``keep_fp32_op_types``, except a
   ``BatchNormalization`` whose input comes from a ``Conv``/``ConvTranspose`` that feeds nothing
   else: TensorRT folds that one into the convolution's weights, so it runs at the
   convolution's precision (the exporter already folds eval-mode BN after a convolution; what is
   left, e.g. BN after a reshape, runs as its own scale layer and stays float32).
2. Hand-written norms (RMSNorm, L2 norm, LayerNorm written with primitives): a ``Pow`` or a
   ``Mul(x, x)`` that feeds a ``ReduceMean``/``ReduceSum``, and that reduction (x² overflows
   float16 once |x| > 256); then, from every float32 reduction, the statistics chain that
   follows it: ``Sqrt``, ``Reciprocal``, and ``Add``/``Sub``/``Mul``/``Pow``/``Div`` whose other
   operand is a constant (``var + eps``, ``var ** -0.5``; eps = 1e-6 is not a float16 normal
   number), ending at a ``Div`` that divides by the chain (``(x - mean) / std``).
3. Index arithmetic: float nodes computed only from integers cast to float (``Cast`` from an
   integer or bool type), ``Range`` outputs, ``ConstantOfShape`` fills and constants, e.g. sizes,
   scales and positions derived from ``Shape``, or pixel counts of a mask: float16 holds integers
   exactly only up to 2048. The ``Cast`` into float keeps casting to float32 there, and
   ``ConstantOfShape`` fills float32 (the only type TensorRT 8.5/8.6's parser fills).
4. Box coordinates (detectors): every float node upstream of a ``RoiAlign``'s RoIs or a
   ``NonMaxSuppression``'s boxes, back to the network outputs it decodes (stopping at
   ``Conv``/``ConvTranspose``/``Gemm``/``MatMul``, ``RoiAlign`` and custom-domain nodes, whose
   outputs are features), then every float node that reads such a coordinate, apart from those
   same ops; and the ``RoiAlign``/``NonMaxSuppression`` nodes themselves (``RoiAlign`` takes its
   features in float32 too: one type for both). Pixel coordinates reach 1344 on a 1333 x 800
   canvas, where float16's spacing is 1 pixel; box decoding multiplies them by ``exp(dw)``;
   ``sqrt(w * h)`` (RoI level mapping) and mmcv's class offset for class-aware NMS (``label x
   (max coordinate + 1)``, up to 80 x 1345) overflow float16's 65504.

Per node input, the precision is: float32 if the node runs in float32; float32 if the op's
schema (``onnx.defs.get_schema``) does not allow float16 for that input (``Resize`` scales) or
the input is a coordinate tensor TensorRT reads as float32 weights (``Resize`` roi); float16
otherwise. Nodes without a schema (custom domains, model-local functions) take float16 for all
their float inputs. Inputs of one type parameter thus share one precision, and a node's outputs
follow the inputs of their type parameter. ``Cast`` to float32 becomes ``Cast`` to float16 in the
float16 part of the graph.

Casts are inserted where a value's precision differs from what a consumer needs (one per value
and precision), then simplified: back-to-back float casts are merged into one (the intermediate
float16 rounding is dropped, never added), casts to the type a tensor already has are removed,
and casts of weights are folded into float16 copies of the weights. Float32 weights above the
float16 range are clamped to +-65504 (e.g. ``finfo(float32).min`` used as an attention mask
value) rather than becoming infinities.

Model-local function bodies are expected to be type-generic (float constants ``CastLike``-d to an
input, as ``litevit.ops`` builds them); any other float constant in a body called in float16, and
any ``Cast`` to float32 there, is converted to float16.

Given a model this function already converted (it carries the :data:`FP16_METADATA_KEY` entry)
with the same ``keep_fp32_op_types``, :func:`convert_to_fp16` returns an unchanged copy; with a
different list, or given a model with float16 inputs, outputs or weights and no such entry, it
raises ``ValueError`` (convert the FP32 model instead). Control flow (``If``/``Loop``/``Scan``
subgraphs) is not supported and raises ``ValueError``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from litevit.onnx_graphs import UniqueNames

FP16_METADATA_KEY = "litevit.fp16"

DEFAULT_KEEP_FP32: frozenset[str] = frozenset(
    {
        # exp() of the logits overflows float16 past 11; TensorRT fuses the casts into the
        # attention kernel.
        "Softmax",
        "LogSoftmax",
        # Mean/variance over a whole row or channel: the sum of squares overflows float16 and the
        # variance of small activations underflows it.
        "LayerNormalization",
        "GroupNormalization",
        "InstanceNormalization",
        "MeanVarianceNormalization",
        "LpNormalization",
        "RMSNormalization",
        # Only when it cannot be folded into a preceding convolution (rule 1 in the docstring).
        "BatchNormalization",
        # Reductions over many elements (global average pooling, hand-written norms).
        "ReduceMean",
        "ReduceSumSquare",
        "ReduceL2",
        "ReduceLogSumExp",
    }
)

_FLOAT = TensorProto.FLOAT
_FLOAT16 = TensorProto.FLOAT16
_FLOAT_TYPES = (_FLOAT, _FLOAT16)
_FLOAT16_MAX = float(np.finfo(np.float16).max)
_STANDARD_DOMAINS = ("", "ai.onnx")
# Inputs TensorRT reads as float32 coordinates (weights), although the schema allows float16.
_FLOAT32_COORDINATE_INPUTS: dict[str, frozenset[int]] = {"Resize": frozenset({1})}
# Ops whose float output does not follow an input's type (its type is set by an attribute).
_TYPE_FROM_ATTRIBUTE_OPS = ("Cast", "Constant", "ConstantOfShape")
_CONVOLUTIONS = ("Conv", "ConvTranspose")
_SQUARE_REDUCTIONS = ("ReduceMean", "ReduceSum")
_UNARY_STATISTICS = ("Sqrt", "Reciprocal")
_BINARY_STATISTICS = ("Add", "Sub", "Mul", "Pow", "Div")
# Rule 4: node inputs that are box coordinates, and the ops whose outputs are features (where the
# coordinate chains stop).
_COORDINATE_INPUTS: dict[str, tuple[int, ...]] = {"RoiAlign": (1,), "NonMaxSuppression": (0,)}
_FEATURE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "RoiAlign"})


def convert_to_fp16(
    model: onnx.ModelProto, keep_fp32_op_types: Collection[str] = DEFAULT_KEEP_FP32
) -> onnx.ModelProto:
    """Return the strongly typed FP16 form of the FP32 ``model`` (``model`` is not modified).

    See the module docstring for the rules. The result passes
    ``onnx.checker.check_model(result, full_check=True)``.
    """
    keep = frozenset(keep_fp32_op_types)
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    previous = _fp16_metadata(model)
    if previous is not None:
        if previous.get("keep_fp32_op_types") != sorted(keep):
            raise ValueError(
                "model is already the FP16 form, converted with keep_fp32_op_types="
                f"{previous.get('keep_fp32_op_types')}; convert the FP32 model instead."
            )
        return converted
    _check_convertible(converted.graph)

    graph = converted.graph
    types = _element_types(converted)
    opsets = {o.domain or "": o.version for o in converted.opset_import}
    fp32_nodes = _fp32_node_positions(graph, keep, types)
    kept_op_types = Counter(graph.node[position].op_type for position in fp32_nodes)
    rewriter = _GraphRewriter(graph, types, opsets, fp32_nodes)
    rewriter.rewrite()
    _simplify_casts(graph, rewriter.types, rewriter.originally_consumed)
    _update_value_info(graph, rewriter.types, rewriter.renamed_outputs)
    _convert_function_bodies(converted)

    _set_metadata(
        converted,
        {
            "precision": "fp16",
            "io_dtype": "float32",
            "keep_fp32_op_types": sorted(keep),
            "fp32_nodes": dict(sorted(kept_op_types.items())),
        },
    )
    return onnx.shape_inference.infer_shapes(converted, check_type=True, strict_mode=True, data_prop=True)


def fp16_report(model: onnx.ModelProto) -> dict[str, object]:
    """Counts for the export manifest: tensors by precision and the nodes that compute in float32.

    ``fp32_nodes`` counts, by op_type, the nodes other than ``Cast`` with a float32 output.
    """
    graph = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output, *graph.value_info)}
    types.update({t.name: t.data_type for t in graph.initializer})
    tensors = Counter(types.values())
    initializers = Counter(t.data_type for t in graph.initializer)
    fp32_nodes = Counter(
        node.op_type
        for node in graph.node
        if node.op_type != "Cast" and any(types.get(name) == _FLOAT for name in node.output)
    )
    return {
        "float16_tensors": tensors[_FLOAT16],
        "float32_tensors": tensors[_FLOAT],
        "float16_initializers": initializers[_FLOAT16],
        "float32_initializers": initializers[_FLOAT],
        "casts": sum(node.op_type == "Cast" for node in graph.node),
        "fp32_nodes": dict(sorted(fp32_nodes.items())),
    }


def _fp16_metadata(model: onnx.ModelProto) -> dict[str, object] | None:
    for prop in model.metadata_props:
        if prop.key == FP16_METADATA_KEY:
            value: dict[str, object] = json.loads(prop.value)
            return value
    return None


def _set_metadata(model: onnx.ModelProto, value: dict[str, object]) -> None:
    entry = model.metadata_props.add()
    entry.key = FP16_METADATA_KEY
    entry.value = json.dumps(value, sort_keys=True)


def _check_convertible(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ValueError(
                f"{node.op_type} node {node.name!r} has a subgraph; control flow is not supported."
            )
    fp16_tensors = [
        v.name for v in (*graph.input, *graph.output) if v.type.tensor_type.elem_type == _FLOAT16
    ] + [t.name for t in graph.initializer if t.data_type == _FLOAT16]
    if fp16_tensors:
        raise ValueError(
            f"model already has float16 tensors ({', '.join(fp16_tensors[:3])}, ...) but is not litevit's "
            "FP16 form; convert the FP32 model instead."
        )


def _element_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor name in the main graph (0 where it cannot be told)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output, *graph.value_info)}
    types.update({t.name: t.data_type for t in graph.initializer})
    # Shape inference cannot type the outputs of ops it has no schema or function for; custom
    # ops are type-generic (output type = input type), and Cast/Constant state theirs.
    for node in graph.node:
        for output in node.output:
            if output and not types.get(output):
                types[output] = _stated_output_type(node) or next(
                    (types[name] for name in node.input if types.get(name)), 0
                )
    return types


def _stated_output_type(node: onnx.NodeProto) -> int:
    if node.op_type == "Cast":
        return int(helper.get_attribute_value(_attribute(node, "to")))
    if node.op_type == "Constant":
        attr = node.attribute[0]
        if attr.name == "value":
            return attr.t.data_type
        if attr.name in ("value_float", "value_floats"):
            return _FLOAT
    return 0


def _attribute(node: onnx.NodeProto, name: str) -> onnx.AttributeProto:
    return next(a for a in node.attribute if a.name == name)


def _consumers(nodes: Sequence[onnx.NodeProto]) -> dict[str, list[tuple[int, int]]]:
    """Tensor name -> (node position, input index) of every node input reading it."""
    consumers: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for position, node in enumerate(nodes):
        for index, name in enumerate(node.input):
            if name:
                consumers[name].append((position, index))
    return consumers


def _fp32_node_positions(graph: onnx.GraphProto, keep: frozenset[str], types: dict[str, int]) -> set[int]:
    """Positions in ``graph.node`` of the nodes that compute in float32 (rules 1-3 of the module
    docstring)."""
    nodes = list(graph.node)
    producers = {name: node for node in nodes for name in node.output}
    consumers = _consumers(nodes)
    graph_outputs = {v.name for v in graph.output}
    constants = {t.name for t in graph.initializer} | {n.output[0] for n in nodes if n.op_type == "Constant"}
    standard = [node.domain in _STANDARD_DOMAINS for node in nodes]
    fp32: set[int] = set()

    # Rule 1: listed op types; BN that TensorRT folds into the convolution before it is exempt.
    for position, node in enumerate(nodes):
        if not standard[position] or node.op_type not in keep:
            continue
        if node.op_type == "BatchNormalization":
            source = producers.get(node.input[0])
            if (
                source is not None
                and source.op_type in _CONVOLUTIONS
                and len(consumers[node.input[0]]) == 1
                and node.input[0] not in graph_outputs
            ):
                continue
        fp32.add(position)

    # Rule 2a: squares that feed a reduction, and the reduction.
    for position, node in enumerate(nodes):
        squares = node.op_type == "Pow" or (node.op_type == "Mul" and node.input[0] == node.input[1])
        if not squares or not standard[position]:
            continue
        reductions = [c for c, _ in consumers[node.output[0]] if nodes[c].op_type in _SQUARE_REDUCTIONS]
        if reductions:
            fp32.add(position)
            fp32.update(reductions)

    # Rule 2b: the statistics chain after a float32 reduction.
    frontier = [nodes[p].output[0] for p in fp32 if nodes[p].op_type.startswith("Reduce")]
    while frontier:
        statistic = frontier.pop()
        for position, index in consumers[statistic]:
            consumer = nodes[position]
            if position in fp32 or not standard[position]:
                continue
            others = [name for i, name in enumerate(consumer.input) if i != index and name]
            if consumer.op_type in _UNARY_STATISTICS:
                continues = True
            elif consumer.op_type == "Div" and index == 1:
                continues = False  # (x - mean) / std: the normalized tensor, end of the chain
            elif consumer.op_type in _BINARY_STATISTICS and all(n in constants for n in others):
                continues = True
            else:
                continue
            fp32.add(position)
            if continues:
                frontier.append(consumer.output[0])

    # Rule 3: index arithmetic, in graph (topological) order.
    index_values: set[str] = set()
    for position, node in enumerate(nodes):
        inputs = [name for name in node.input if name and types.get(name) == _FLOAT]
        seed = node.op_type in ("Range", "ConstantOfShape") or (
            node.op_type == "Cast"
            and types.get(node.input[0]) not in _FLOAT_TYPES
            and types.get(node.output[0]) == _FLOAT
        )
        derived = any(n in index_values for n in inputs) and all(
            n in index_values or n in constants for n in inputs
        )
        if standard[position] and (seed or derived):
            fp32.add(position)
            index_values.update(name for name in node.output if types.get(name) == _FLOAT)

    fp32.update(_coordinate_positions(nodes, standard, types))
    return fp32


def _coordinate_positions(
    nodes: Sequence[onnx.NodeProto], standard: Sequence[bool], types: dict[str, int]
) -> set[int]:
    """Rule 4: the nodes that compute box coordinates (module docstring)."""
    producer = {name: position for position, node in enumerate(nodes) for name in node.output}
    consumers = _consumers(nodes)

    def computes_coordinates(position: int) -> bool:
        return standard[position] and nodes[position].op_type not in _FEATURE_OPS

    positions = {p for p, node in enumerate(nodes) if standard[p] and node.op_type in _COORDINATE_INPUTS}
    coordinates: set[str] = set()
    # Upstream of the sinks, back to the features the boxes are decoded from.
    pending = [
        nodes[p].input[i]
        for p in positions
        for i in _COORDINATE_INPUTS[nodes[p].op_type]
        if i < len(nodes[p].input)
    ]
    while pending:
        name = pending.pop()
        if name in coordinates or types.get(name) != _FLOAT:
            continue
        coordinates.add(name)
        source = producer.get(name)
        if source is None or not computes_coordinates(source) or nodes[source].op_type == "Constant":
            continue  # a graph input, a weight, a constant or a feature
        positions.add(source)
        pending.extend(n for n in nodes[source].input if n)
    # Downstream: whatever reads a coordinate computes one (until a feature op or a non-float).
    pending = list(coordinates)
    while pending:
        for position, _ in consumers[pending.pop()]:
            if position in positions or not computes_coordinates(position):
                continue
            positions.add(position)
            for name in nodes[position].output:
                if types.get(name) == _FLOAT and name not in coordinates:
                    coordinates.add(name)
                    pending.append(name)
    return positions


class _GraphRewriter:
    """Walks the nodes in order, deciding each float tensor's precision and inserting casts."""

    def __init__(
        self, graph: onnx.GraphProto, types: dict[str, int], opsets: dict[str, int], fp32_nodes: set[int]
    ) -> None:
        self.graph = graph
        self.original_types = types
        self.opsets = opsets
        self.fp32_nodes = fp32_nodes
        # Element type of every tensor name in the rewritten graph.
        self.types: dict[str, int] = dict(types)
        # Value name in the FP32 model -> {element type: tensor name holding it}.
        self.versions: dict[str, dict[int, str]] = {}
        self.graph_outputs = {v.name for v in graph.output}
        self.unique_name = UniqueNames(graph)
        self.originally_consumed = {name for node in graph.node for name in node.input}
        self.new_nodes: list[onnx.NodeProto] = []
        # float16 tensor name -> the float32 graph output cast from it.
        self.renamed_outputs: dict[str, str] = {}

    def rewrite(self) -> None:
        for value in (*self.graph.input, *self.graph.initializer):
            self.versions[value.name] = {self.types[value.name]: value.name}
        for position, node in enumerate(self.graph.node):
            self._rewrite_node(node, position in self.fp32_nodes)
        del self.graph.node[:]
        self.graph.node.extend(self.new_nodes)

    def _rewrite_node(self, node: onnx.NodeProto, in_fp32: bool) -> None:
        schema = self._schema(node)
        # Type parameter -> precision its float inputs were given.
        param_types: dict[str, int] = {}
        for index, name in enumerate(node.input):
            if not name or self.original_types.get(name) != _FLOAT:
                continue
            param = _formal_type_str(schema.inputs, index) if schema is not None else "T"
            wanted = _FLOAT if in_fp32 or not self._input_allows_fp16(node, schema, index) else _FLOAT16
            param_types[param] = wanted
            node.input[index] = self._version(name, wanted)

        if not in_fp32:
            self._retype_attributes(node)
        self.new_nodes.append(node)
        for index, name in enumerate(node.output):
            if not name or self.original_types.get(name) != _FLOAT:
                continue
            produced = self._output_type(node, schema, index, param_types, in_fp32)
            self._record_output(node, index, produced)

    def _output_type(
        self,
        node: onnx.NodeProto,
        schema: onnx.defs.OpSchema | None,
        index: int,
        param_types: dict[str, int],
        in_fp32: bool,
    ) -> int:
        if in_fp32:
            return _FLOAT
        if schema is None:
            return _FLOAT16
        if node.op_type in _TYPE_FROM_ATTRIBUTE_OPS:
            # Cast and ConstantOfShape were retyped to float16; Constant values stay float32 here
            # and are converted where a consumer casts them (folded into float16 copies later).
            return _FLOAT if node.op_type == "Constant" else _FLOAT16
        param = _formal_type_str(schema.outputs, index)
        return param_types.get(param, _FLOAT)

    def _record_output(self, node: onnx.NodeProto, index: int, produced: int) -> None:
        name = node.output[index]
        if produced == _FLOAT16 and name in self.graph_outputs:
            # The graph output keeps its name and float32 type: the node writes a float16
            # tensor under a new name and a Cast right after it produces the output.
            internal = self.unique_name(f"{name}_fp16")
            node.output[index] = internal
            self.types[internal] = _FLOAT16
            self.new_nodes.append(_cast(internal, name, _FLOAT))
            self.types[name] = _FLOAT
            self.versions[name] = {_FLOAT16: internal, _FLOAT: name}
            self.renamed_outputs[internal] = name
        else:
            self.types[name] = produced
            self.versions[name] = {produced: name}

    def _version(self, name: str, wanted: int) -> str:
        """The name of ``name``'s tensor in precision ``wanted``, adding a Cast the first time."""
        versions = self.versions[name]
        if wanted not in versions:
            source = next(iter(versions.values()))
            cast_name = self.unique_name(f"{name}_{'fp16' if wanted == _FLOAT16 else 'fp32'}")
            self.new_nodes.append(_cast(source, cast_name, wanted))
            self.types[cast_name] = wanted
            versions[wanted] = cast_name
        return versions[wanted]

    def _retype_attributes(self, node: onnx.NodeProto) -> None:
        if node.op_type == "Cast":
            to = _attribute(node, "to")
            if to.i == _FLOAT:
                to.i = _FLOAT16
        elif node.op_type == "ConstantOfShape":
            value = next((a for a in node.attribute if a.name == "value"), None)
            if value is None:  # the default fill value is a float32 zero
                node.attribute.append(helper.make_attribute("value", _fp16_tensor(np.zeros(1, np.float32))))
            elif value.t.data_type == _FLOAT:
                value.t.CopyFrom(_fp16_tensor(numpy_helper.to_array(value.t), value.t.name))

    def _schema(self, node: onnx.NodeProto) -> onnx.defs.OpSchema | None:
        domain = "" if node.domain in _STANDARD_DOMAINS else node.domain
        if domain not in self.opsets or not onnx.defs.has(node.op_type, domain):
            return None
        try:
            return onnx.defs.get_schema(node.op_type, self.opsets[domain], domain)
        except onnx.defs.SchemaError:  # registered only at a later version than the model's
            return None

    @staticmethod
    def _input_allows_fp16(node: onnx.NodeProto, schema: onnx.defs.OpSchema | None, index: int) -> bool:
        if schema is None:
            return True
        if node.domain in _STANDARD_DOMAINS and index in _FLOAT32_COORDINATE_INPUTS.get(node.op_type, ()):
            return False
        type_str = _formal_type_str(schema.inputs, index)
        constraint = next((c for c in schema.type_constraints if c.type_param_str == type_str), None)
        allowed = constraint.allowed_type_strs if constraint is not None else [type_str]
        return "tensor(float16)" in allowed


def _formal_type_str(formals: Sequence[onnx.defs.OpSchema.FormalParameter], index: int) -> str:
    # Past the end means the last, variadic parameter (Concat, Sum, ...).
    return formals[min(index, len(formals) - 1)].type_str


def _cast(source: str, output: str, to: int) -> onnx.NodeProto:
    return helper.make_node("Cast", [source], [output], name=f"{output}_cast", to=to)


def _fp16_tensor(values: np.ndarray, name: str = "") -> onnx.TensorProto:
    # Clamp finite values to the float16 range (mask fill values like finfo(float32).min) instead
    # of letting them become infinities; infinities and NaNs stay what they are.
    finite = np.isfinite(values)
    clamped = np.where(finite, np.clip(values, -_FLOAT16_MAX, _FLOAT16_MAX), values)
    return numpy_helper.from_array(clamped.astype(np.float16), name)


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The float32 value of a Constant node, or None if it holds something else."""
    attr = node.attribute[0]
    if attr.name == "value" and attr.t.data_type == _FLOAT:
        return numpy_helper.to_array(attr.t)
    if attr.name == "value_float":
        return np.asarray(attr.f, np.float32)
    if attr.name == "value_floats":
        return np.asarray(attr.floats, np.float32)
    return None


def _simplify_casts(graph: onnx.GraphProto, types: dict[str, int], originally_consumed: set[str]) -> None:
    """Merge float cast pairs, drop identity casts, fold weight casts, remove what is left unused."""
    graph_outputs = {v.name for v in graph.output}
    initializers = {t.name: t for t in graph.initializer}
    changed = True
    while changed:
        changed = False
        producers = {name: node for node in graph.node for name in node.output}
        replacements: dict[str, str] = {}
        folded: list[onnx.NodeProto] = []
        for node in graph.node:
            if node.op_type != "Cast":
                continue
            to = _attribute(node, "to").i
            source = producers.get(node.input[0])
            if to in _FLOAT_TYPES and source is not None and source.op_type == "Cast":
                if _attribute(source, "to").i in _FLOAT_TYPES:
                    node.input[0] = source.input[0]
                    changed = True
            if types.get(node.input[0]) == to and node.output[0] not in graph_outputs:
                replacements[node.output[0]] = node.input[0]
            elif to == _FLOAT16 and node.input[0] in initializers:
                weights = numpy_helper.to_array(initializers[node.input[0]])
                if weights.dtype == np.float32:
                    graph.initializer.append(_fp16_tensor(weights, node.output[0]))
                    initializers[node.output[0]] = graph.initializer[-1]
                    folded.append(node)
            elif to == _FLOAT16 and source is not None and source.op_type == "Constant":
                value = _constant_value(source)
                if value is not None:
                    replacement = helper.make_node(
                        "Constant", [], [node.output[0]], name=f"{node.output[0]}_constant"
                    )
                    replacement.attribute.append(helper.make_attribute("value", _fp16_tensor(value)))
                    node.CopyFrom(replacement)
                    changed = True
        for node in folded:
            graph.node.remove(node)
        for node in graph.node:
            for index, name in enumerate(node.input):
                if name in replacements:
                    node.input[index] = replacements[name]
        changed = changed or bool(replacements) or bool(folded)
        # Remove casts and constants nobody reads any more (including identity casts above).
        consumed = {name for node in graph.node for name in node.input} | graph_outputs
        unused = [
            node
            for node in graph.node
            if node.op_type in ("Cast", "Constant") and not any(out in consumed for out in node.output)
        ]
        for node in unused:
            graph.node.remove(node)
        changed = changed or bool(unused)
    consumed = {name for node in graph.node for name in node.input} | graph_outputs
    for tensor in list(graph.initializer):
        if tensor.name not in consumed and tensor.name in originally_consumed:
            graph.initializer.remove(tensor)


def _update_value_info(
    graph: onnx.GraphProto, types: dict[str, int], renamed_outputs: dict[str, str]
) -> None:
    """Retype the value_info annotations; shape inference adds the new tensors' entries."""
    present = {name for node in graph.node for name in node.output}
    kept = []
    for info in graph.value_info:
        if info.name not in present:
            continue
        if info.type.tensor_type.elem_type in _FLOAT_TYPES and info.name in types:
            info.type.tensor_type.elem_type = types[info.name]
        kept.append(info)
    # A float16 tensor renamed to feed a graph output keeps the output's shape annotation,
    # which shape inference may not be able to derive (custom ops).
    outputs = {v.name: v for v in graph.output}
    for internal, output in renamed_outputs.items():
        if internal in present:
            info = onnx.ValueInfoProto()
            info.CopyFrom(outputs[output])
            info.name = internal
            del info.metadata_props[:]
            info.type.tensor_type.elem_type = _FLOAT16
            kept.append(info)
    del graph.value_info[:]
    graph.value_info.extend(kept)


def _convert_function_bodies(model: onnx.ModelProto) -> None:
    """Make the model-local function bodies free of float32 constants and casts.

    Only standard-domain nodes run in float32, so every function is called in float16.
    """
    for function in model.functions:
        nodes = list(function.node)
        consumers = _consumers(nodes)
        for node in nodes:
            if node.op_type == "Cast" and _attribute(node, "to").i == _FLOAT:
                _attribute(node, "to").i = _FLOAT16
            elif node.op_type == "Constant":
                value = _constant_value(node)
                readers = consumers[node.output[0]]
                # A constant CastLike'd to an input already takes the caller's precision.
                if value is not None and not all(
                    nodes[c].op_type == "CastLike" and i == 0 for c, i in readers
                ):
                    del node.attribute[:]
                    node.attribute.append(helper.make_attribute("value", _fp16_tensor(value)))
        # Float annotations inside a type-generic body would pin it to float32.
        kept = [v for v in function.value_info if v.type.tensor_type.elem_type not in _FLOAT_TYPES]
        del function.value_info[:]
        function.value_info.extend(kept)
