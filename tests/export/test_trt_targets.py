"""Every exported graph against the ONNX parser of every release litevit supports.

For each registered model (smoke configurations: the same blocks, ops and code paths as the
full ones, fewer and narrower; one full-size model under the ``slow`` marker), each --ops route
(function, plugin, inline) and each graph kind (FP32, strongly typed FP16, Q/DQ INT8), the graph
``litevit-export --trt RELEASE`` writes must be taken whole by that release's parser
(litevit.runtime.trt_build.parser_coverage), by every route its litevit nodes can take there.
The default graphs (no --trt) fail exactly where the table says: LayerNormalization on 8.5 and,
in --ops inline graphs with RASA, CastLike on 8.5 and 8.6.

The Q/DQ graphs are made by the calibration's own quantize() with a unit activation range for
every site: ranges change scales, not which nodes are written, and real calibration needs images.
"""

from __future__ import annotations

import json

import onnx
import pytest

from litevit.calibration.qdq import activation_tensors, fold_weight_transposes, quant_sites, quantize
from litevit.artifacts import DETECTION_TASKS
from litevit.cli import export_main
from litevit.export import export_model
from litevit.export.fp16 import convert_to_fp16
from litevit.export.onnx_export import OPS_MODES, GraphSpec, apply_ops_mode, torch_to_onnx
from litevit.export.trt_target import REWRITES, adapt_for_target, rewritten_ops
from litevit.models import create_model, get_model_cfg, list_models
from litevit.runtime.trt_build.parser_coverage import (
    REWRITTEN_AT_EXPORT,
    TARGET_RELEASES,
    unsupported_nodes,
)


def _qdq(fp32: onnx.ModelProto) -> onnx.ModelProto:
    folded = fold_weight_transposes(fp32)
    sites = quant_sites(folded)
    return quantize(folded, sites, {tensor: 1.0 for tensor in activation_tensors(sites)})


def _graphs(plain: onnx.ModelProto, target: str | None) -> dict[str, onnx.ModelProto]:
    """fp32, fp16 and int8 as export_model makes them for ``target`` (None: no --trt)."""
    fp16 = convert_to_fp16(plain)
    if target is None:
        return {"fp32": plain, "fp16": fp16, "int8": _qdq(plain)}
    fp32, _ = adapt_for_target(plain, target)
    return {"fp32": fp32, "fp16": adapt_for_target(fp16, target)[0], "int8": _qdq(fp32)}


def _main_graph_ops(model: onnx.ModelProto) -> set[str]:
    return {node.op_type for node in model.graph.node if node.domain in ("", "ai.onnx")}


def check_every_route_and_release(exported: onnx.ModelProto, name: str) -> None:
    for ops in OPS_MODES:
        plain = apply_ops_mode(exported, ops)
        defaults = _graphs(plain, None)
        # A release whose parser lacks nothing litevit rewrites gets the default graphs.
        targeted = {r: _graphs(plain, r) if rewritten_ops(r) else defaults for r in TARGET_RELEASES}
        for release in TARGET_RELEASES:
            for kind, graph in targeted[release].items():
                problems = unsupported_nodes(graph, release)
                assert problems == [], (name, ops, kind, release, problems[:3])
            # The default graph fails exactly on the operators the --trt rewrite writes out.
            missing = set(rewritten_ops(release))
            for kind, graph in defaults.items():
                found = {p.op_type for p in unsupported_nodes(graph, release)}
                assert found == missing & _main_graph_ops(graph), (name, ops, kind, release, found)


# Detector graphs in the default run: tests/export/test_detection_export.py checks the trained
# fixtures' exports (both detector kinds, FP32 and FP16) on every release; their smoke exports here
# (minutes each) are slow.
@pytest.mark.per_architecture
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if get_model_cfg(name).task in DETECTION_TASKS else name
        for name in list_models()
    ],
)
def test_every_exported_graph_parses_on_every_release(name, smoke_export):
    check_every_route_and_release(smoke_export(name), name)


