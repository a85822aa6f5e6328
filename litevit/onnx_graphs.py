"""Torch-free helpers on exported ONNX graphs, shared by the parity gate, calibration and the
accuracy diagnosis."""

from __future__ import annotations

import onnx

from litevit.errors import LitevitError

SCORES_OUTPUT = "litevit_parity_scores"  # check-only output: the class scores the ArgMax reads
# ONNX domains ONNX Runtime and TensorRT implement themselves; a node of any other domain (litevit's
# CSA, RASA, GhostHead) needs a model-local function body, a registered kernel or a plugin.
BUILTIN_ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


def custom_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The main graph's nodes of a custom domain."""
    return [node for node in model.graph.node if node.domain not in BUILTIN_ONNX_DOMAINS]


def with_scores_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """A check-only copy of a label-map graph that also returns the scores its ArgMax reads, as
    (B, classes, H, W) whether the graph takes the ArgMax over axis 1 or, channels-last, over 3."""
    argmax = [n for n in model.graph.node if n.op_type == "ArgMax"]
    if len(argmax) != 1:
        raise LitevitError("a label-map graph must end in exactly one ArgMax.")
    scores = argmax[0].input[0]
    inferred = onnx.shape_inference.infer_shapes(model)
    known = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    axis = next((a.i for a in argmax[0].attribute if a.name == "axis"), 0)
    if axis == 3:  # the export's channels-last label tail: report the scores as (B, classes, H, W)
        to_nchw = onnx.helper.make_node("Transpose", [scores], [SCORES_OUTPUT], perm=[0, 3, 1, 2])
        copy.graph.node.append(to_nchw)
    else:
        copy.graph.node.append(onnx.helper.make_node("Identity", [scores], [SCORES_OUTPUT]))
    elem_type = known.get(scores, onnx.TensorProto.FLOAT)
    copy.graph.output.append(onnx.helper.make_tensor_value_info(SCORES_OUTPUT, elem_type, None))
    return copy


class UniqueNames:
    """Fresh tensor and node names for graph rewrites: ``names("x_fp16")`` returns that name, or
    ``x_fp16_2``, ``x_fp16_3``... when the graph (or an earlier call) already uses it."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.taken = {name for node in graph.node for name in (*node.input, *node.output, node.name)}
        self.taken |= {v.name for v in (*graph.input, *graph.output)} | {t.name for t in graph.initializer}

    def __call__(self, base: str) -> str:
        name, suffix = base, 1
        while name in self.taken:
            suffix += 1
            name = f"{base}_{suffix}"
        self.taken.add(name)
        return name


def value_types_and_ranks(
    graph: onnx.GraphProto, *, subgraphs: bool = False
) -> tuple[dict[str, int], dict[str, int]]:
    """Element type and rank of every value of ``graph`` whose type is known (inputs, outputs,
    value_info, initializers); with ``subgraphs``, those of If/Loop/Scan bodies too."""
    types: dict[str, int] = {}
    ranks: dict[str, int] = {}

    def collect(current: onnx.GraphProto) -> None:
        for value in (*current.input, *current.output, *current.value_info):
            tensor = value.type.tensor_type
            if value.type.HasField("tensor_type") and tensor.elem_type:
                types[value.name] = tensor.elem_type
                if tensor.HasField("shape"):
                    ranks[value.name] = len(tensor.shape.dim)
        for init in current.initializer:
            types[init.name] = init.data_type
            ranks[init.name] = len(init.dims)
        if subgraphs:
            for node in current.node:
                for attribute in node.attribute:
                    for body in attribute_subgraphs(attribute):
                        collect(body)

    collect(graph)
    return types, ranks


def attribute_subgraphs(attribute: onnx.AttributeProto) -> list[onnx.GraphProto]:
    """The graphs a node attribute holds (If branches, Loop/Scan bodies); none for other kinds."""
    if attribute.type == onnx.AttributeProto.GRAPH:
        return [attribute.g]
    if attribute.type == onnx.AttributeProto.GRAPHS:
        return list(attribute.graphs)
    return []
