"""Parser coverage ahead of the build (litevit.runtime.trt_build.parser_coverage): the table
against its sources, each kind of restriction on a hand-built graph, the release rows a version
maps to, and `litevit build` refusing an unsupported node in one line before TensorRT is called.

Every exported graph (all models x --ops routes x fp32/fp16/Q/DQ x releases) is checked in
tests/export/test_trt_targets.py, which needs torch to export them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import fake_tensorrt
import numpy as np
import onnx
import onnx_parser_tables
import pytest
from onnx import TensorProto, helper, numpy_helper

import litevit._deps as deps
from litevit.cli import main
from litevit.errors import LitevitError
from litevit.runtime import environment, trt_build
from litevit.runtime.trt_build.parser_coverage import (
    TARGET_RELEASES,
    release_support,
    require_parser_support,
    support_table,
    unsupported_nodes,
)

# A git directory of a clone of onnx/onnx-tensorrt (all release branches), e.g. `git clone --mirror`:
# the tests that re-read the sources skip without one.
MIRROR = (
    Path(os.environ["LITEVIT_ONNX_TENSORRT_GIT"]) if os.environ.get("LITEVIT_ONNX_TENSORRT_GIT") else None
)
RELEASES = tuple(support_table()["releases"])


def _model(nodes, inputs, outputs, initializers=(), opset=17, functions=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    domains = {f.domain for f in functions} | {n.domain for n in nodes if n.domain}
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in sorted(domains)],
        functions=list(functions),
    )
    model.ir_version = 8
    return model


def _float(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _problems(model, release, **kwargs):
    return [(p.node, p.op_type) for p in unsupported_nodes(model, release, **kwargs)]


# ---------------------------------------------------------------------------------------------
# The table and its sources


@pytest.mark.skipif(
    MIRROR is None or not MIRROR.is_dir(),
    reason="no clone of onnx/onnx-tensorrt: set LITEVIT_ONNX_TENSORRT_GIT to its git directory",
)
def test_table_is_what_the_generator_writes_from_the_release_branches():
    # The branch rows are re-read from the mirror; the 10.15 document (not in the mirror) is kept
    # from the table; the release rows and checks are regenerated. Any hand edit of the JSON fails.
    regenerated = onnx_parser_tables.build_table(MIRROR, None)
    assert regenerated == json.loads(onnx_parser_tables.TABLE.read_text())


def test_table_names_a_source_for_every_release_row():
    table = support_table()
    assert set(TARGET_RELEASES) <= set(table["releases"])
    for name, row in table["releases"].items():
        source = table["sources"][row["source"]]
        assert source["repository"] == "onnx/onnx-tensorrt" and source["path"] == "docs/operators.md"
        assert source["branch"] or source["note"], name
        for op, change in row["changes"].items():
            assert change["why"], (name, op)
        for op, checks in row["checks"].items():
            assert all(check["why"] for check in checks), (name, op)


def test_the_findings_the_table_records():
    # 8.5 has no LayerNormalization importer (8.6 brings it); neither 8.x has CastLike.
    assert not release_support("8.5").ops["LayerNormalization"]["supported"]
    assert release_support("8.6").ops["LayerNormalization"]["supported"]
    assert "CastLike" not in release_support("8.5").ops and "CastLike" not in release_support("8.6").ops
    assert release_support("10.3").ops["CastLike"]["supported"]
    assert release_support("8.5").opset == (1, 17) and release_support("11").opset == (9, 24)


@pytest.mark.parametrize(
    ("version", "row"),
    [
        ("8.5.2.2", "8.5"),
        ("8.6.2.3", "8.6"),
        ("9.1.0", "8.6"),
        ("10.0.1", "10.1"),
        ("10.3.0.26", "10.3"),
        ("10.4.0.26", "10.4"),
        ("10.8.0.43", "10.4"),
        ("10.13.3", "10.13"),
        ("10.15.1.29", "10.13"),
        ("11.4.0.106", "11"),
        ("11", "11"),
    ],
)
def test_a_version_is_checked_with_the_newest_row_not_newer_than_it(version, row):
    assert release_support(version).name == row


# ---------------------------------------------------------------------------------------------
# Each kind of restriction, on a hand-built graph


def _topk(k_constant: bool):
    nodes = [helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="topk")]
    initializers = [numpy_helper.from_array(np.array([3], np.int64), "k")] if k_constant else []
    inputs = [_float("x", [1, 10])] + (
        [] if k_constant else [helper.make_tensor_value_info("k", TensorProto.INT64, [1])]
    )
    return _model(
        nodes,
        inputs,
        [_float("values", [1, 3]), helper.make_tensor_value_info("indices", TensorProto.INT64, [1, 3])],
        initializers,
    )


def test_topk_needs_a_constant_k_on_8_5_only():
    assert _problems(_topk(False), "8.5") == [("topk", "TopK")]
    assert _problems(_topk(True), "8.5") == []
    assert _problems(_topk(False), "8.6") == []
    (problem,) = unsupported_nodes(_topk(False), "8.5")
    assert "build-time constant" in problem.reason and "8.5-GA" in problem.reason


def _resize(**attrs):
    sizes = numpy_helper.from_array(np.array([1, 3, 8, 8], np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize", **attrs)
    return _model([node], [_float("x", [1, 3, 4, 4])], [_float("y", [1, 3, 8, 8])], [sizes], opset=18)


@pytest.mark.parametrize(
    ("attrs", "refused_on"),
    [
        ({"mode": "linear"}, ()),
        ({"mode": "cubic"}, ()),  # not in operators.md, but the importers map it (recorded in the table)
        ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"}, ("10.3", "11")),
        ({"mode": "linear", "antialias": 1}, ("10.3", "11")),
        ({"mode": "linear", "keep_aspect_ratio_policy": "not_larger"}, ("10.3", "11")),
    ],
)
def test_resize_modes(attrs, refused_on):
    for release in ("10.3", "11"):
        assert (_problems(_resize(**attrs), release) != []) == (release in refused_on), release


def _pad(mode: str, axes: bool, opset: int = 17):
    inits = [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")]
    inputs = ["x", "pads"]
    if axes:
        inits = [
            numpy_helper.from_array(np.array([1, 1, 1, 1], np.int64), "pads"),
            numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
        ]
        inputs = ["x", "pads", "", "axes"]
    node = helper.make_node("Pad", inputs, ["y"], name="pad", mode=mode)
    return _model([node], [_float("x", [1, 1, 4, 4])], [_float("y", [1, 1, 6, 6])], inits, opset=opset)


def test_pad_modes_and_axes_per_release():
    assert _problems(_pad("reflect", False), "8.5") == []
    assert _problems(_pad("wrap", False), "8.6") == [("pad", "Pad")]
    assert _problems(_pad("wrap", False, opset=19), "10.3") == []
    # Any axes input on 8.x; a constant one from 10.0.
    assert _problems(_pad("constant", True, opset=18), "10.3") == []
    with_axes = unsupported_nodes(_pad("constant", True), "8.6")
    assert [(p.node, p.op_type) for p in with_axes] == [("pad", "Pad")]
    assert "dynamic axes" in with_axes[0].reason


def _qdq(zero_point: int | None, axis_channels: int = 1):
    scale = np.full(axis_channels, 0.1, np.float32) if axis_channels > 1 else np.array(0.1, np.float32)
    inits = [numpy_helper.from_array(scale, "scale")]
    inputs = ["x", "scale"]
    if zero_point is not None:
        zero = (
            np.full(axis_channels, zero_point, np.int8)
            if axis_channels > 1
            else np.array(zero_point, np.int8)
        )
        inits.append(numpy_helper.from_array(zero, "zero"))
        inputs.append("zero")
    nodes = [
        helper.make_node("QuantizeLinear", inputs, ["q"], name="q", axis=1),
        helper.make_node("DequantizeLinear", ["q", *inputs[1:]], ["y"], name="dq", axis=1),
    ]
    return _model(nodes, [_float("x", [1, axis_channels, 4])], [_float("y", [1, axis_channels, 4])], inits)


def test_quantize_dequantize_zero_points_and_inputs():
    assert _problems(_qdq(0), "8.5") == []
    assert _problems(_qdq(0, axis_channels=4), "8.5") == []  # per channel
    assert _problems(_qdq(3), "10.3") == [("q", "QuantizeLinear"), ("dq", "DequantizeLinear")]
    # 8.5/8.6 need the zero point input; 10.x defaults it.
    assert _problems(_qdq(None), "8.6") == [("q", "QuantizeLinear"), ("dq", "DequantizeLinear")]
    assert _problems(_qdq(None), "10.3") == []


def test_types_the_parser_does_not_take_and_int64_cast_down_on_8x():
    # Add on BOOL is in no release's types; Add on INT64 is read as INT32 on 8.x, native on 10.x.
    for dtype, refused in ((TensorProto.BOOL, True), (TensorProto.INT64, False)):
        model = _model(
            [helper.make_node("Add", ["a", "a"], ["b"], name="add")],
            [helper.make_tensor_value_info("a", dtype, [2])],
            [helper.make_tensor_value_info("b", dtype, [2])],
        )
        for release in ("8.5", "10.3"):
            assert (_problems(model, release) != []) == refused, (dtype, release)
    bool_add = unsupported_nodes(
        _model(
            [helper.make_node("Add", ["a", "a"], ["b"], name="add")],
            [helper.make_tensor_value_info("a", TensorProto.BOOL, [2])],
            [helper.make_tensor_value_info("b", TensorProto.BOOL, [2])],
        ),
        "8.5",
    )
    assert "BOOL" in bool_add[0].reason and "FP32, FP16, INT32" in bool_add[0].reason


def test_layer_normalization_optional_outputs_and_opset():
    scale = numpy_helper.from_array(np.ones(4, np.float32), "scale")
    ln = helper.make_node("LayerNormalization", ["x", "scale"], ["y", "mean"], name="ln")
    model = _model([ln], [_float("x", [2, 4])], [_float("y", [2, 4]), _float("mean", [2, 1])], [scale])
    assert _problems(model, "8.6") == []  # 8.6's document lists no restriction
    assert _problems(model, "10.3") == [("ln", "LayerNormalization")]
    assert _problems(model, "8.5") == [("ln", "LayerNormalization")]
    opset18 = _model(
        [helper.make_node("Relu", ["x"], ["y"])], [_float("x", [2])], [_float("y", [2])], opset=18
    )
    assert _problems(opset18, "8.6") == [("", "opset 18")] and _problems(opset18, "10.3") == []


def test_einsum_ellipsis_and_diagonals_before_10_12():
    for equation, refused in (("ij,jk->ik", False), ("...ij,jk->...ik", True), ("ii->i", True)):
        inputs = ["a", "b"] if "," in equation else ["a"]
        node = helper.make_node("Einsum", inputs, ["c"], name="einsum", equation=equation)
        model = _model(
            [node],
            [_float(n, [3, 3]) for n in inputs],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)],
        )
        assert (_problems(model, "8.6") != []) == refused, equation
        assert _problems(model, "10.13") == [], equation


def test_nodes_of_subgraphs_are_checked():
    scale = numpy_helper.from_array(np.ones(4, np.float32), "scale")
    branch = helper.make_graph(
        [helper.make_node("LayerNormalization", ["x", "scale"], ["y_then"], name="ln_in_branch")],
        "then",
        [],
        [_float("y_then", [2, 4])],
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y_else"])], "else", [], [_float("y_else", [2, 4])]
    )
    node = helper.make_node("If", ["cond"], ["y"], name="if", then_branch=branch, else_branch=other)
    model = _model(
        [node],
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []), _float("x", [2, 4])],
        [_float("y", [2, 4])],
        [scale],
    )
    assert _problems(model, "8.5") == [("ln_in_branch", "LayerNormalization")]
    assert _problems(model, "8.6") == []


def _litevit_model(body_op: str | None):
    """input -> litevit::CSA (with a function body of one ``body_op`` node, or none) -> output."""
    functions = []
    if body_op is not None:
        functions.append(
            helper.make_function(
                "litevit",
                "CSA",
                ["x"],
                ["y"],
                [helper.make_node(body_op, ["x"], ["y"], name="body_node")],
                opset_imports=[helper.make_opsetid("", 17)],
                attributes=[],
            )
        )
    node = helper.make_node(
        "CSA", ["x"], ["y"], name="csa", domain="litevit", plugin_version="1", plugin_namespace="litevit"
    )
    return _model([node], [_float("x", [1, 4])], [_float("y", [1, 4])], functions=functions)


def test_litevit_nodes_follow_the_builds_routes():
    # A body the parser inlines is checked node by node (10.3 reads bodies; 8.x never does).
    bad_body = _litevit_model("Col2Im")  # no importer anywhere
    (problem,) = unsupported_nodes(bad_body, "10.3", litevit_plugins=False)
    assert (problem.node, problem.op_type, problem.body) == ("body_node", "Col2Im", "litevit::CSA")
    assert "in the function body of litevit::CSA" in problem.describe()
    # With litevit's plugin library the plugin takes the node: its body is never parsed.
    assert unsupported_nodes(bad_body, "10.3", litevit_plugins=True) == []
    assert unsupported_nodes(bad_body, "8.5", litevit_plugins=True) == []
    # Every route (None) finds the body's problem; without a library 8.5 has no route at all.
    assert [p.op_type for p in unsupported_nodes(bad_body, "10.3")] == ["Col2Im"]
    (no_route,) = unsupported_nodes(_litevit_model(None), "8.5", litevit_plugins=False)
    assert no_route.node == "csa" and "plugin library" in no_route.reason


def test_other_custom_nodes_need_a_named_plugin():
    node = helper.make_node("ROIAlign_TRT", ["x"], ["y"], name="roi", domain="trt.plugins")
    model = _model([node], [_float("x", [1, 4])], [_float("y", [1, 4])])
    (problem,) = unsupported_nodes(model, "10.3")
    assert problem.op == "trt.plugins::ROIAlign_TRT" and "extra_plugins" in problem.reason
    assert unsupported_nodes(model, "10.3", extra_plugins={"ROIAlign_TRT"}) == []
    assert unsupported_nodes(model, "8.5", extra_plugins={"ROIAlign_TRT"}) == []


def test_the_refusal_is_one_line_naming_node_op_and_release():
    scale = numpy_helper.from_array(np.ones(4, np.float32), "scale")
    nodes = [
        helper.make_node("LayerNormalization", ["x", "scale"], ["h"], name="ln_0"),
        helper.make_node("LayerNormalization", ["h", "scale"], ["y"], name="ln_1"),
    ]
    model = _model(nodes, [_float("x", [2, 4])], [_float("y", [2, 4])], [scale])
    with pytest.raises(LitevitError) as info:
        require_parser_support(model, "8.5.2.2", graph="m.onnx")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "TensorRT 8.5's ONNX parser cannot take m.onnx: node 'ln_0' (LayerNormalization)"
    )
    assert "1 more: LayerNormalization x1" in message and "--trt 8.5" in message
    require_parser_support(model, "8.6.2.3", graph="m.onnx")  # 8.6 has the importer


# ---------------------------------------------------------------------------------------------
# `litevit build` refuses before TensorRT sees the graph


@pytest.mark.parametrize("version", ["8.5.2.2", "8.6.2.3"])
def test_build_refuses_an_unsupported_node_before_tensorrt_is_called(monkeypatch, tmp_path, capsys, version):
    trt = fake_tensorrt.make_tensorrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(deps, "has", lambda name: name in {"tensorrt", "onnxruntime"})
    monkeypatch.setattr(environment, "gpu_facts", lambda: {})
    monkeypatch.setattr(trt_build.plugins, "_LOADED_PLUGIN_LIBRARIES", set())
    cast_like = helper.make_node("CastLike", ["x", "x"], ["y"], name="cast_like_0")
    path = tmp_path / "m.onnx"
    onnx.save(_model([cast_like], [_float("x", [1, 4])], [_float("y", [1, 4])]), path)
    assert main(["build", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"TensorRT {version[:3]}'s ONNX parser cannot take m.onnx: node 'cast_like_0' (CastLike)" in err
    assert trt.records.parsed == [] and trt.records.network_flags == []  # TensorRT never saw it


def test_generator_parses_an_operators_table():
    text = (
        "TensorRT 9.9 supports operators in the inclusive range of opset 9 to opset 21.\n"
        "| Operator | Supported | Supported Types | Restrictions |\n"
        "|---|---|---|---|\n"
        "| Abs | Y | FP32, INF64 |\n"
        "| Foo | N |\n"
        "| TopK | Y | FP32 | `K` input must be an initializer\n"
    )
    parsed = onnx_parser_tables.parse_operators_md(text)
    assert parsed["opset"] == [9, 21]
    assert parsed["ops"] == {
        "Abs": {"supported": True, "types": ["FP32", "INT64"]},
        "Foo": {"supported": False},
        "TopK": {"supported": True, "types": ["FP32"], "restrictions": "`K` input must be an initializer"},
    }
