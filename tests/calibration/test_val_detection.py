"""``litevit val`` on detectors: box/mask AP and PQ of the trained fixtures on held-out synthetic
shapes, PyTorch and ONNX Runtime alike, and one-sentence refusals of data it cannot score."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from litevit.calibration.val import configure_val_parser, format_val, run_val, validate
from litevit.errors import DataError

pytest.importorskip("pycocotools")

# A model that can be right, not random weights: far above what an untrained detector scores (0).
FLOORS = {"box AP": 50.0, "mask AP": 50.0, "PQ": 50.0}
# PyTorch and ONNX Runtime FP32 run the same computation; their scores agree within this (points).
TORCH_ORT_POINTS = 0.5
FP16_POINTS = 2.0


def _rows(result):
    return {(row.backend, row.precision): row for row in result.rows}


def test_mask_rcnn_box_and_mask_ap_equal_in_torch_and_ort(
    detector_artifact, shapes_heldout, trained_detector
):
    folder = detector_artifact("shapes_mask_rcnn")
    result = validate(
        folder, shapes_heldout, backends=("torch", "ort"), precisions=("fp32",), threads=1, progress=False
    )
    assert result.columns == ["box AP", "box AP50", "box AP75", "mask AP", "mask AP50", "mask AP75"]
    assert result.metric == "box AP" and result.images == 24
    rows = _rows(result)
    torch_row, ort_row = rows["torch", "fp32"], rows["ort", "fp32"]
    for name in ("box AP", "mask AP"):
        assert ort_row.scores[name] >= FLOORS[name], (name, ort_row.scores)
    for name in result.columns:
        assert abs(ort_row.scores[name] - torch_row.scores[name]) <= TORCH_ORT_POINTS, name
    # What make_fixture.py measured through the same pipeline.
    recorded = trained_detector("shapes_mask_rcnn").facts["heldout"]["scores"]["ort"]
    assert ort_row.scores == pytest.approx(recorded, abs=0.01)
    text = format_val(result)
    assert "Δbox AP vs fp32" in text and "box AP" in text


def test_mask_rcnn_fp16_costs_little(detector_artifact, shapes_heldout):
    result = validate(
        detector_artifact("shapes_mask_rcnn"),
        shapes_heldout,
        precisions=("fp32", "fp16"),
        limit=12,
        threads=1,
        progress=False,
    )
    rows = _rows(result)
    assert rows["ort", "fp16"].delta is not None and abs(rows["ort", "fp16"].delta) <= FP16_POINTS
    assert rows["ort", "fp16"].scores["mask AP"] >= FLOORS["mask AP"]
    assert any("--limit 12: 12 of 24" in note for note in result.notes)


def test_panoptic_fpn_pq_equal_in_torch_and_ort(detector_artifact, shapes_heldout):
    result = validate(
        detector_artifact("shapes_panoptic_fpn"),
        shapes_heldout,
        backends=("torch", "ort"),
        threads=1,
        progress=False,
    )
    assert result.columns == ["PQ", "SQ", "RQ", "PQ_th", "PQ_st"]
    rows = _rows(result)
    assert rows["ort", "fp32"].scores["PQ"] >= FLOORS["PQ"], rows["ort", "fp32"].scores
    for name in result.columns:
        assert abs(rows["ort", "fp32"].scores[name] - rows["torch", "fp32"].scores[name]) <= TORCH_ORT_POINTS


def test_val_cli_with_split_and_json(detector_artifact, shapes_heldout, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    configure_val_parser(parser)
    out = tmp_path / "val.json"
    args = parser.parse_args(
        [str(detector_artifact("shapes_panoptic_fpn")), "--data", str(shapes_heldout), "--split", "val",
         "--limit", "4", "--threads", "1", "--json", str(out)]
    )  # fmt: skip
    assert run_val(args) == 0
    document = json.loads(out.read_text())
    assert document["task"] == "panoptic" and document["rows"][0]["images"] == 4
    assert "PQ" in capsys.readouterr().out


def test_data_the_detector_cannot_score_is_refused(detector_artifact, shapes_heldout, tmp_path):
    panoptic = detector_artifact("shapes_panoptic_fpn")
    only_instances = tmp_path / "instances_only"
    shutil.copytree(shapes_heldout, only_instances)
    (only_instances / "annotations" / "panoptic_val.json").unlink()
    with pytest.raises(DataError, match=r"has no annotations/panoptic_\*\.json"):
        validate(panoptic, only_instances, progress=False)
    with pytest.raises(DataError, match="has no annotations/instances_test.json"):
        validate(detector_artifact("shapes_mask_rcnn"), shapes_heldout, split="test", progress=False)
    renamed = tmp_path / "renamed"
    shutil.copytree(shapes_heldout, renamed)
    instances = renamed / "annotations" / "instances_val.json"
    data = json.loads(instances.read_text())
    data["categories"].append({"id": 9, "name": "star"})
    instances.write_text(json.dumps(data))
    # 4 categories: not the model's 3 classes, so they are called "class N" and cannot match.
    with pytest.raises(DataError, match="category 1 is 'circle' but 'class 0' for elsa_swin_tiny_mask_rcnn"):
        validate(detector_artifact("shapes_mask_rcnn"), renamed, progress=False)


@pytest.mark.slow  # a third detector export (the 28x28 mask output)
def test_roi_masks_pasted_on_the_host_score_like_canvas_masks(
    detector_artifact, shapes_heldout, trained_detector, tmp_path
):
    """``--det-masks roi``: 28 x 28 probabilities out of the graph (gate: their values), pasted at the
    original size on the host as mmdet does; PyTorch rebuilt from the manifest gives the same."""
    from litevit.export import export_model
    from litevit.export.detection import DetectionOptions

    trained = trained_detector("shapes_mask_rcnn")
    folder = tmp_path / "roi"
    result = export_model(
        trained.facts["model"],
        weights=trained.weights,
        img_size=trained.facts["img_size"],
        model_kwargs=trained.facts["model_kwargs"],
        detection=DetectionOptions("roi"),
        out_dir=folder,
        threads=1,
        log=lambda line: None,
    )
    assert result.passed and result.manifest["outputs"][4] == {
        "name": "masks",
        "dtype": "float32",
        "shape": [1, 20, 28, 28],
    }
    roi = _rows(validate(folder, shapes_heldout, backends=("torch", "ort"), threads=1, progress=False))
    canvas = _rows(validate(detector_artifact("shapes_mask_rcnn"), shapes_heldout, threads=1, progress=False))
    assert roi["ort", "fp32"].scores == pytest.approx(roi["torch", "fp32"].scores, abs=TORCH_ORT_POINTS)
    assert roi["ort", "fp32"].scores["box AP"] == pytest.approx(
        canvas["ort", "fp32"].scores["box AP"], abs=0.01
    )
    # The same detections; masks pasted at the original size instead of resized from the canvas.
    assert abs(roi["ort", "fp32"].scores["mask AP"] - canvas["ort", "fp32"].scores["mask AP"]) <= 3.0