@pytest.mark.slow
def test_a_full_size_model_parses_on_every_release():
    module = create_model("lvt")
    spec = GraphSpec((224, 224), 1, True, False, 17, "plugin")
    check_every_route_and_release(torch_to_onnx(module, spec, ["logits"]), "lvt")


def test_the_rewrites_are_the_ones_the_coverage_names():
    assert set(REWRITES) == REWRITTEN_AT_EXPORT
    assert rewritten_ops("8.5") == ["CastLike", "LayerNormalization"]
    assert rewritten_ops("8.6") == ["CastLike"]
    assert all(rewritten_ops(release) == [] for release in ("10.3", "10.4", "10.13", "11"))


def result_plain_graph(tmp_path) -> onnx.ModelProto:
    """The same smoke LVT exported without --trt (the graph the rewrite starts from)."""
    result = export_model(
        "lvt",
        img_size=(64, 64),
        ops="inline",
        out_dir=tmp_path / "plain",
        check=False,
        model_kwargs=get_model_cfg("lvt").smoke_arch,
        log=lambda line: None,
    )
    return onnx.load(result.files["fp32"])


def test_export_for_tensorrt_8_5_writes_parseable_graphs_that_pass_parity(tmp_path):
    out = tmp_path / "lvt"
    result = export_model(
        "lvt",
        img_size=(64, 64),
        fp16=True,
        ops="inline",
        trt="8.5",
        out_dir=out,
        model_kwargs=get_model_cfg("lvt").smoke_arch,
        log=lambda line: None,
    )
    assert result.passed  # the parity gate, against PyTorch, on the rewritten graphs
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["trt_target"] == "8.5"
    layer_norms = sum(n.op_type == "LayerNormalization" for n in result_plain_graph(tmp_path).graph.node)
    assert manifest["trt_rewrites"]["lvt.onnx"] == {"CastLike": 1, "LayerNormalization": layer_norms}
    for file in ("lvt.onnx", "lvt.fp16.onnx"):
        graph = onnx.load(out / file)
        assert not _main_graph_ops(graph) & REWRITTEN_AT_EXPORT
        assert unsupported_nodes(graph, "8.5") == []
        assert {p.key: p.value for p in graph.metadata_props}["litevit.trt_target"] == "8.5"
    # The FP16 graph keeps the whole decomposed normalization in float32.
    fp16 = onnx.shape_inference.infer_shapes(onnx.load(out / "lvt.fp16.onnx"))
    types = {v.name: v.type.tensor_type.elem_type for v in fp16.graph.value_info}
    decomposed = [
        n for n in fp16.graph.node if any(p.key == "litevit.decomposed_from" for p in n.metadata_props)
    ]
    assert decomposed and all(
        types.get(out_name, onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT
        for node in decomposed
        for out_name in node.output
        if node.op_type != "Cast"
    )


def test_export_without_a_target_names_the_releases_that_cannot_parse_it(tmp_path, capsys):
    arguments = ["mobile_former_26m", "--img-size", "64", "64", "--out", str(tmp_path / "mf"), "--no-check"]
    # Smoke architecture through the Python API; the CLI takes registered configs only, so the
    # refusal paths are checked on the CLI and the notes on the API.
    result = export_model(
        "mobile_former_26m",
        img_size=(64, 64),
        out_dir=tmp_path / "mf",
        check=False,
        model_kwargs=get_model_cfg("mobile_former_26m").smoke_arch,
        log=lambda line: None,
    )
    notes = [n for n in result.notices if n.startswith("note: ")]
    assert len(notes) == 1 and "TensorRT 8.5's ONNX parser cannot take mobile_former_26m.onnx" in notes[0]
    assert "--trt 8.5" in notes[0]
    assert export_main([*arguments, "--trt", "8.5", "--opset", "18"]) == 2
    assert "reads opsets 1 - 17" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        export_main([*arguments, "--trt", "9.9"])
    assert exit_info.value.code == 2 and "invalid choice: '9.9'" in capsys.readouterr().err
