"""The ops' ONNX function bodies: valid, dynamic in B/H/W, type-generic, equal to the references.

Each test builds a one-node model (the ``litevit`` node with its attributes and the TensorRT plugin
attributes, the op's body in ``model.functions``, every input dimension symbolic) and runs it in
ONNX Runtime, which executes the node by inlining the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnx.inliner
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from litevit.ops import DOMAIN, OPS
from litevit.ops._define import PLUGIN_ATTRS

Inputs = list[torch.Tensor]


def _csa_inputs(batch: int, height: int, width: int, attrs: dict[str, Any], gen: torch.Generator) -> Inputs:
    """(attn, values) on an H' x W' grid of windows."""
    heads, taps = attrs["heads"], attrs["kernel_size"] ** 2
    logits = torch.randn(batch, heads, taps, taps, height, width, generator=gen)
    attn = logits.softmax(dim=3).reshape(batch, heads * taps * taps, height, width)
    values = torch.randn(batch, taps * 4 * heads, height, width, generator=gen)
    return [attn, values]


def _rasa_inputs(batch: int, height: int, width: int, attrs: dict[str, Any], gen: torch.Generator) -> Inputs:
    """(q, weight) with 6 channels."""
    k = attrs["kernel_size"]
    return [torch.randn(batch, 6, height, width, generator=gen), torch.randn(6, 1, k, k, generator=gen)]


def _ghost_head_inputs(
    batch: int, height: int, width: int, attrs: dict[str, Any], gen: torch.Generator
) -> Inputs:
    """(v, attn, ghost_mul, ghost_add) with 2 channels per head."""
    heads, k = attrs["heads"], attrs["kernel_size"]
    channels = 2 * heads
    logits = torch.randn(batch, heads, k * k, height, width, generator=gen)
    return [
        torch.randn(batch, channels, height, width, generator=gen),
        logits.softmax(dim=2).reshape(batch, heads * k * k, height, width),
        torch.rand(channels, k, k, generator=gen) + 0.5,
        torch.randn(channels, k, k, generator=gen),
    ]


@dataclass(frozen=True)
class Case:
    op: str
    attrs: dict[str, Any]
    make_inputs: Callable[[int, int, int, dict[str, Any], torch.Generator], Inputs]
    # Two (batch, height, width) sizes run through the same model; CSA's are window grids.
    sizes: tuple[tuple[int, int, int], ...]

    def __str__(self) -> str:
        return f"{self.op}-" + "-".join(f"{k}{v}" for k, v in self.attrs.items())


CASES = [
    Case(
        "CSA", {"heads": 1, "kernel_size": 3, "stride": 2, "padding": 1}, _csa_inputs, ((2, 4, 5), (1, 3, 3))
    ),
    Case(
        "CSA", {"heads": 2, "kernel_size": 3, "stride": 2, "padding": 1}, _csa_inputs, ((1, 1, 2), (3, 5, 4))
    ),
    Case("RASA", {"dilations": [1, 3, 5], "kernel_size": 3}, _rasa_inputs, ((2, 9, 7), (1, 14, 14))),
    Case("RASA", {"dilations": [2], "kernel_size": 3}, _rasa_inputs, ((1, 3, 3), (2, 8, 5))),
    Case(
        "GhostHead", {"heads": 1, "kernel_size": 7, "dilation": 1}, _ghost_head_inputs, ((2, 9, 7), (1, 4, 4))
    ),
    Case(
        "GhostHead",
        {"heads": 3, "kernel_size": 7, "dilation": 1},
        _ghost_head_inputs,
        ((1, 8, 8), (2, 5, 11)),
    ),
    Case(
        "GhostHead", {"heads": 6, "kernel_size": 7, "dilation": 1}, _ghost_head_inputs, ((1, 7, 6), (1, 3, 2))
    ),
    Case(
        "GhostHead", {"heads": 2, "kernel_size": 3, "dilation": 2}, _ghost_head_inputs, ((2, 6, 6), (1, 7, 9))
    ),
]

# What a body may use: standard ops the TensorRT ONNX parser imports (no Col2Im, Loop, If, Einsum).
ALLOWED_BODY_OPS = {
    "Add", "CastLike", "Concat", "Constant", "Conv", "ConvTranspose", "Div", "Gather", "Mul", "Pad",
    "Reshape", "Shape", "Sigmoid", "Slice",
}  # fmt: skip


def _node(op: str, attrs: dict[str, Any], inputs: list[str], output: str) -> onnx.NodeProto:
    return helper.make_node(op, inputs, [output], domain=DOMAIN, **attrs, **PLUGIN_ATTRS)


def _model(
    nodes: list[onnx.NodeProto], body: onnx.FunctionProto, input_ranks: dict[str, int], opset: int, elem: int
) -> onnx.ModelProto:
    """A model over ``nodes`` whose inputs have symbolic dims and whose outputs are 4-D."""
    inputs = [
        helper.make_tensor_value_info(name, elem, [f"{name}_{axis}" for axis in range(rank)])
        for name, rank in input_ranks.items()
    ]
    outputs = [
        helper.make_tensor_value_info(node.output[0], elem, [f"{node.output[0]}_{axis}" for axis in range(4)])
        for node in nodes
    ]
    graph = helper.make_graph(nodes, "one_op", inputs, outputs)
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, 1)],
        functions=[body],
    )


def _one_node_model(case: Case, opset: int = 17, elem: int = TensorProto.FLOAT) -> onnx.ModelProto:
    op = OPS[case.op]
    assert op.onnx_function is not None
    example = case.make_inputs(1, 3, 3, case.attrs, _gen())
    ranks = {name: len(t.shape) for name, t in zip(op.tensor_args, example, strict=True)}
    # Attributes the exporter derives from static input shapes (e.g. RASA's channel count).
    derived = op.onnx_attrs(*(tuple(t.shape) for t in example), **case.attrs) if op.onnx_attrs else {}
    node = _node(case.op, {**case.attrs, **derived}, list(op.tensor_args), "output")
    return _model([node], op.onnx_function(case.attrs, opset), ranks, opset, elem)


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _feeds(case: Case, inputs: Inputs, dtype: type = np.float32) -> dict[str, np.ndarray]:
    return {name: t.numpy().astype(dtype) for name, t in zip(OPS[case.op].tensor_args, inputs, strict=True)}


@pytest.mark.parametrize("opset", [17, 18, 19, 20, 21])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_body_passes_full_check(case: Case, opset: int) -> None:
    model = _one_node_model(case, opset)
    onnx.checker.check_model(model, full_check=True)
    body = model.functions[0]
    assert (body.domain, body.name, list(body.output)) == (DOMAIN, case.op, ["output"])
    assert list(body.input) == list(OPS[case.op].tensor_args)
    assert set(body.attribute) == {*OPS[case.op].attr_args, *OPS[case.op].onnx_attr_names, *PLUGIN_ATTRS}
    assert {node.op_type for node in body.node} <= ALLOWED_BODY_OPS
    assert all(node.domain == "" for node in body.node)
    assert set(OPS[case.op].baked_attrs) <= set(OPS[case.op].attr_args) - {"heads"}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_body_equals_reference_at_two_sizes(case: Case) -> None:
    model = _one_node_model(case)
    gen = _gen()
    for batch, height, width in case.sizes:  # the same model: B, H and W are dynamic
        inputs = case.make_inputs(batch, height, width, case.attrs, gen)
        expected = OPS[case.op].reference(*inputs, **case.attrs).numpy()
        (actual,) = _run(model, _feeds(case, inputs))
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_body_equals_reference_at_opset_21() -> None:
    case = CASES[0]
    inputs = case.make_inputs(*case.sizes[0], case.attrs, _gen())
    (actual,) = _run(_one_node_model(case, opset=21), _feeds(case, inputs))
    np.testing.assert_allclose(
        actual, OPS[case.op].reference(*inputs, **case.attrs).numpy(), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("case", CASES, ids=str)
def test_body_runs_in_float16(case: Case) -> None:
    inputs = case.make_inputs(*case.sizes[0], case.attrs, _gen())
    expected = OPS[case.op].reference(*inputs, **case.attrs).numpy()
    (actual,) = _run(_one_node_model(case, elem=TensorProto.FLOAT16), _feeds(case, inputs, np.float16))
    assert actual.dtype == np.float16
    assert np.abs(actual.astype(np.float32) - expected).max() <= 1e-2 * np.abs(expected).max()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_inlined_body_has_no_custom_nodes(case: Case) -> None:
    model = _one_node_model(case)
    inlined = onnx.inliner.inline_local_functions(model)
    assert not inlined.functions
    assert all(node.domain != DOMAIN for node in inlined.graph.node)
    onnx.checker.check_model(inlined, full_check=True)
    feeds = _feeds(case, case.make_inputs(*case.sizes[1], case.attrs, _gen()))
    np.testing.assert_array_equal(_run(inlined, feeds)[0], _run(model, feeds)[0])


@pytest.mark.parametrize(("op", "make_inputs", "structure"), [
    ("CSA", _csa_inputs, {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("GhostHead", _ghost_head_inputs, {"kernel_size": 7, "dilation": 1}),
])  # fmt: skip
def test_one_body_serves_every_head_count(
    op: str, make_inputs: Callable[..., Inputs], structure: dict[str, Any]
) -> None:
    # A model holds one body per op, built from one node's attributes: nodes with other head
    # counts must still get their own result (heads is read from the input shapes).
    head_counts = [1, 3, 6] if op == "GhostHead" else [1, 2]
    tensor_args = OPS[op].tensor_args
    gen = _gen()
    nodes, feeds, expected, ranks = [], {}, [], {}
    for heads in head_counts:
        attrs = {"heads": heads, **structure}
        inputs = make_inputs(1, 5, 6, attrs, gen)
        names = [f"{name}_h{heads}" for name in tensor_args]
        derived = OPS[op].onnx_attrs(*(tuple(t.shape) for t in inputs), **attrs) if OPS[op].onnx_attrs else {}
        nodes.append(_node(op, {**attrs, **derived}, names, f"output_h{heads}"))
        feeds.update({name: t.numpy() for name, t in zip(names, inputs, strict=True)})
        ranks.update({name: t.dim() for name, t in zip(names, inputs, strict=True)})
        expected.append(OPS[op].reference(*inputs, **attrs).numpy())
    assert OPS[op].onnx_function is not None
    body = OPS[op].onnx_function({"heads": head_counts[0], **structure}, 17)
    model = _model(nodes, body, ranks, 17, TensorProto.FLOAT)
    onnx.checker.check_model(model, full_check=True)
    for actual, reference in zip(_run(model, feeds), expected, strict=True):
        np.testing.assert_allclose(actual, reference, rtol=1e-5, atol=1e-5)
