"""``litevit val --protocol test`` on the trained segmentation fixture: the published protocol
(sliding windows, multi-scale + flip) scored at the original image size, per backend x precision.

The fixture is ELSA UPerNet's smoke architecture trained on synthetic shape scenes
(``tests/fixtures/trained/make_seg_fixture.py``); the scenes scored here were not trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from litevit.calibration.int8 import Int8Options
from litevit.calibration.val import format_val, validate
from litevit.errors import DataError, LitevitError
from litevit.export import export_model
from litevit.runtime.bench import run_benchmark

VAL_SCENES = range(3000, 3012)
CALIB_SCENES = range(4000, 4040)


@pytest.fixture(scope="module")
def quantized_artifact(trained_upernet, shape_scenes, tmp_path_factory) -> Path:
    """The fixture exported for the slide protocol (64x64, dynamic batch, class scores) with FP16
    and INT8 graphs (INT8 calibrated on 40 other scenes)."""
    folder = tmp_path_factory.mktemp("upernet-shapes-int8")
    calib = shape_scenes(CALIB_SCENES) / "images"
    export_model(
        trained_upernet.facts["model"],
        weights=trained_upernet.weights,
        img_size=trained_upernet.facts["img_size"],
        model_kwargs=trained_upernet.facts["model_kwargs"],
        test_protocol=trained_upernet.facts["test_protocol"],
        dynamic_batch=True,
        seg_output="logits",
        fp16=True,
        int8=True,
        calib=calib,
        int8_options=Int8Options(samples=32, holdout=8),
        out_dir=folder,
        threads=1,
        progress=False,
        log=lambda s: None,
    )
    return folder


def test_slide_protocol_same_miou_in_torch_and_onnx_runtime_and_precisions(quantized_artifact, shape_scenes):
    data = shape_scenes(VAL_SCENES)
    result = validate(
        quantized_artifact,
        data,
        backends=("ort", "torch"),
        precisions=("fp32",),
        protocol="test",
        threads=1,
        progress=False,
    )
    ort, torch_row = (row.scores["mIoU"] for row in result.rows)
    print(f"\nfixture slide mIoU: ort fp32 {ort:.3f}, torch fp32 {torch_row:.3f}")
    assert ort == pytest.approx(torch_row, abs=0.01)
    assert ort > 80.0  # trained (all-background scores about 21)
    assert result.protocol and "sliding 64x64 windows at stride 43x43" in result.protocol
    assert "original size" in result.protocol and "k = class k-1" in result.label_rule

    precisions = validate(
        quantized_artifact,
        data,
        backends=("ort",),
        precisions=("fp32", "fp16", "int8"),
        protocol="test",
        threads=1,
        progress=False,
    )
    deltas = {row.precision: row.delta for row in precisions.rows}
    print(format_val(precisions))
    assert abs(deltas["fp16"]) < 0.5
    assert abs(deltas["int8"]) < 5.0


def test_multi_scale_flip_runs_and_is_recorded(quantized_artifact, shape_scenes):
    """--aug: 6 scales x 2 flips per image, softmax-averaged; min_size keeps every window 64x64,
    so the window-size artefact runs it."""
    data = shape_scenes(VAL_SCENES)
    single = validate(quantized_artifact, data, protocol="test", threads=1, progress=False, limit=4)
    aug = validate(quantized_artifact, data, protocol="test", aug=True, threads=1, progress=False, limit=4)
    single_miou, aug_miou = single.rows[0].scores["mIoU"], aug.rows[0].scores["mIoU"]
    print(f"\nfixture mIoU single-scale {single_miou:.3f}, ms+flip {aug_miou:.3f}")
    assert aug.protocol and "0.5, 0.75, 1, 1.25, 1.5, 1.75 + flip" in aug.protocol
    assert aug.rows[0].scores != single.rows[0].scores
    assert aug.rows[0].scores["mIoU"] > single.rows[0].scores["mIoU"] - 10.0
    payload = aug.to_dict()
    assert payload["protocol"] == aug.protocol and json.dumps(payload)


def test_label_rule_and_layout(quantized_artifact, shape_scenes, tmp_path):
    data = shape_scenes(range(3000, 3002))
    # Without reduce_zero_label the fixture's value 4 (class 3) is class 4: beyond 4 classes.
    with pytest.raises(DataError, match="beyond the model's 4 classes"):
        validate(quantized_artifact, data, protocol="test", reduce_zero_label=False, progress=False)
    # COCO-Stuff's converted names are found.
    renamed = tmp_path / "coco"
    (renamed / "images").mkdir(parents=True)
    (renamed / "annotations").mkdir()
    for image in (data / "images").iterdir():
        (renamed / "images" / image.name).write_bytes(image.read_bytes())
        mask = data / "annotations" / image.name
        (renamed / "annotations" / f"{image.stem}_labelTrainIds.png").write_bytes(mask.read_bytes())
    a = validate(quantized_artifact, data, protocol="test", threads=1, progress=False)
    b = validate(quantized_artifact, renamed, protocol="test", threads=1, progress=False)
    assert a.rows[0].scores == b.rows[0].scores
    with pytest.raises(LitevitError, match="segmentation models only|--protocol test"):
        validate(quantized_artifact, data, aug=True, progress=False)


def test_bench_times_the_protocol_and_the_graph(quantized_artifact):
    doc = run_benchmark(
        quantized_artifact,
        protocol="test",
        batches=[2],
        warmup=1,
        iterations=3,
        threads=1,
        allow_few_iterations=True,
        log=lambda s: None,
    )
    graph, end_to_end = doc["runs"]
    assert graph["measure"] == "graph" and graph["input_shape"] == [2, 3, 64, 64]
    assert end_to_end["measure"] == "protocol_end_to_end" and end_to_end["iterations"] == 3
    assert "sliding 64x64 windows" in end_to_end["timed_region"]
    assert end_to_end["test_protocol"]["graph_calls_per_image"] >= 1
    assert np.isfinite(end_to_end["latency_ms"]["mean"])
