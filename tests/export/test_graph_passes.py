"""Export graph passes: each rewrite keeps the numbers, leaves the pattern ONNX Runtime ran slowly
out of the exported graph, and only uses ops every supported TensorRT parser takes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from litevit.export.graph_passes import channels_last_argmax, decompose_softmax, fold_static_shapes
from litevit.export.onnx_export import (
    GraphSpec,
    SegmentationLabels,
    apply_ops_mode,
    for_onnxruntime,
    output_names,
    torch_to_onnx,
)
from litevit.models import create_model

RNG = np.random.default_rng(0)


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _model(nodes, inputs, outputs, initializers=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(model)


def _softmax_axes(model: onnx.ModelProto) -> list[tuple[int, int]]:
    """(axis, rank) of every Softmax, ranks from the exporter's or inferred value_info."""
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {
        v.name: len(v.type.tensor_type.shape.dim)
        for v in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)
    }
    found = []
    for node in model.graph.node:
        if node.op_type == "Softmax":
            axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
            rank = ranks[node.input[0]]
            found.append((axis % rank, rank))
    return found


@pytest.mark.parametrize("opset", [17, 18])
def test_softmax_over_a_middle_axis_becomes_reductions_in_place(opset):
    shape = [2, 3, 9, 5, 4]
    model = _model(
        [
            helper.make_node("Softmax", ["x"], ["middle"], axis=2),
            helper.make_node("Softmax", ["middle"], ["y"], axis=-1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        opset=opset,
    )
    rewritten = decompose_softmax(model)
    onnx.checker.check_model(rewritten, full_check=True)
    assert _softmax_axes(rewritten) == [(4, 5)]  # the last-axis one is kept as it is
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops[:5] == ["ReduceMax", "Sub", "Exp", "ReduceSum", "Div"]
    x = RNG.normal(0, 20, shape).astype(np.float32)  # large logits: the max is subtracted first
    np.testing.assert_allclose(_run(rewritten, {"x": x}), _run(model, {"x": x}), rtol=1e-5, atol=1e-7)


def test_elsa_export_has_no_softmax_over_a_middle_axis_and_keeps_parity():
    module = create_model("elsa_swin_tiny", smoke=True)
    spec = GraphSpec((64, 64), 1, False, False, 17, "function")
    graph = apply_ops_mode(torch_to_onnx(module, spec, output_names("classification", "labels")), "function")
    assert all(axis == rank - 1 for axis, rank in _softmax_axes(graph))
    assert "ReduceMax" in {n.op_type for n in graph.graph.node}
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(
        _run(for_onnxruntime(graph), {"input": x.numpy()}), expected, rtol=1e-4, atol=1e-5
    )


def _resize_argmax(sizes_from_shape: bool) -> onnx.ModelProto:
    """logits (1, 5, 6, 7) -> bilinear Resize to (1, 5, 24, 21) -> ArgMax over classes."""
    inits = [numpy_helper.from_array(np.array([24, 21], np.int64), "hw")]
    nodes = []
    if sizes_from_shape:  # sizes computed at run time, as a dynamic-H/W export writes them
        nodes += [
            helper.make_node("Shape", ["x"], ["nc"], start=0, end=2),
            helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        ]
    else:
        inits.append(numpy_helper.from_array(np.array([1, 5, 24, 21], np.int64), "sizes"))
    nodes += [
        helper.make_node(
            "Resize",
            ["x", "", "", "sizes"],
            ["scores"],
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        ),
        helper.make_node("ArgMax", ["scores"], ["labels"], axis=1, keepdims=0),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 6, 7])],
        [helper.make_tensor_value_info("labels", TensorProto.INT64, [1, 24, 21])],
        inits,
    )


@pytest.mark.parametrize("sizes_from_shape", [False, True])
def test_label_tail_resizes_and_takes_the_argmax_channels_last(sizes_from_shape):
    model = _resize_argmax(sizes_from_shape)
    rewritten = channels_last_argmax(model)
    onnx.checker.check_model(rewritten, full_check=True)
    nodes = {n.op_type: n for n in rewritten.graph.node}
    assert helper.get_attribute_value(next(a for a in nodes["ArgMax"].attribute if a.name == "axis")) == 3
    assert list(helper.get_attribute_value(nodes["Transpose"].attribute[0])) == [0, 2, 3, 1]
    x = RNG.normal(0, 1, (1, 5, 6, 7)).astype(np.float32)
    np.testing.assert_array_equal(_run(rewritten, {"x": x}), _run(model, {"x": x}))


