"""litevit-export for detectors: the two-input graph, its manifest, and its parity gate, which must
pass on the trained fixtures (real detections at the real threshold) and fail on a changed graph."""

from __future__ import annotations

import json

import numpy as np

import onnx
import pytest
from onnx import numpy_helper

from litevit.errors import LitevitError
from litevit.export import check_artifacts, export_model
from litevit.export.api import _build_module
from litevit.export.detection import (
    DetectionOptions,
    as_detector,
    run_detection_parity,
    set_score_threshold,
)
from litevit.export.onnx_export import GraphSpec
from litevit.models import get_model_cfg


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_trained_mask_rcnn_graph_manifest_and_gate(detector_artifact):
    folder = detector_artifact("shapes_mask_rcnn")
    manifest = _manifest(folder)
    assert manifest["task"] == "detection" and manifest["opset"] == 17
    assert [i["name"] for i in manifest["inputs"]] == ["input", "image_shapes"]
    assert manifest["inputs"][1]["shape"] == ["batch", 4]
    assert [o["name"] for o in manifest["outputs"]] == [
        "boxes",
        "scores",
        "labels",
        "num_detections",
        "masks",
    ]
    assert manifest["outputs"][4]["dtype"] == "bool"
    assert manifest["dynamic_axes"] == {"input": {"0": "batch"}, "image_shapes": {"0": "batch"}}
    assert manifest["detection"] == {
        "mask_output": "canvas",
        "score_thr": 0.05,
        "gate_score_thr": 0.05,  # trained weights: the gate runs at the graph's own threshold
        "test_scale": [128, 128],
    }
    for name, entry in manifest["parity"].items():
        assert entry["passed"], name
        found = [r for r in entry["results"] if r["check"] == "detections"]
        # The gate compared real detections, at batch 1 and 2 (dynamic batch), on both kinds of input.
        assert {tuple(r["input_shape"]) for r in found} == {(1, 3, 128, 128), (2, 3, 128, 128)}
        assert any("found [0" not in r["detail"] for r in found)
    graph = onnx.load(folder / "elsa_swin_tiny_mask_rcnn.onnx")
    ops = {node.op_type for node in graph.graph.node}
    assert {"RoiAlign", "NonMaxSuppression", "TopK"} <= ops
    constants = {t.name for t in graph.graph.initializer} | {
        n.output[0] for n in graph.graph.node if n.op_type == "Constant"
    }
    # TensorRT 8.5's parser needs every TopK's K as a constant.
    assert all(node.input[1] in constants for node in graph.graph.node if node.op_type == "TopK")
    threshold = next(t for t in graph.graph.initializer if t.name == "score_threshold")
    assert float(numpy_helper.to_array(threshold)) == pytest.approx(0.05)


def test_gate_fails_when_the_graph_differs_from_pytorch(detector_artifact):
    folder = detector_artifact("shapes_mask_rcnn")
    manifest = _manifest(folder)
    module = as_detector(
        _build_module(
            manifest["model"],
            manifest["weights"]["path"],
            tuple(manifest["img_size"]),
            False,
            "logits",
            manifest["model_kwargs"],
            manifest["detection"],
        )
    )
    graph = onnx.load(folder / "elsa_swin_tiny_mask_rcnn.onnx")
    spec = GraphSpec(tuple(manifest["img_size"]), 1, False, False, 17, "function")
    # The class scores' weights scaled by 1 %: scores move, boxes do not.
    tensor = next(t for t in graph.graph.initializer if t.name.endswith("fc_cls.weight"))
    tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * 1.01, tensor.name))
    gate = run_detection_parity(module, graph, spec, "fp32", 0.05, threads=1)
    failed = {check.check for check in gate.checks if not check.passed}
    assert not gate.passed and {"pre-NMS 2", "scores"} <= failed


def test_check_reruns_the_gate(detector_artifact):
    fresh = check_artifacts(detector_artifact("shapes_panoptic_fpn"), threads=1, log=lambda line: None)
    (entry,) = fresh.values()
    assert entry["passed"] and any(r["check"] == "panoptic" for r in entry["results"])


def test_panoptic_manifest_has_the_canvas_range_for_tensorrt_profiles(detector_artifact):
    manifest = _manifest(detector_artifact("shapes_panoptic_fpn"))
    assert manifest["hw_range"] == {"min": [64, 64], "max": [128, 128]}
    assert [o["name"] for o in manifest["outputs"]][4:] == ["panoptic", "segment_labels", "segment_areas"]
    assert manifest["outputs"][4]["shape"] == [1, "height", "width"]


def test_a_graph_without_the_threshold_weight_is_refused():
    graph = onnx.helper.make_model(onnx.helper.make_graph([], "empty", [], []))
    with pytest.raises(LitevitError, match="no 'score_threshold' weight"):
        set_score_threshold(graph, 0.1)


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        ("lvt_panoptic_fpn", {"detection": DetectionOptions("roi")}, "applies to Mask R-CNN models"),
        ("elsa_swin_tiny_mask_rcnn", {"detection": DetectionOptions("rle")}, "unknown --det-masks"),
        ("elsa_swin_tiny_mask_rcnn", {"detection": DetectionOptions(score_thr=1.5)}, r"--score-thr must lie"),
        ("elsa_swin_tiny_mask_rcnn", {"int8": True, "calib": "x"}, "--int8 is not available for detectors"),
    ],
)
def test_bad_detector_options_are_one_sentence(tmp_path, model, kwargs, message):
    with pytest.raises(LitevitError, match=message):
        export_model(model, out_dir=tmp_path, model_kwargs=get_model_cfg(model).smoke_arch, **kwargs)


