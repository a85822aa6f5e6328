"""Exporting into a folder that holds an earlier export leaves files and manifest in agreement
(still-valid FP16/INT8 graphs kept, stale files and engines removed); a refused export leaves no
folder behind; options an export would silently ignore are refused in one sentence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from litevit._io import sha256_file
from litevit.artifacts import read_manifest, verify_files
from litevit.calibration.int8 import Int8Options
from litevit.cli import export_main
from litevit.export import export_model
from litevit.runtime.runners import open_runner


def _export(trained, out: Path, **kwargs):
    facts = trained.facts
    return export_model(
        facts["model"],
        weights=trained.weights,
        img_size=facts["img_size"],
        model_kwargs=facts["model_kwargs"],
        out_dir=out,
        progress=False,
        log=lambda line: None,
        **kwargs,
    )


def _files_on_disk(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name != "manifest.json" and not p.name.endswith(".engine")}


def _fake_engine(folder: Path, precision: str, source_sha: str) -> Path:
    """Bytes standing in for a built engine, with the sidecar `litevit build` writes."""
    engine = folder / f"lvt.{precision}.engine"
    engine.write_bytes(b"plan")
    sidecar = {"format": "litevit.engine/1", "source": {"onnx": "x", "sha256": source_sha}}
    (folder / f"{engine.name}.json").write_text(json.dumps(sidecar))
    return engine


def test_reexport_keeps_what_is_still_valid_and_removes_what_is_not(trained_lvt, digit_folder, tmp_path):
    out = tmp_path / "lvt"
    calib = tmp_path / "calib"
    shutil.copytree(digit_folder("train", layout="flat", limit=48), calib)
    first = _export(trained_lvt, out, fp16=True)
    fp16_sha = first.manifest["files"]["lvt.fp16.onnx"]["sha256"]
    valid_engine = _fake_engine(out, "fp16", fp16_sha)
    stale_engine = _fake_engine(out, "fp32", "0" * 64)
    unknown_engine = out / "lvt.int8.engine"  # no sidecar: nothing says where it came from
    unknown_engine.write_bytes(b"plan")

    second = _export(trained_lvt, out, int8=True, calib=calib, int8_options=Int8Options(holdout=16))
    manifest = read_manifest(out)
    assert second.kept == ["lvt.fp16.onnx"]
    assert set(manifest["files"]) == {
        "lvt.onnx",
        "lvt.fp16.onnx",
        "lvt.int8.onnx",
        "lvt.int8.ort.onnx",
        "lvt.int8.calib.json",
        "lvt.int8.report.json",
    }
    assert manifest["files"]["lvt.fp16.onnx"]["sha256"] == fp16_sha == sha256_file(out / "lvt.fp16.onnx")
    assert manifest["parity"]["lvt.fp16.onnx"] == first.manifest["parity"]["lvt.fp16.onnx"]
    assert _files_on_disk(out) == set(manifest["files"]) | {"lvt.fp16.engine.json"}
    verify_files(out, manifest)
    assert valid_engine.exists() and unknown_engine.exists()
    assert not stale_engine.exists() and not (out / "lvt.fp32.engine.json").exists()
    assert second.removed == ["lvt.fp32.engine", "lvt.fp32.engine.json"]
    # `bench --precision fp16` and every other reader find the FP16 graph the folder holds.
    open_runner(out, "ort", precision="fp16").close()

    # Another FP32 graph (inline ops): nothing derived from the old one survives.
    third = _export(trained_lvt, out, ops="inline")
    manifest = read_manifest(out)
    assert set(manifest["files"]) == {"lvt.onnx"} and manifest["calibration"] is None
    assert _files_on_disk(out) == {"lvt.onnx"}
    assert sorted(third.removed) == sorted(
        [
            "lvt.fp16.onnx",
            "lvt.int8.onnx",
            "lvt.int8.ort.onnx",
            "lvt.int8.calib.json",
            "lvt.int8.report.json",
            "lvt.fp16.engine",
            "lvt.fp16.engine.json",
        ]
    )
    assert unknown_engine.exists() and third.kept == []


@pytest.mark.parametrize(
    "argv, said",
    [
        (["--int8"], "--int8 needs --calib DIR"),
        (["--calib", "{tmp}"], "--calib applies to the INT8 graph only: add --int8"),
        (
            ["--holdout", "8", "--calib-samples", "40"],
            "--calib-samples, --holdout apply to the INT8 graph only",
        ),
        (
            ["--int8", "--calib", "{tmp}", "--percentile", "99.9"],
            "--percentile applies to --calib-method percentile",
        ),
        (["--int8", "--calib", "{tmp}", "--target-agreement", "0.9"], "add --keep-fp32 auto"),
        (["--use-ema"], "--use-ema picks the EMA weights of a checkpoint: add --weights PATH"),
        (
            ["--no-check", "--threads", "2"],
            "this export runs neither (--no-check, no --int8): drop --threads",
        ),
        (["--seg-output", "logits"], "--seg-output applies to segmentation models; lvt is a classification"),
        (
            ["--det-masks", "roi", "--score-thr", "0.3"],
            "--det-masks, --score-thr apply to detectors; lvt is a",
        ),
    ],
)
def test_refused_exports_say_why_and_leave_no_folder(tmp_path, capsys, argv, said):
    out = tmp_path / "new" / "lvt"
    code = export_main(["lvt", *[a.format(tmp=tmp_path) for a in argv], "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and said in err, err
    assert not (tmp_path / "new").exists()
