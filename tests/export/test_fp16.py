"""export/fp16.py: the strongly typed FP16 graph, checked with the ONNX checker and ONNX Runtime.

Tolerance against the FP32 model on random inputs: max |fp16 - fp32| <= 1e-2 * max |fp32| and
cosine similarity >= 0.999 for every output.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from litevit.export.fp16 import DEFAULT_KEEP_FP32, FP16_METADATA_KEY, convert_to_fp16, fp16_report

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
ops = pytest.importorskip("litevit.ops")

RELATIVE_MAX_ERROR = 1e-2
MIN_COSINE = 0.999


class _Block(torch.nn.Module):
    """Conv + BN + GELU, LayerNorm + softmax attention, BN over tokens, a hand-written RMSNorm,
    bilinear upsampling and global average pooling: the op mix of litevit's models."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, channels, 3, padding=1)
        self.conv_bn = torch.nn.BatchNorm2d(channels)
        self.norm = torch.nn.LayerNorm(channels)
        self.qkv = torch.nn.Linear(channels, 3 * channels)
        self.proj = torch.nn.Linear(channels, channels)
        self.token_bn = torch.nn.BatchNorm1d(channels)
        self.rms_weight = torch.nn.Parameter(torch.rand(channels) + 0.5)
        self.scale = channels**-0.5
        for bn in (self.conv_bn, self.token_bn):  # non-trivial running statistics
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.nn.functional.gelu(self.conv_bn(self.conv(x)))
        batch, channels, height, width = y.shape
        tokens = self.norm(y.flatten(2).transpose(1, 2))
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        attn = (q @ k.transpose(-1, -2) * self.scale).softmax(dim=-1)
        tokens = self.proj(attn @ v)
        tokens = self.token_bn(tokens.transpose(1, 2)).transpose(1, 2)
        rms = torch.rsqrt(tokens.pow(2).mean(dim=-1, keepdim=True) + 1e-6)
        tokens = tokens * rms * self.rms_weight
        y = tokens.transpose(1, 2).reshape(batch, channels, height, width)
        y = torch.nn.functional.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        return y.mean(dim=(2, 3)), y


@pytest.fixture(scope="module")
def torch_model() -> onnx.ModelProto:
    torch.manual_seed(0)
    example = torch.randn(2, 3, 8, 8)
    program = torch.onnx.export(
        _Block().eval(),
        (example,),
        dynamo=True,
        opset_version=18,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    return program.model_proto


@pytest.fixture(scope="module")
def torch_model_fp16(torch_model: onnx.ModelProto) -> onnx.ModelProto:
    return convert_to_fp16(torch_model)


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _assert_close(reference: list[np.ndarray], result: list[np.ndarray]) -> None:
    for ref, out in zip(reference, result, strict=True):
        assert out.dtype == np.float32 and out.shape == ref.shape
        max_error = float(np.abs(out - ref).max())
        cosine = float(np.dot(ref.ravel(), out.ravel()) / (np.linalg.norm(ref) * np.linalg.norm(out)))
        assert max_error <= RELATIVE_MAX_ERROR * float(np.abs(ref).max()), max_error
        assert cosine >= MIN_COSINE, cosine


def _types(model: onnx.ModelProto) -> dict[str, int]:
    graph = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output, *graph.value_info)}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {name: node for node in model.graph.node for name in node.output}


def _io_is_float32(model: onnx.ModelProto) -> bool:
    return all(
        v.type.tensor_type.elem_type == TensorProto.FLOAT for v in (*model.graph.input, *model.graph.output)
    )


def test_torch_model_is_strongly_typed_fp16(torch_model: onnx.ModelProto, torch_model_fp16: onnx.ModelProto):
    onnx.checker.check_model(torch_model_fp16, full_check=True)
    assert _io_is_float32(torch_model_fp16)
    types = _types(torch_model_fp16)
    for op_type in ("Softmax", "LayerNormalization", "BatchNormalization", "ReduceMean"):
        nodes = [n for n in torch_model_fp16.graph.node if n.op_type == op_type]
        assert nodes, op_type
        for node in nodes:
            float_inputs = [
                types[n] for n in node.input if types.get(n) in (TensorProto.FLOAT, TensorProto.FLOAT16)
            ]
            assert float_inputs and set(float_inputs) == {TensorProto.FLOAT}, node
    # Every float initializer is float16 except the documented exceptions: weights read by nodes
    # that compute in float32 (LayerNorm, the token BN, the RMSNorm's exponent and epsilon) and
    # Resize's scales (float32 in the ONNX schema).
    fp32_initializers = {
        t.name for t in torch_model_fp16.graph.initializer if t.data_type == TensorProto.FLOAT
    }
    assert fp32_initializers
    for node in torch_model_fp16.graph.node:
        for index, name in enumerate(node.input):
            if name in fp32_initializers:
                assert types[node.output[0]] == TensorProto.FLOAT or (node.op_type, index) == ("Resize", 2), (
                    node
                )
    assert any(t.data_type == TensorProto.FLOAT16 for t in torch_model_fp16.graph.initializer)
    # The hand-written RMSNorm: x² and its mean, then + eps, sqrt and reciprocal in float32.
    fp32_outputs = {name for name, dtype in types.items() if dtype == TensorProto.FLOAT}
    producers = _producers(torch_model_fp16)
    for op_type in ("Pow", "Sqrt", "Reciprocal"):
        nodes = [n for n in torch_model_fp16.graph.node if n.op_type == op_type]
        assert nodes and all(n.output[0] in fp32_outputs for n in nodes), op_type
    # No float cast feeds another float cast.
    for node in torch_model_fp16.graph.node:
        if node.op_type == "Cast":
            source = producers.get(node.input[0])
            assert source is None or source.op_type != "Cast", node


