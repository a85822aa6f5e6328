"""litevit-export: every model in every --ops mode, dynamic axes, the parity gate, bad input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from litevit.errors import InputSizeError, LitevitError, UnknownModelError
from litevit._io import sha256_file
from litevit.export import check_artifacts, export_model
from litevit.export.onnx_export import (
    GraphSpec,
    SegmentationLabels,
    apply_ops_mode,
    custom_nodes,
    for_onnxruntime,
    torch_to_onnx,
    validate,
)
from litevit.export.parity import run_parity
from litevit.models import create_model, get_model_cfg, list_models

EXPECTED_CUSTOM_OPS = {
    "lvt": {"CSA", "RASA"},
    "lvt_seg": {"CSA", "RASA"},
    "elsa_swin_tiny": {"GhostHead"},
    "elsa_swin_small": {"GhostHead"},
    "elsa_swin_base": {"GhostHead"},
    "elsa_swin_tiny_upernet_ade": {"GhostHead"},
    "elsa_swin_small_upernet_ade": {"GhostHead"},
}


def _smoke_module(name: str) -> torch.nn.Module:
    model = create_model(name, smoke=True)
    return SegmentationLabels(model) if model.cfg.task == "segmentation" else model


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


# Detectors take two inputs and have their own gate: tests/export/test_detection_export.py.
ONE_INPUT_MODELS = [
    name for name in list_models() if get_model_cfg(name).task in ("classification", "segmentation")
]


@pytest.mark.per_architecture
@pytest.mark.parametrize("name", ONE_INPUT_MODELS)
def test_every_model_exports_in_every_ops_mode_with_dynamic_axes(name, smoke_export):
    module = _smoke_module(name)
    cfg = module.cfg
    segmentation = cfg.task == "segmentation"
    graph = smoke_export(name)  # 64x64, dynamic batch (and H x W for segmenters), opset 17
    assert {n.op_type for n in custom_nodes(graph)} == EXPECTED_CUSTOM_OPS.get(name, set())
    for node in custom_nodes(graph):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["plugin_namespace"] == b"litevit" and attrs["plugin_version"] == b"1"
    divisor = cfg.size_divisor
    shapes = [(1, 3, 64, 64), (3, 3, 64, 64)] + (
        [(2, 3, 64 + 2 * divisor, 64 + divisor)] if segmentation else []
    )
    outputs = {}
    for mode in ("function", "plugin", "inline"):
        exported = apply_ops_mode(graph, mode)
        validate(exported, 17)  # declared opset, no Col2Im, full checker
        all_ops = {n.op_type for n in exported.graph.node} | {
            n.op_type for f in exported.functions for n in f.node
        }
        assert "Col2Im" not in all_ops
        if mode == "plugin":
            assert not exported.functions
            continue
        if mode == "inline":
            assert not custom_nodes(exported) and not exported.functions
        results = run_parity(module, for_onnxruntime(exported), shapes, "fp32")
        assert all(r.passed for r in results), [r.reasons for r in results if not r.passed]
        outputs[mode] = _session(exported).run(None, {"input": np.ones((2, 3, 64, 64), np.float32)})[0]
    np.testing.assert_allclose(outputs["function"], outputs["inline"], rtol=0, atol=1e-5)


def test_cli_export_writes_artefacts_manifest_and_tensorrt_notice(tmp_path):
    out = tmp_path / "lvt"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from litevit.cli import export_main; import sys; sys.exit(export_main())",
            "lvt",
            "--fp16",
            "--img-size",
            "64",
            "64",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "lvt.onnx").is_file() and (out / "lvt.fp16.onnx").is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((out / "lvt.onnx").stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert not list(out.glob("*.partial"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["opset"] == 17 and manifest["ops_mode"] == "function"
    assert set(manifest["custom_ops"]) == {"CSA", "RASA"}
    assert all(entry["passed"] for entry in manifest["parity"].values())
    assert "parity lvt.onnx" in proc.stdout and "parity lvt.fp16.onnx" in proc.stdout
    assert "TensorRT is not installed here" in proc.stdout and "trtexec --onnx=" in proc.stdout
    assert f"litevit build {out} --precision fp16" in proc.stdout
    fp16 = onnx.load(out / "lvt.fp16.onnx")
    assert fp16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in fp16.graph.initializer)


def test_segmentation_labels_export_with_dynamic_hw_and_recheck(tmp_path):
    result = export_model(
        "lvt_seg",
        img_size=(64, 96),
        dynamic_hw=True,
        dynamic_batch=True,
        out_dir=tmp_path,
        model_kwargs=get_model_cfg("lvt_seg").smoke_arch,
        log=lambda s: None,
    )
    manifest = result.manifest
    assert manifest["outputs"][0]["name"] == "labels" and manifest["outputs"][0]["dtype"] == "int32"
    assert manifest["inputs"][0]["shape"] == ["batch", 3, "height", "width"]
    shapes = {tuple(r["input_shape"]) for r in manifest["parity"]["lvt_seg.onnx"]["results"]}
    assert shapes == {(1, 3, 64, 96), (3, 3, 64, 96), (1, 3, 128, 128)}
    labels = [r for r in manifest["parity"]["lvt_seg.onnx"]["results"] if r["output"] == "labels"]
    assert labels and all(r["label_agreement"] >= 0.999 for r in labels)
    fresh = check_artifacts(tmp_path, log=lambda s: None)
    assert fresh["lvt_seg.onnx"]["passed"]


def test_logits_output_for_segmentation(tmp_path):
    result = export_model(
        "segvit_vit_b_ade",
        img_size=(64, 64),
        seg_output="logits",
        out_dir=tmp_path,
        model_kwargs=get_model_cfg("segvit_vit_b_ade").smoke_arch,
        log=lambda s: None,
    )
    assert result.manifest["outputs"][0]["name"] == "logits"
    assert result.manifest["outputs"][0]["shape"][1] == 150


def test_parity_gate_fails_on_a_perturbed_graph(tmp_path):
    module = _smoke_module("mobile_former_26m")
    spec = GraphSpec((64, 64), 1, False, False, 17, "function")
    graph = apply_ops_mode(torch_to_onnx(module, spec, ["logits"]), "function")
    assert all(r.passed for r in run_parity(module, graph, [(1, 3, 64, 64)], "fp32"))
    biggest = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    weights = onnx.numpy_helper.to_array(biggest).copy()
    weights.flat[0] += 0.05 * float(np.abs(weights).max())
    biggest.CopyFrom(onnx.numpy_helper.from_array(weights, biggest.name))
    results = run_parity(module, graph, [(1, 3, 64, 64)], "fp32")
    assert not any(r.passed for r in results)
    assert all("max abs" in " ".join(r.reasons) for r in results)


def _export_smoke_mobile_former(out_dir):
    export_model(
        "mobile_former_26m",
        img_size=(64, 64),
        out_dir=out_dir,
        model_kwargs=get_model_cfg("mobile_former_26m").smoke_arch,
        log=lambda s: None,
    )


def test_check_refuses_a_corrupted_artefact(tmp_path):
    _export_smoke_mobile_former(tmp_path)
    onnx_file = tmp_path / "mobile_former_26m.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(LitevitError, match="does not match its SHA-256"):
        check_artifacts(tmp_path, log=lambda s: None)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(LitevitError, match="not valid JSON"):
        check_artifacts(tmp_path, log=lambda s: None)


def test_check_exits_1_when_a_rehashed_perturbed_graph_fails_parity(tmp_path):
    _export_smoke_mobile_former(tmp_path)
    onnx_file = tmp_path / "mobile_former_26m.onnx"
    graph = onnx.load(onnx_file)
    for init in graph.graph.initializer:
        values = onnx.numpy_helper.to_array(init)
        if values.dtype == np.float32 and values.size > 1000:
            init.CopyFrom(onnx.numpy_helper.from_array(values * 1.1, init.name))
    onnx.save(graph, onnx_file)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"]["mobile_former_26m.onnx"]["sha256"] = sha256_file(onnx_file)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    proc = subprocess.run(
        [sys.executable, "-m", "litevit.cli", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "parity gate FAILED" in proc.stderr and "NO: max abs" in proc.stdout


def test_bad_inputs_are_one_sentence(tmp_path):
    with pytest.raises(UnknownModelError, match="unknown model 'lvtt'"):
        export_model("lvtt", out_dir=tmp_path)
    with pytest.raises(InputSizeError, match="multiples of 32; got 65x64"):
        export_model("lvt", img_size=(65, 64), out_dir=tmp_path)
    with pytest.raises(LitevitError, match="weights file .* does not exist"):
        export_model("lvt", weights=tmp_path / "missing.pth", out_dir=tmp_path)
    with pytest.raises(LitevitError, match="opset 16 is not supported"):
        export_model(
            "mobile_former_26m",
            opset=16,
            out_dir=tmp_path,
            model_kwargs=get_model_cfg("mobile_former_26m").smoke_arch,
        )
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LitevitError, match="cannot create output folder"):
        export_model("lvt", out_dir=blocker / "sub")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(LitevitError, match="cannot read checkpoint"):
        export_model("lvt", weights=bad, out_dir=tmp_path)


def test_opset_18_is_written_when_asked_and_checked():
    module = _smoke_module("mobile_former_26m")
    graph = torch_to_onnx(module, GraphSpec((64, 64), 1, False, False, 18, "plugin"), ["logits"])
    validate(graph, 18)
    with pytest.raises(LitevitError, match="declares opset 18, not the requested 17"):
        validate(graph, 17)
