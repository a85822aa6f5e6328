"""``litevit serve`` with detectors: the image endpoint's JSON (boxes, scores, names, RLE masks,
panoptic segments) equals the host pipeline's result, and KServe v2 takes both graph inputs."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("tritonclient.http")

from test_serve import running_server

from litevit.artifacts import read_manifest
from litevit.runtime.detection import DetectionPreprocessing, model_categories, postprocess
from litevit.runtime.runners import open_runner
from litevit.synthetic_shapes import shapes_scene


def _rle_decode(rle: dict) -> np.ndarray:
    """COCO's uncompressed RLE (column-major runs, zeros first) -> (H, W) bool."""
    height, width = rle["size"]
    flat = np.zeros(height * width, bool)
    position, value = 0, False
    for count in rle["counts"]:
        flat[position : position + count] = value
        position += count
        value = not value
    return flat.reshape(width, height).T


@pytest.fixture(scope="module")
def server(detector_artifact):
    with running_server(
        str(detector_artifact("shapes_mask_rcnn")),
        str(detector_artifact("shapes_panoptic_fpn")),
        "--threads",
        "1",
    ) as running:
        yield running


def _png(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def _expected(folder, picture):
    manifest = read_manifest(folder)
    feeds, (geometry,) = DetectionPreprocessing.from_manifest(manifest).batch([picture])
    with open_runner(folder, threads=1) as runner:
        outputs = runner.infer(feeds)
    return postprocess(outputs, 0, geometry, model_categories(manifest))


def test_image_endpoint_returns_detections_with_names_and_rle_masks(server, detector_artifact):
    picture = shapes_scene(3, seed=7, size=(100, 150)).image  # not the canvas size: rescaled
    status, _, body = server.request("POST", "/v2/models/elsa_swin_tiny_mask_rcnn/image", _png(picture))
    assert status == 200, body
    answer = json.loads(body)
    assert answer["image"] == {"height": 100, "width": 150}
    expected = _expected(detector_artifact("shapes_mask_rcnn"), picture)
    detections = answer["detections"]
    assert len(detections) == len(expected.scores) > 0
    for entry, box, score, label, mask in zip(
        detections, expected.boxes, expected.scores, expected.labels, expected.masks, strict=True
    ):
        np.testing.assert_allclose(entry["box"], box, atol=0.01)
        assert entry["score"] == pytest.approx(float(score), abs=1e-5) and entry["label"] == label
        assert entry["name"] == f"class {label}" and entry["category_id"] == label + 1
        np.testing.assert_array_equal(_rle_decode(entry["mask"]), mask)

    status, _, body = server.request(
        "POST", "/v2/models/elsa_swin_tiny_mask_rcnn/image?masks=none&min_score=0.9", _png(picture)
    )
    kept = json.loads(body)["detections"]
    assert all("mask" not in entry and entry["score"] >= 0.9 for entry in kept)
    assert len(kept) == sum(float(s) >= 0.9 for s in expected.scores)


def test_image_endpoint_returns_panoptic_segments(server, detector_artifact):
    picture = shapes_scene(5, seed=7, size=(128, 128)).image
    status, _, body = server.request("POST", "/v2/models/lvt_panoptic_fpn/image", _png(picture))
    assert status == 200, body
    segments = json.loads(body)["segments"]
    expected = _expected(detector_artifact("shapes_panoptic_fpn"), picture)
    assert [s["id"] for s in segments] == [s["id"] for s in expected.segments] and segments
    for segment in segments:
        mask = _rle_decode(segment["mask"])
        np.testing.assert_array_equal(mask, expected.panoptic == segment["id"])
        assert segment["area"] == int(mask.sum())
        # A model trained on other data (label set "custom"): "class N", things first (3 here).
        assert segment["name"] == f"class {segment['label']}"
        assert segment["isthing"] == (segment["label"] < 3)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("masks=polygon", "masks must be one of rle, none"),
        ("min_score=2", "min_score must be a number in [0, 1]"),
    ],
)
def test_bad_queries_are_400(server, query, message):
    picture = np.zeros((64, 64, 3), np.uint8)
    status, _, body = server.request("POST", f"/v2/models/lvt_panoptic_fpn/image?{query}", _png(picture))
    assert status == 400 and message in json.loads(body)["error"]


def test_kserve_infer_takes_both_inputs(server, detector_artifact):
    folder = detector_artifact("shapes_mask_rcnn")
    picture = shapes_scene(1, seed=7, size=(128, 128)).image
    feeds, _ = DetectionPreprocessing.from_manifest(read_manifest(folder)).batch([picture])
    payload = {
        "inputs": [
            {"name": name, "shape": list(array.shape), "datatype": "FP32", "data": array.ravel().tolist()}
            for name, array in feeds.items()
        ],
        "outputs": [{"name": "boxes"}, {"name": "num_detections"}],
    }
    status, _, body = server.request(
        "POST", "/v2/models/elsa_swin_tiny_mask_rcnn/infer", json.dumps(payload).encode()
    )
    assert status == 200, body
    outputs = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in json.loads(body)["outputs"]}
    with open_runner(folder, threads=1) as runner:
        expected = runner.infer(feeds)
    np.testing.assert_array_equal(outputs["num_detections"], expected["num_detections"])
    np.testing.assert_allclose(outputs["boxes"], expected["boxes"], atol=1e-4)
    status, _, metadata = server.request("GET", "/v2/models/elsa_swin_tiny_mask_rcnn")
    inputs = json.loads(metadata)["inputs"]
    assert [(i["name"], i["shape"]) for i in inputs] == [
        ("input", [-1, 3, 128, 128]),
        ("image_shapes", [-1, 4]),
    ]
