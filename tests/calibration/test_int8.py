"""INT8 end to end on the trained LVT fixture: calibration from an image folder, the Q/DQ graph,
the keyed cache (reused only with the same key), refusals of bad folders, --keep-fp32, the
accuracy report and `litevit quant-report`."""

import json
import shutil

import numpy as np
import onnx
import pytest
from PIL import Image

from litevit.artifacts import graph_file
from litevit.calibration.int8 import CalibrationCacheError, Int8Options
from litevit.cli import main
from litevit.errors import DataError, LitevitError
from litevit.export import export_model
from litevit.runtime.runners import open_runner


def _export(trained, out, calib, **int8_kw):
    options = Int8Options(holdout=int8_kw.pop("holdout", 32), **int8_kw)
    return export_model(
        trained.facts["model"],
        weights=trained.weights,
        img_size=trained.facts["img_size"],
        model_kwargs=trained.facts["model_kwargs"],
        int8=True,
        calib=calib,
        int8_options=options,
        out_dir=out,
        progress=False,
        log=lambda line: None,
    )


@pytest.fixture(scope="module")
def calib_dir(digit_folder, tmp_path_factory):
    """A private copy of 96 training digits (some tests change files in it)."""
    copy = tmp_path_factory.mktemp("calib") / "images"
    shutil.copytree(digit_folder("train", layout="flat", limit=96), copy)
    return copy


@pytest.fixture(scope="module")
def artifact(trained_lvt, calib_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "lvt"
    return _export(trained_lvt, out, calib_dir), out


def test_export_writes_qdq_graph_cache_report_and_manifest(artifact):
    result, out = artifact
    assert result.passed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]["lvt.int8.onnx"]["precision"] == "int8"
    calibration = manifest["calibration"]
    assert calibration["images"] == 64 and calibration["unreadable"] == 0  # 96 found, 32 held out
    assert calibration["reused_cache"] is False
    report = json.loads((out / calibration["report"]).read_text())
    int8 = report["int8_written"]
    assert int8["images"] == 32
    # The fixture's goal: INT8 agrees with FP32 on >= 99 % of held-out digits, logits cosine >= 0.995.
    assert int8["agreement"] >= 0.99 and int8["cosine_mean"] >= 0.995
    cache = json.loads((out / calibration["cache"]).read_text())
    assert cache["key"] == calibration["key"] and len(cache["images"]) == 64
    with open_runner(out, "ort", precision="int8") as runner:
        x = np.zeros((1, 3, 32, 32), np.float32)
        assert runner.infer({runner.inputs()[0].name: x})[runner.outputs()[0].name].shape == (1, 10)


def test_the_same_calibration_gives_an_onnxruntime_graph_the_ort_runner_uses(artifact):
    _, out = artifact
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["files"]["lvt.int8.ort.onnx"]
    assert entry["precision"] == "int8" and entry["runtime"] == "onnxruntime"
    assert manifest["parity"]["lvt.int8.ort.onnx"]["passed"]
    report = json.loads((out / "lvt.int8.report.json").read_text())
    assert report["int8_onnxruntime"]["cosine_mean"] >= 0.995
    # TensorRT builds, reports and everything else get the TensorRT graph; ONNX Runtime its own.
    assert graph_file(out, manifest, "int8") == out / "lvt.int8.onnx"
    with open_runner(out, "ort", precision="int8") as runner:
        assert runner.path == out / "lvt.int8.ort.onnx"
    # Both carry the same INT8 weights (the ONNX Runtime graph leaves grouped convolutions in FP32).
    ort_weights, trt_weights = (
        {
            i.name: onnx.numpy_helper.to_array(i)
            for i in onnx.load(str(out / name)).graph.initializer
            if i.dims
        }
        for name in ("lvt.int8.ort.onnx", "lvt.int8.onnx")
    )
    shared = [n for n, w in trt_weights.items() if w.dtype == np.int8 and n in ort_weights]
    assert len(shared) > 10 and all(np.array_equal(ort_weights[n], trt_weights[n]) for n in shared)


def test_same_key_reuses_the_cache(artifact, trained_lvt, calib_dir):
    _, out = artifact
    first = json.loads((out / "lvt.int8.calib.json").read_text())
    again = _export(trained_lvt, out, calib_dir)
    assert again.manifest["calibration"]["reused_cache"] is True
    assert again.manifest["calibration"]["key"] == first["key"]


