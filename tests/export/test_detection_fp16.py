"""FP16 rule 4 (export/fp16.py): box coordinates stay float32 in a detector's FP16 graph.

A hand-built graph with a detector's coordinate arithmetic: anchors + decoded deltas, mmcv's class
offset before NonMaxSuppression, RoIAlign on the boxes and the level mapping's sqrt(w * h).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from litevit.export import fp16 as fp16_module
from litevit.export.fp16 import convert_to_fp16

ort = pytest.importorskip("onnxruntime")

N = 64  # candidate boxes


def _detector_like_graph() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    # Overlapping boxes (NMS has work to do) with coordinates where float16 is 0.5 pixel apart.
    centres = rng.uniform(550, 750, (N, 2))
    sizes = rng.uniform(200, 300, (N, 2))
    anchors = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)
    weights = {
        "w_features": rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32),
        "w_deltas": rng.normal(0, 0.05, (4, 8, 1, 1)).astype(np.float32),
        "w_scores": rng.normal(0, 0.3, (1, 8, 1, 1)).astype(np.float32),
        "anchors": anchors[None],
        # mmcv's batched_nms offset, class x (max coordinate + 1), for classes 72..79: > 65504
        "offsets": ((np.arange(N) % 8 + 72) * 1000.0).astype(np.float32).reshape(1, N, 1),
        "delta_scale": np.array(20.0, np.float32),
        "shape_deltas": np.array([1, N, 4], np.int64),
        "shape_scores": np.array([1, 1, N], np.int64),
        "shape_rois": np.array([N, 4], np.int64),
        "batch_indices": np.zeros(N, np.int64),
        "max_boxes": np.array([N], np.int64),
        "iou": np.array([0.5], np.float32),
        "score_thr": np.array([0.0], np.float32),
        "starts_w": np.array([0], np.int64),
        "starts_x2": np.array([2], np.int64),
        "ends_w": np.array([1], np.int64),
        "ends_x2": np.array([3], np.int64),
        "starts_h": np.array([1], np.int64),
        "starts_y2": np.array([3], np.int64),
        "ends_h": np.array([2], np.int64),
        "ends_y2": np.array([4], np.int64),
        "axis": np.array([2], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["image", "w_features"], ["features"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["features", "w_deltas"], ["delta_map"]),
        helper.make_node("Reshape", ["delta_map", "shape_deltas"], ["deltas"]),
        helper.make_node("Mul", ["deltas", "delta_scale"], ["scaled"]),
        helper.make_node("Add", ["anchors", "scaled"], ["boxes"]),
        helper.make_node("Add", ["boxes", "offsets"], ["nms_boxes"]),
        helper.make_node("Conv", ["features", "w_scores"], ["score_map"]),
        helper.make_node("Sigmoid", ["score_map"], ["score_sigmoid"]),
        helper.make_node("Reshape", ["score_sigmoid", "shape_scores"], ["scores"]),
        helper.make_node(
            "NonMaxSuppression", ["nms_boxes", "scores", "max_boxes", "iou", "score_thr"], ["selected"]
        ),
        helper.make_node("Reshape", ["boxes", "shape_rois"], ["rois"]),
        helper.make_node(
            "RoiAlign",
            ["features", "rois", "batch_indices"],
            ["pooled"],
            output_height=2,
            output_width=2,
            spatial_scale=1 / 100,
            coordinate_transformation_mode="half_pixel",
        ),
        helper.make_node("Slice", ["boxes", "starts_w", "ends_w", "axis"], ["x1"]),
        helper.make_node("Slice", ["boxes", "starts_x2", "ends_x2", "axis"], ["x2"]),
        helper.make_node("Slice", ["boxes", "starts_h", "ends_h", "axis"], ["y1"]),
        helper.make_node("Slice", ["boxes", "starts_y2", "ends_y2", "axis"], ["y2"]),
        helper.make_node("Sub", ["x2", "x1"], ["width"]),
        helper.make_node("Sub", ["y2", "y1"], ["height"]),
        helper.make_node("Mul", ["width", "height"], ["area"]),
        helper.make_node("Sqrt", ["area"], ["scale"]),
    ]
    graph = helper.make_graph(
        nodes,
        "detector_like",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [
            helper.make_tensor_value_info("selected", TensorProto.INT64, ["selected", 3]),
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [N, 8, 2, 2]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1, N, 1]),
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, N, 4]),
        ],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return model


def _run(model: onnx.ModelProto, image: np.ndarray) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(
        zip([o.name for o in session.get_outputs()], session.run(None, {"image": image}), strict=True)
    )


def _node_precisions(model: onnx.ModelProto) -> dict[str, int]:
    """Output name of each non-Cast node -> the element type it computes in."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {
        v.name: v.type.tensor_type.elem_type for v in (*inferred.graph.value_info, *inferred.graph.output)
    }
    return {
        node.output[0]: types.get(node.output[0], 0)
        for node in model.graph.node
        if node.op_type not in ("Cast", "Constant")
    }


def test_coordinates_compute_in_float32_and_features_in_float16():
    converted = convert_to_fp16(_detector_like_graph())
    precision = _node_precisions(converted)
    for name in ("scaled", "boxes", "nms_boxes", "rois", "width", "area", "pooled"):
        assert precision[name] == TensorProto.FLOAT, name
    for name in ("features_fp16", "delta_map", "score_map", "score_sigmoid"):
        matching = [key for key in precision if key.startswith(name.removesuffix("_fp16"))]
        assert matching and all(
            precision[key] == TensorProto.FLOAT16 for key in matching if key != "scores"
        ), name
    # RoiAlign reads the float16 features through a cast (one type for its two float inputs).
    roi_align = next(node for node in converted.graph.node if node.op_type == "RoiAlign")
    cast = next(node for node in converted.graph.node if node.output[0] == roi_align.input[0])
    assert cast.op_type == "Cast" and cast.attribute[0].i == TensorProto.FLOAT


def test_without_the_rule_the_class_offset_overflows_and_nms_changes(monkeypatch):
    model = _detector_like_graph()
    image = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    reference = _run(model, image)
    pinned = _run(convert_to_fp16(model), image)
    np.testing.assert_array_equal(pinned["selected"], reference["selected"])
    np.testing.assert_allclose(pinned["boxes"], reference["boxes"], rtol=0, atol=0.05)
    np.testing.assert_allclose(pinned["scale"], reference["scale"], rtol=1e-3)

    monkeypatch.setattr(fp16_module, "_COORDINATE_INPUTS", {})
    unpinned = _run(convert_to_fp16(model), image)
    # float16 coordinates near 900 are 0.5 pixel apart; offsets past 65504 are infinite.
    assert np.abs(unpinned["boxes"] - reference["boxes"]).max() > 0.1
    assert not np.array_equal(unpinned["selected"], reference["selected"])