def test_torch_model_matches_fp32_in_onnxruntime(
    torch_model: onnx.ModelProto, torch_model_fp16: onnx.ModelProto
):
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3, 8, 8), dtype=np.float32)}
    _assert_close(_run(torch_model, feeds), _run(torch_model_fp16, feeds))


def test_dynamic_batch_survives(torch_model_fp16: onnx.ModelProto):
    for value in (*torch_model_fp16.graph.input, *torch_model_fp16.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    outputs = _run(torch_model_fp16, {"x": np.ones((5, 3, 8, 8), np.float32)})
    assert [o.shape[0] for o in outputs] == [5, 5]


def test_metadata_and_report(torch_model_fp16: onnx.ModelProto):
    entry = next(p for p in torch_model_fp16.metadata_props if p.key == FP16_METADATA_KEY)
    metadata = json.loads(entry.value)
    assert metadata["precision"] == "fp16" and metadata["io_dtype"] == "float32"
    assert metadata["keep_fp32_op_types"] == sorted(DEFAULT_KEEP_FP32)
    assert {"Softmax", "LayerNormalization", "ReduceMean"} <= metadata["fp32_nodes"].keys()
    report = fp16_report(torch_model_fp16)
    assert report["float16_initializers"] > report["float32_initializers"] > 0
    assert report["fp32_nodes"]["Softmax"] == 1


def test_already_fp16_model_is_returned_unchanged(torch_model_fp16: onnx.ModelProto):
    again = convert_to_fp16(torch_model_fp16)
    assert again.SerializeToString() == torch_model_fp16.SerializeToString()
    with pytest.raises(ValueError, match="already the FP16 form"):
        convert_to_fp16(torch_model_fp16, keep_fp32_op_types={"Softmax"})


def test_foreign_fp16_model_is_rejected():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    with pytest.raises(ValueError, match="convert the FP32 model"):
        convert_to_fp16(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))