def test_a_cache_for_other_images_or_method_is_refused_until_recalibrate(trained_lvt, calib_dir, tmp_path):
    out = tmp_path / "lvt"
    _export(trained_lvt, out, calib_dir)
    with pytest.raises(CalibrationCacheError, match="different the calibration method.*--recalibrate"):
        _export(trained_lvt, out, calib_dir, method="percentile")
    changed = tmp_path / "changed"
    shutil.copytree(calib_dir, changed)
    first = sorted(changed.iterdir())[1]  # a calibration image (index 0 is held out)
    Image.open(first).rotate(90).save(first)
    with pytest.raises(CalibrationCacheError, match="the calibration images"):
        _export(trained_lvt, out, changed)
    redone = _export(trained_lvt, out, changed, recalibrate=True)
    assert redone.manifest["calibration"]["reused_cache"] is False


def _write_pngs(folder, count, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(start, start + count):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"img{i:03d}.png")


def test_bad_folders_are_refused_in_one_sentence(trained_lvt, tmp_path):
    with pytest.raises(LitevitError, match="--int8 needs --calib DIR"):
        export_model("lvt", int8=True, out_dir=tmp_path / "a", log=lambda line: None)
    with pytest.raises(DataError, match="does not exist"):
        _export(trained_lvt, tmp_path / "b", tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"has no images \(looked for .jpg, .jpeg, .png"):
        _export(trained_lvt, tmp_path / "c", empty)
    tiny = tmp_path / "tiny"
    _write_pngs(tiny, 10)
    with pytest.raises(DataError, match="has 10 image\\(s\\); INT8 calibration needs at least 32"):
        _export(trained_lvt, tmp_path / "d", tiny)
    assert not (tmp_path / "d" / "lvt.onnx").exists()  # refused before exporting anything


def test_unreadable_images_are_named_and_never_replaced(trained_lvt, tmp_path):
    mostly_broken = tmp_path / "broken"
    _write_pngs(mostly_broken, 5)
    for i in range(35):
        (mostly_broken / f"bad{i:02d}.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"only 5 of 40 calibration images .* could be read.*bad00.png"):
        _export(trained_lvt, tmp_path / "e", mostly_broken, holdout=0)
    some_broken = tmp_path / "some"
    _write_pngs(some_broken, 40)
    (some_broken / "img005.png").write_bytes(b"truncated")
    result = _export(trained_lvt, tmp_path / "f", some_broken, holdout=0)
    assert result.manifest["calibration"]["unreadable"] == 1
    assert any("1 unreadable file: img005.png" in table for table in result.tables)
    cache = json.loads((tmp_path / "f" / "lvt.int8.calib.json").read_text())
    assert cache["unreadable"][0][0] == "img005.png"


def test_keep_fp32_names_and_auto(trained_lvt, calib_dir, tmp_path):
    with pytest.raises(LitevitError, match="--keep-fp32 names no quantized layer or module: nonsense"):
        _export(trained_lvt, tmp_path / "g", calib_dir, keep_fp32=["nonsense"])
    named = _export(trained_lvt, tmp_path / "h", calib_dir, keep_fp32=["head"])
    assert named.manifest["calibration"]["fp32_layers"] == ["head"]
    # Target 1.0 with a cosine that is never exactly 1 forces the search to keep groups in FP32.
    auto = _export(trained_lvt, tmp_path / "i", calib_dir, keep_fp32="auto", target_agreement=1.0)
    report = json.loads((tmp_path / "i" / "lvt.int8.report.json").read_text())
    ranking = [entry["group"] for entry in report["sensitivity"]]
    kept = report["keep_fp32_auto"]["kept"]
    assert kept == ranking[: len(kept)]  # most sensitive first
    assert auto.manifest["calibration"]["fp32_layers"] == kept
    assert "ort_cpu_latency_ms" in report or not kept


def test_quant_report_and_check_commands(artifact, digit_folder, capsys):
    _, out = artifact
    assert (
        main(["quant-report", str(out), "--data", str(digit_folder("test", limit=40)), "--limit", "40"]) == 0
    )
    printed = capsys.readouterr().out
    assert "INT8 as written (0 group(s) in FP32): top-1 agreement" in printed
    assert "per-layer sensitivity" in printed
    assert main(["check", str(out)]) == 0
    assert "lvt.int8.onnx: hash verified" in capsys.readouterr().out