def test_segmentation_label_export_ends_channels_last_and_agrees_with_torch():
    module = SegmentationLabels(create_model("lvt_seg", smoke=True))
    spec = GraphSpec((64, 96), 1, False, True, 17, "function")
    graph = apply_ops_mode(torch_to_onnx(module, spec, ["labels"]), "function")
    argmax = next(n for n in graph.graph.node if n.op_type == "ArgMax")
    assert helper.get_attribute_value(next(a for a in argmax.attribute if a.name == "axis")) == 3
    x = torch.randn(1, 3, 96, 64, generator=torch.Generator().manual_seed(1))  # another size: dynamic H, W
    with torch.no_grad():
        expected = module(x).numpy()
    labels = _run(for_onnxruntime(graph), {"input": x.numpy()})
    assert labels.shape == expected.shape and np.mean(labels == expected) > 0.999


@pytest.mark.parametrize("name", ["lvt", "elsa_swin_tiny"])
def test_static_inline_graphs_compute_no_shapes(name):
    module = create_model(name, smoke=True)
    static = apply_ops_mode(
        torch_to_onnx(module, GraphSpec((64, 64), 1, False, False, 17, "inline"), ["logits"]), "inline"
    )
    assert "Shape" not in {n.op_type for n in static.graph.node}
    onnx.checker.check_model(static, full_check=True)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(_run(static, {"input": x.numpy()}), expected, rtol=1e-4, atol=1e-5)
    # A dynamic batch still needs its sizes computed at run time.
    dynamic = apply_ops_mode(
        torch_to_onnx(module, GraphSpec((64, 64), 2, True, False, 17, "inline"), ["logits"]), "inline"
    )
    assert "Shape" in {n.op_type for n in dynamic.graph.node}
    np.testing.assert_allclose(
        _run(dynamic, {"input": np.repeat(x.numpy(), 3, axis=0)}),
        np.repeat(expected, 3, axis=0),
        rtol=1e-4,
        atol=1e-5,
    )


def test_fold_static_shapes_leaves_large_constants_computed():
    """Shape logic folds; an activation-sized tensor fed only by constants stays a computation."""
    model = _model(
        [
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Reshape", ["x", "s"], ["same"]),
            helper.make_node("ConstantOfShape", ["big_shape"], ["big"]),
            helper.make_node("Add", ["same", "big"], ["y"]),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 128])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 128])],
        [numpy_helper.from_array(np.array([64, 128], np.int64), "big_shape")],
    )
    folded = fold_static_shapes(model)
    assert [n.op_type for n in folded.graph.node] == ["Reshape", "ConstantOfShape", "Add"]
    x = RNG.normal(0, 1, (64, 128)).astype(np.float32)
    np.testing.assert_array_equal(_run(folded, {"x": x}), x)


@pytest.mark.parametrize("name", ["elsa_swin_tiny", "segvit_vit_b_ade"])
def test_onnxruntime_fuses_the_exported_graph(name, tmp_path):
    """After ONNX Runtime's CPU optimisations (ORT_ENABLE_ALL) the exported graph keeps no GELU
    decomposition (Erf), no shape computation, and no softmax ONNX Runtime must transpose for."""
    module = create_model(name, smoke=True)
    size = (64, 64) if name.startswith("elsa") else (32, 32)
    spec = GraphSpec(size, 1, False, False, 17, "function")
    graph = apply_ops_mode(torch_to_onnx(module, spec, ["logits"]), "function")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(
        for_onnxruntime(graph).SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    optimized = onnx.load(str(tmp_path / "optimized.onnx"))
    ops = {n.op_type for n in optimized.graph.node}
    assert "Gelu" in ops and not {"Erf", "Shape", "Pow", "Sqrt"} & ops
    assert ops & {"LayerNormalization", "SkipLayerNormalization"}
    assert all(axis == rank - 1 for axis, rank in _softmax_axes(optimized))