def _csa_model(function: onnx.FunctionProto) -> onnx.ModelProto:
    """Softmax -> litevit::CSA -> Conv: a custom node between standard ops, dynamic batch."""
    heads, taps, channels, windows = 2, 9, 4, 3
    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array(rng.standard_normal((channels, channels, 1, 1), dtype=np.float32), "w")
    nodes = [
        helper.make_node("Softmax", ["logits"], ["attn"], axis=1),
        helper.make_node(
            "CSA",
            ["attn", "values"],
            ["folded"],
            domain=ops.DOMAIN,
            heads=heads,
            kernel_size=3,
            stride=2,
            padding=1,
            channels=channels,
            plugin_version="1",
            plugin_namespace=ops.DOMAIN,
        ),
        helper.make_node("Conv", ["folded", "w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "csa",
        [
            helper.make_tensor_value_info(
                "logits", TensorProto.FLOAT, ["batch", heads * taps * taps, windows, windows]
            ),
            helper.make_tensor_value_info(
                "values", TensorProto.FLOAT, ["batch", taps * channels, windows, windows]
            ),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", channels, 6, 6])],
        [weight],
        value_info=[helper.make_tensor_value_info("folded", TensorProto.FLOAT, ["batch", channels, 6, 6])],
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(ops.DOMAIN, ops.OP_VERSION)],
        functions=[function],
    )


def _csa_feeds(batch: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    return {
        "logits": rng.standard_normal((batch, 2 * 81, 3, 3), dtype=np.float32),
        "values": rng.standard_normal((batch, 36, 3, 3), dtype=np.float32),
    }


def test_custom_node_with_type_generic_function_runs_in_fp16():
    function = ops.OPS["CSA"].onnx_function({"kernel_size": 3, "stride": 2, "padding": 1}, 18)
    model = _csa_model(function)
    converted = convert_to_fp16(model)
    onnx.checker.check_model(converted, full_check=True)
    assert _io_is_float32(converted)
    types = _types(converted)
    csa = next(n for n in converted.graph.node if n.op_type == "CSA")
    assert [types[name] for name in (*csa.input, *csa.output)] == [TensorProto.FLOAT16] * 3
    assert converted.functions[0].SerializeToString() == function.SerializeToString()
    _assert_close(_run(model, _csa_feeds()), _run(converted, _csa_feeds()))
    assert _run(converted, _csa_feeds(batch=3))[0].shape == (3, 4, 6, 6)


def test_float_constants_in_a_function_body_become_fp16():
    """A body that adds a float32 constant without CastLike would not type-check in float16."""
    one = numpy_helper.from_array(np.asarray(1.0, np.float32))
    half = numpy_helper.from_array(np.asarray(0.5, np.float32))
    function = helper.make_function(
        "custom",
        "ShiftScale",
        ["x"],
        ["y"],
        [
            helper.make_node("Constant", [], ["one"], value=one),
            helper.make_node("Constant", [], ["half"], value=half),
            helper.make_node("CastLike", ["half", "x"], ["half_like"]),
            helper.make_node("Add", ["x", "one"], ["shifted"]),
            helper.make_node("Mul", ["shifted", "half_like"], ["y"]),
        ],
        [helper.make_opsetid("", 18)],
    )
    graph = helper.make_graph(
        [helper.make_node("ShiftScale", ["x"], ["y"], domain="custom")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("custom", 1)],
        functions=[function],
    )
    converted = convert_to_fp16(model)
    onnx.checker.check_model(converted, full_check=True)
    constants = {
        n.output[0]: n.attribute[0].t.data_type
        for n in converted.functions[0].node
        if n.op_type == "Constant"
    }
    assert constants == {"one": TensorProto.FLOAT16, "half": TensorProto.FLOAT}  # "half" is CastLike'd
    feeds = {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}
    np.testing.assert_array_equal(_run(converted, feeds)[0], (feeds["x"] + 1) * 0.5)


def test_index_arithmetic_and_weights_out_of_fp16_range():
    """Positions from Range stay float32 (float16 is exact only up to 2048); a float32 mask value
    beyond the float16 range is clamped, not turned into -inf."""
    nodes = [
        helper.make_node("Range", ["start", "limit", "delta"], ["positions"]),
        helper.make_node("Mul", ["positions", "step"], ["scaled"]),
        helper.make_node("Add", ["x", "scaled"], ["shifted"]),
        helper.make_node("Add", ["shifted", "mask"], ["y"]),
    ]
    scalars = {"start": 0.0, "limit": 4.0, "delta": 1.0, "step": 1000.0}
    initializers = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in scalars.items()]
    mask = np.asarray([0.0, 0.0, 0.0, np.finfo(np.float32).min], np.float32)
    initializers.append(numpy_helper.from_array(mask, "mask"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        initializers,
    )
    converted = convert_to_fp16(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    onnx.checker.check_model(converted, full_check=True)
    types = _types(converted)
    assert types["positions"] == types["scaled"] == TensorProto.FLOAT
    assert types["shifted"] == TensorProto.FLOAT16
    y = _run(converted, {"x": np.full((2, 4), 0.5, np.float32)})[0]
    # Within float16 resolution (ONNX Runtime may compute the float16 Adds in either precision).
    np.testing.assert_allclose(y, [[0.5, 1000.5, 2000.5, 0.5 + 3000.0 - 65504.0]] * 2, rtol=1e-3)


def test_resize_roi_and_scales_stay_float32():
    roi = numpy_helper.from_array(np.asarray([0, 0, 0, 0, 1, 1, 1, 1], np.float32), "roi")
    scales = numpy_helper.from_array(np.asarray([1, 1, 2, 2], np.float32), "scales")
    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode="linear")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, 6, 6])],
        [roi, scales],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    converted = convert_to_fp16(model)
    onnx.checker.check_model(converted, full_check=True)
    types = _types(converted)
    resize = next(n for n in converted.graph.node if n.op_type == "Resize")
    assert [types[name] for name in resize.input] == [
        TensorProto.FLOAT16,
        TensorProto.FLOAT,
        TensorProto.FLOAT,
    ]
    feeds = {"x": np.random.default_rng(3).standard_normal((2, 2, 3, 3), dtype=np.float32)}
    _assert_close(_run(model, feeds), _run(converted, feeds))
