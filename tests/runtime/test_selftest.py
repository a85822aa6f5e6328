"""litevit selftest against fake_tensorrt.py (a FAKE of the TensorRT API subset litevit uses):
proves the self-test's own logic (which engines it builds per TensorRT version, its table, its
exit status, its refusals), never TensorRT's behaviour."""

from __future__ import annotations

import argparse

import pytest
import test_trt_build
from test_trt_build import write_artifact

from litevit.errors import LitevitError
from litevit.runtime import selftest

install_trt = test_trt_build.install_trt  # the fake-TensorRT fixture of the build tests


def _args(*argv):
    parser = argparse.ArgumentParser()
    selftest.configure_selftest_parser(parser)
    return parser.parse_args([str(a) for a in argv])


def _table_rows(output):
    lines = output.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("precision"))
    return lines[start + 2 :]


@pytest.mark.parametrize(
    ("version", "precisions", "typing"),
    [
        ("10.3.0.26", ["fp32", "fp16", "int8 Q/DQ", "int8 implicit"], "weak"),
        ("11.4.0.106", ["fp32", "fp16", "int8 Q/DQ"], "strong"),
    ],
)
def test_selftest_builds_every_precision_the_version_has(
    install_trt, tmp_path, capsys, version, precisions, typing
):
    # Proves: every precision is built (implicit INT8 only where calibrators exist), on
    # synthetic calibration images it says are synthetic, and a clean run exits 0.
    install_trt(version)
    folder = write_artifact(tmp_path / "tiny")
    assert selftest.run_selftest(_args(folder, "--keep", tmp_path / "work")) == 0
    output = capsys.readouterr().out
    assert "synthetic calibration images" in output and "not accuracy" in output
    rows = _table_rows(output)
    assert [
        row.split()[0] + (" " + row.split()[1] if row.split()[1] in ("Q/DQ", "implicit") else "")
        for row in rows
    ] == precisions
    assert all(f" {typing} " in row and row.endswith("pass") for row in rows)
    assert all("CSA function, RASA function" in row for row in rows)
    assert len(list((tmp_path / "work" / "calibration").glob("*.png"))) == selftest.SYNTHETIC_IMAGES


def test_selftest_fails_when_an_engine_disagrees_or_cannot_be_built(install_trt, tmp_path, capsys):
    # Proves: a parity failure and a build refusal each make a FAIL row with the reason, and
    # the exit status is 1.
    install_trt(output_error=0.05)
    folder = write_artifact(tmp_path / "tiny")
    (folder / "tiny.int8.onnx").unlink()
    assert selftest.run_selftest(_args(folder)) == 1
    rows = _table_rows(capsys.readouterr().out)
    assert "FAIL: max abs" in rows[0]
    int8 = next(row for row in rows if row.startswith("int8 Q/DQ"))
    assert "FAIL: " in int8 and "tiny.int8.onnx' is listed in the manifest but missing" in int8


def test_selftest_without_torch_and_without_an_artifact_is_one_sentence(install_trt, monkeypatch):
    # Proves: with nothing to build from, the self-test says what to pass or install.
    install_trt()
    monkeypatch.setattr(selftest, "has", lambda module: False)
    with pytest.raises(LitevitError) as info:
        selftest.run_selftest(_args())
    assert str(info.value) == (
        "litevit selftest needs an artefact folder (litevit selftest ARTIFACT) or torch to export its smoke "
        "model: pip install 'litevit[author]'."
    )


def test_selftest_exports_the_smoke_lvt_when_torch_is_here(install_trt, tmp_path, capsys):
    # Proves: with no artefact, the self-test exports litevit's smoke LVT (FP32, FP16 and a Q/DQ
    # INT8 graph calibrated on its synthetic images) and builds and checks every precision from it.
    install_trt("10.3.0.26")
    assert selftest.run_selftest(_args("--keep", tmp_path / "work")) == 0
    output = capsys.readouterr().out
    assert "exporting the smoke lvt (64x64)" in output
    rows = _table_rows(output)
    assert len(rows) == 4 and all(row.endswith("pass") for row in rows), rows
    assert (tmp_path / "work" / "lvt" / "lvt.int8.onnx").is_file()
