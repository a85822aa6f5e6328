"""The Q/DQ pass: where pairs go, the scheme TensorRT parses (symmetric, per-channel weights), and
that the result runs on ONNX Runtime close to FP32. A small hand-built graph makes every case
explicit; a smoke LVT export checks the custom ops are left in FP32 with their function bodies.
The ONNX Runtime form is checked by what ONNX Runtime's optimiser makes of it."""

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from litevit.calibration.qdq import (
    activation_tensors,
    fold_weight_transposes,
    quant_sites,
    quantization_metadata,
    quantize,
    quantize_for_onnxruntime,
)

RNG = np.random.default_rng(0)
W_CONV = RNG.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
W_CONV[2] *= 10  # one channel much larger: per-channel scales must differ
W_LINEAR = RNG.normal(0, 0.3, (5, 4)).astype(np.float32)  # stored (out, in), used through a Transpose
W_HEAD = RNG.normal(0, 0.3, (10, 64)).astype(np.float32)


def _scoped(node, scopes):
    node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=repr(scopes))
    return node


def _graph():
    nodes = [
        _scoped(
            helper.make_node("Conv", ["x", "w_conv"], ["y"], name="conv", pads=[1, 1, 1, 1]),
            ["", "stem", "stem.conv", "conv2d"],
        ),
        helper.make_node("Reshape", ["y", "shape"], ["flat"], name="reshape"),
        helper.make_node("Transpose", ["flat"], ["tokens"], name="to_tokens", perm=[0, 2, 1]),
        helper.make_node("Transpose", ["w_linear"], ["w_linear_t"], name="weight_t", perm=[1, 0]),
        _scoped(
            helper.make_node("MatMul", ["tokens", "w_linear_t"], ["m"], name="linear"),
            ["", "blk", "blk.attn", "linear"],
        ),
        helper.make_node("Transpose", ["m"], ["m_t"], name="m_t", perm=[0, 2, 1]),
        _scoped(
            helper.make_node("MatMul", ["m", "m_t"], ["scores"], name="qk"), ["", "blk", "blk.attn", "matmul"]
        ),
        helper.make_node("ReduceMean", ["scores"], ["pooled"], name="pool", axes=[2], keepdims=0),
        _scoped(
            helper.make_node("Gemm", ["pooled", "w_head", "b_head"], ["logits"], name="head", transB=1),
            ["", "head", "linear_1"],
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [
            numpy_helper.from_array(W_CONV, "w_conv"),
            numpy_helper.from_array(np.array([1, 4, 64], np.int64), "shape"),
            numpy_helper.from_array(W_LINEAR, "w_linear"),
            numpy_helper.from_array(W_HEAD, "w_head"),
            numpy_helper.from_array(np.zeros(10, np.float32), "b_head"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options).run(None, {model.graph.input[0].name: x})[
        0
    ]


def _amax(model, sites, x):
    """Exact |x| maxima of every activation the sites read (minmax calibration on one input)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = activation_tensors(sites)
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options)
    values = dict(
        zip(
            [o.name for o in session.get_outputs()],
            session.run(None, {model.graph.input[0].name: x}),
            strict=True,
        )
    )
    return {name: float(np.abs(values[name]).max()) for name in names}


@pytest.fixture(scope="module")
def toy():
    model = fold_weight_transposes(_graph())
    x = RNG.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    sites = quant_sites(model)
    return model, sites, x, _amax(model, sites, x)


def test_weight_transposes_fold_into_initializers_without_changing_results():
    original = _graph()
    folded = fold_weight_transposes(original)
    assert "weight_t" not in {n.name for n in folded.graph.node}
    assert "w_linear" not in {i.name for i in folded.graph.initializer}  # only the transposed copy is left
    x = RNG.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(folded, x), _run(original, x), rtol=1e-6, atol=1e-6)


def test_sites_are_the_weighted_ops_with_layer_names_and_output_channel_axes(toy):
    _, sites, _, _ = toy
    by_node = {s.node: s for s in sites}
    assert list(by_node) == ["conv", "linear", "qk", "head"]
    assert by_node["conv"].layer == "stem.conv" and by_node["conv"].weight_axis == 0
    # Two ops in one module are told apart by their op name; the module groups them.
    assert by_node["linear"].layer == "blk.attn:linear" and by_node["qk"].module == "blk.attn"
    assert by_node["linear"].weight_axis == 1  # MatMul (K, N): N
    assert by_node["qk"].weight is None and by_node["qk"].activations == ("m", "m_t")
    assert by_node["head"].weight == "w_head" and by_node["head"].weight_axis == 0  # Gemm transB=1


def test_qdq_goes_only_on_weighted_op_inputs_with_symmetric_int8(toy):
    model, sites, x, amax = toy
    quantized = quantize(model, sites, amax)
    nodes = list(quantized.graph.node)
    producers = {out: n for n in nodes for out in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    for node in nodes:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zero_point = inits[node.input[2]]
            assert zero_point.dtype == np.int8 and not zero_point.any()  # TensorRT: symmetric only
    for node in nodes:
        feeding = [producers[i].op_type for i in node.input if i in producers]
        if node.op_type in ("Conv", "MatMul", "Gemm"):
            assert feeding and all(t == "DequantizeLinear" for t in feeding), node.name
        elif node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            assert "DequantizeLinear" not in feeding, f"{node.name} reads a DQ output"
    # Activation scales are amax / 127, per tensor.
    q_conv_input = next(n for n in nodes if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    assert float(inits[q_conv_input.input[1]]) == pytest.approx(amax["x"] / 127)
    # Weights: INT8 initializers with one scale per output channel = max |w| / 127.
    dq_conv_weight = next(
        n for n in nodes if n.op_type == "DequantizeLinear" and n.output[0].startswith("w_conv")
    )
    scales = inits[dq_conv_weight.input[1]]
    np.testing.assert_allclose(scales, np.abs(W_CONV).reshape(4, -1).max(axis=1) / 127, rtol=1e-6)
    assert inits[dq_conv_weight.input[0]].dtype == np.int8
    assert helper.get_attribute_value(dq_conv_weight.attribute[0]) == 0
    assert "w_conv" not in inits  # the FP32 copy is not carried along
    onnx.checker.check_model(quantized, full_check=True)


def test_quantized_graph_runs_close_to_fp32(toy):
    model, sites, x, amax = toy
    reference, int8 = _run(model, x), _run(quantize(model, sites, amax), x)
    cosine = float((reference * int8).sum() / np.linalg.norm(reference) / np.linalg.norm(int8))
    assert cosine > 0.999
    assert not np.array_equal(reference, int8)  # it really is quantized


def test_keep_fp32_by_module_or_layer_and_zero_ranges_stay_unquantized(toy):
    model, sites, x, amax = toy
    kept = quantize(model, sites, amax, keep_fp32={"blk.attn"})
    consumers = {n.name: n for n in kept.graph.node}
    assert list(consumers["linear"].input) == ["tokens", "w_linear_t"]
    assert list(consumers["qk"].input) == ["m", "m_t"]
    assert consumers["conv"].input[0].endswith("_dequantized")
    assert quantization_metadata(kept)["fp32_layers"] == ["blk.attn:linear", "blk.attn:matmul"]
    one_layer = quantize(model, sites, amax, keep_fp32={"blk.attn:matmul"})
    assert list({n.name: n for n in one_layer.graph.node}["qk"].input) == ["m", "m_t"]
    zero_input = quantize(model, sites, {**amax, "x": 0.0})
    assert {n.name: n for n in zero_input.graph.node}["conv"].input[0] == "x"


def test_custom_ops_keep_fp32_inputs_and_function_bodies():
    from litevit.export.onnx_export import GraphSpec, apply_ops_mode, custom_nodes, torch_to_onnx
    from litevit.models import create_model

    module = create_model("lvt", smoke=True)
    exported = apply_ops_mode(
        torch_to_onnx(module, GraphSpec((64, 64), 1, False, False, 17, "function"), ["logits"]), "function"
    )
    model = fold_weight_transposes(exported)
    x = RNG.normal(0, 1, (1, 3, 64, 64)).astype(np.float32)
    sites = quant_sites(model)
    quantized = quantize(model, sites, _amax(model, sites, x))
    producers = {out: n.op_type for n in quantized.graph.node for out in n.output}
    custom = custom_nodes(quantized)
    assert {n.op_type for n in custom} >= {"CSA", "RASA"}
    for node in custom:
        assert all(producers.get(i) != "DequantizeLinear" for i in node.input), node.op_type
    assert {(f.domain, f.name) for f in quantized.functions} == {
        (f.domain, f.name) for f in exported.functions
    }
    reference, int8 = _run(model, x), _run(quantized, x)
    assert float((reference * int8).sum() / np.linalg.norm(reference) / np.linalg.norm(int8)) > 0.99


def _ort_graph():
    """Conv + bias -> Relu -> grouped Conv -> tokens -> Linear (MatMul + Add) -> attention MatMul
    -> pooling -> Gemm head: every weighted-op shape the ONNX Runtime form handles."""
    w1 = RNG.normal(0, 0.3, (8, 4, 3, 3)).astype(np.float32)
    w_grouped = RNG.normal(0, 0.3, (8, 2, 3, 3)).astype(np.float32)
    w_linear = RNG.normal(0, 0.3, (8, 16)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
        helper.make_node("Conv", ["r1", "wg"], ["c2"], name="grouped", pads=[1, 1, 1, 1], group=4),
        helper.make_node("Reshape", ["c2", "shape"], ["flat"], name="reshape"),
        helper.make_node("Transpose", ["flat"], ["tokens"], name="to_tokens", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["tokens", "wl"], ["m"], name="linear"),
        helper.make_node("Add", ["m", "bl"], ["mb"], name="linear_bias"),
        helper.make_node("Transpose", ["mb"], ["mb_t"], name="mb_t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["mb", "mb_t"], ["scores"], name="qk"),
        helper.make_node("ReduceMean", ["scores"], ["pooled"], name="pool", axes=[2], keepdims=0),
        helper.make_node("Gemm", ["pooled", "w_head", "b_head"], ["logits"], name="head", transB=1),
    ]
    inits = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(RNG.normal(0, 0.5, 8).astype(np.float32), "b1"),
        numpy_helper.from_array(w_grouped, "wg"),
        numpy_helper.from_array(np.array([1, 8, 64], np.int64), "shape"),
        numpy_helper.from_array(w_linear, "wl"),
        numpy_helper.from_array(RNG.normal(0, 0.5, 16).astype(np.float32), "bl"),
        numpy_helper.from_array(RNG.normal(0, 0.3, (10, 64)).astype(np.float32), "w_head"),
        numpy_helper.from_array(RNG.normal(0, 0.5, 10).astype(np.float32), "b_head"),
    ]
    graph = helper.make_graph(
        nodes,
        "ort_toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _optimized_op_types(model, tmp_path):
    """Op types after ONNX Runtime's CPU graph optimisations (ORT_ENABLE_ALL)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return Counter(n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)


def test_onnxruntime_form_is_fused_into_integer_kernels(tmp_path):
    model = _ort_graph()
    x = RNG.normal(0, 1, (1, 4, 8, 8)).astype(np.float32)
    sites = quant_sites(model)
    amax = _amax(model, sites, x)
    assert {"c1", "m", "scores"} <= set(amax)  # outputs are calibrated as well as inputs
    ops = _optimized_op_types(quantize_for_onnxruntime(model, sites, amax), tmp_path)
    assert ops["QLinearConv"] == 1 and ops["Conv"] == 1  # the grouped convolution stays FP32
    assert ops["QLinearMatMul"] == 2  # the Linear and the attention product
    assert ops["QGemm"] == 1  # the head, float logits out
    assert ops["MatMul"] == ops["Gemm"] == 0


def test_onnxruntime_form_scheme_and_accuracy(toy):
    model = _ort_graph()
    x = RNG.normal(0, 1, (1, 4, 8, 8)).astype(np.float32)
    sites = quant_sites(model)
    amax = _amax(model, sites, x)
    ort_form, trt_form = quantize_for_onnxruntime(model, sites, amax), quantize(model, sites, amax)
    onnx.checker.check_model(ort_form, full_check=True)
    inits = {i.name: numpy_helper.to_array(i) for i in ort_form.graph.initializer}
    trt_inits = {i.name: numpy_helper.to_array(i) for i in trt_form.graph.initializer}
    nodes = {n.output[0]: n for n in ort_form.graph.node}
    # Activations: UINT8 around zero point 128 with the TensorRT form's scale; weights: the same INT8s.
    q_x = next(n for n in ort_form.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    assert inits[q_x.input[2]].dtype == np.uint8 and int(inits[q_x.input[2]]) == 128
    assert float(inits[q_x.input[1]]) == pytest.approx(amax["x"] / 127)
    np.testing.assert_array_equal(inits["w1_quantized"], trt_inits["w1_quantized"])
    # The conv bias: INT32 at scale s_x * s_w per output channel.
    conv = next(n for n in ort_form.graph.node if n.name == "conv")
    bias_dq = nodes[conv.input[2]]
    bias, bias_scale = inits[bias_dq.input[0]], inits[bias_dq.input[1]]
    assert bias.dtype == np.int32
    np.testing.assert_allclose(bias_scale, amax["x"] / 127 * inits["w1_scale"], rtol=1e-6)
    # The graph output (logits) is not quantized.
    assert nodes["logits"].op_type == "Gemm"
    reference, int8 = _run(model, x), _run(ort_form, x)
    cosine = float((reference * int8).sum() / np.linalg.norm(reference) / np.linalg.norm(int8))
    assert cosine > 0.999 and not np.array_equal(reference, int8)