def test_a_model_whose_classes_do_not_add_up_is_refused(tmp_path, trained_detector):
    trained = trained_detector("shapes_panoptic_fpn")
    kwargs = dict(trained.facts["model_kwargs"], num_classes=5)
    with pytest.raises(TypeError, match="predicts 6 classes; pass num_classes=6"):
        export_model(trained.facts["model"], img_size=(128, 128), model_kwargs=kwargs, out_dir=tmp_path)


def test_plugin_and_inline_forms_of_a_detector_graph_run_the_same(detector_artifact):
    """--ops plugin (litevit nodes only; RoiAlign and NonMaxSuppression are standard ops in every
    mode) and --ops inline (standard ops only) of the same graph give the same detections."""
    import onnxruntime as ort

    from litevit.export.onnx_export import for_onnxruntime, inline_functions, validate
    from litevit.onnx_graphs import custom_nodes

    folder = detector_artifact("shapes_panoptic_fpn")
    function_graph = onnx.load(folder / "lvt_panoptic_fpn.onnx")
    plugin_graph = onnx.ModelProto()
    plugin_graph.CopyFrom(function_graph)
    del plugin_graph.functions[:]
    inline_graph = inline_functions(plugin_graph)
    validate(inline_graph, 17)
    assert {n.op_type for n in custom_nodes(plugin_graph)} == {"CSA", "RASA"} and not custom_nodes(
        inline_graph
    )
    feeds = {
        "input": np.random.default_rng(0).standard_normal((1, 3, 96, 128)).astype(np.float32),
        "image_shapes": np.array([[96, 128, 96, 128]], np.float32),
    }
    results = []
    for graph in (function_graph, for_onnxruntime(plugin_graph), inline_graph):
        session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        results.append(session.run(None, feeds))
    for other in results[1:]:
        for expected, got in zip(results[0], other, strict=True):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_trtexec_hint_names_both_inputs_and_the_canvas_range(tmp_path):
    from litevit.export.api import trt_build_hint

    spec = GraphSpec((800, 1344), 1, True, True, 17, "function")
    hint = trt_build_hint(
        tmp_path, "lvt_panoptic_fpn", spec, ["fp16"], True, {"min": [64, 64], "max": [1344, 1344]}, True
    )
    assert "--minShapes=input:1x3x64x64,image_shapes:1x4" in hint
    assert "--optShapes=input:1x3x800x1344,image_shapes:1x4" in hint
    assert "--maxShapes=input:8x3x1344x1344,image_shapes:8x4" in hint
    batch_only = trt_build_hint(
        tmp_path, "elsa_swin_tiny_mask_rcnn", GraphSpec((800, 1344), 2, True, False, 17, "function"),
        ["fp16"], True, None, True,
    )  # fmt: skip
    assert "--minShapes=input:1x3x800x1344,image_shapes:1x4" in batch_only
    assert "--maxShapes=input:8x3x800x1344,image_shapes:8x4" in batch_only


@pytest.mark.parametrize("name", ["shapes_mask_rcnn", "shapes_panoptic_fpn"])
def test_detector_graphs_pass_the_parser_coverage_of_every_release(detector_artifact, name):
    """Every TensorRT release litevit supports parses every node (types and restrictions included):
    RoiAlign, NonMaxSuppression, constant-K TopK, no integer Clip/ReduceSum, no integer or bool
    ConstantOfShape; on 8.5 after the --trt 8.5 rewrite of LayerNormalization (the backbones')."""
    from litevit.export.trt_target import adapt_for_target
    from litevit.runtime.trt_build.parser_coverage import TARGET_RELEASES, unsupported_nodes

    folder = detector_artifact(name)
    manifest = _manifest(folder)
    for file_name in manifest["files"]:
        graph = onnx.load(folder / file_name)
        for release in TARGET_RELEASES:
            adapted, _ = adapt_for_target(graph, release)
            problems = unsupported_nodes(adapted, release)
            assert not problems, (file_name, release, [p.describe() for p in problems[:3]])


def test_the_candidate_cap_is_a_top_k_every_release_parses():
    """The trained fixtures rank fewer candidates than the cap; a full-size detector's RCNN TopK has
    K = MAX_TOPK, which must pass every release's parser rules (10.x: "less than 3840")."""
    from onnx import TensorProto, helper

    from litevit.models.detection.postprocess import MAX_TOPK
    from litevit.runtime.trt_build.parser_coverage import TARGET_RELEASES, unsupported_nodes

    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 5 * MAX_TOPK])
    values = helper.make_tensor_value_info("values", TensorProto.FLOAT, [1, MAX_TOPK])
    indices = helper.make_tensor_value_info("indices", TensorProto.INT64, [1, MAX_TOPK])
    k = numpy_helper.from_array(np.array([MAX_TOPK], np.int64), "k")
    node = helper.make_node("TopK", ["scores", "k"], ["values", "indices"], axis=1, name="candidates")
    graph = helper.make_graph([node], "cap", [scores], [values, indices], initializer=[k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for release in TARGET_RELEASES:
        assert unsupported_nodes(model, release) == [], release
