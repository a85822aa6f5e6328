"""``litevit bench`` and ``litevit report`` on detectors: the paper's pipeline with its stages, the
synthetic protocol with two inputs, and the TensorRT optimisation profiles of a detector graph."""

from __future__ import annotations

import onnx
import pytest

from litevit.artifacts import read_manifest
from litevit.errors import LitevitError
from litevit.runtime.bench import run_benchmark, write_bench_json
from litevit.runtime.bench_detection import coco_like_sizes
from litevit.runtime.report import build_report
from litevit.runtime.trt_build.profiles import optimisation_profiles

QUIET = {"log": lambda line: None}


def test_paper_protocol_times_graph_plus_post_and_each_stage(detector_artifact, tmp_path):
    folder = detector_artifact("shapes_panoptic_fpn")
    doc = run_benchmark(
        folder, protocol="paper", warmup=1, iterations=3, threads=1, allow_few_iterations=True, **QUIET
    )
    (run,) = doc["runs"]
    assert run["measure"] == "paper_end_to_end" and run["iterations"] == 3 and run["batch"] == 1
    assert "post-processing to the original image size" in run["timed_region"]
    stages = run["stages_ms"]
    assert set(stages) == {"preprocess", "graph", "postprocess"}
    # The run's latency is graph + post-processing (pre-processing is the data loader's, untimed).
    assert run["latency_ms"]["mean"] == pytest.approx(stages["graph"]["mean"] + stages["postprocess"]["mean"])
    assert run["pipeline_ms"]["mean"] == pytest.approx(
        run["latency_ms"]["mean"] + stages["preprocess"]["mean"]
    )
    images = run["paper_images"]
    assert images["first_sizes_hw"] == [list(hw) for hw in coco_like_sizes(5)]
    assert images["test_scale"] == [128, 128] and images["canvas"] == "per picture (dynamic H x W)"
    assert images["mean_detections"] > 0  # the trained fixture finds shapes, so masks are pasted

    path = write_bench_json(doc, tmp_path / "panoptic.json")
    report = build_report([path], tmp_path / "report")
    text = report["report.md"].read_text()
    assert "stages (p50): preprocess" in text and "FPS with pre-processing" in text


def test_synthetic_protocol_feeds_both_inputs_per_batch(detector_artifact):
    doc = run_benchmark(
        detector_artifact("shapes_mask_rcnn"),
        batches=[1, 2],
        warmup=0,
        iterations=2,
        allow_few_iterations=True,
        **QUIET,
    )
    assert [run["batch"] for run in doc["runs"]] == [1, 2]
    assert doc["runs"][1]["input_shape"] == [2, 3, 128, 128]


def test_paper_protocol_is_one_picture_at_a_time(detector_artifact):
    with pytest.raises(LitevitError, match="one picture at a time"):
        run_benchmark(detector_artifact("shapes_mask_rcnn"), protocol="paper", batches=[2], **QUIET)


def test_coco_like_sizes_are_fixed_and_landscape_mostly():
    sizes = coco_like_sizes(200)
    assert sizes == coco_like_sizes(200) and all(max(hw) == 640 and 400 <= min(hw) <= 480 for hw in sizes)
    assert 0.6 < sum(w > h for h, w in sizes) / len(sizes) < 0.9


def test_tensorrt_profiles_of_detector_graphs(detector_artifact):
    folder = detector_artifact("shapes_panoptic_fpn")
    manifest = read_manifest(folder)
    profiles = optimisation_profiles(onnx.load(folder / "lvt_panoptic_fpn.onnx"), manifest, {})
    # Dynamic canvas: from the smallest the model takes to a square of the export's long side.
    assert profiles["input"].as_dict() == {
        "min": [1, 3, 64, 64],
        "opt": [1, 3, 128, 128],
        "max": [1, 3, 128, 128],
    }
    assert profiles["image_shapes"].as_dict() == {"min": [1, 4], "opt": [1, 4], "max": [1, 4]}
    folder = detector_artifact("shapes_mask_rcnn")
    profiles = optimisation_profiles(
        onnx.load(folder / "elsa_swin_tiny_mask_rcnn.onnx"), read_manifest(folder), {}
    )
    # Dynamic batch: both inputs follow it.
    assert profiles["input"].as_dict() == {
        "min": [1, 3, 128, 128],
        "opt": [1, 3, 128, 128],
        "max": [8, 3, 128, 128],
    }
    assert profiles["image_shapes"].as_dict() == {"min": [1, 4], "opt": [1, 4], "max": [8, 4]}
