"""`litevit bench` and `litevit report` end to end, on the deployment side (torch blocked)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from litevit.export import export_model
from litevit.models import get_model_cfg

BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['onnxscript'] = None\n"


def _cli(args: list[str], cwd) -> subprocess.CompletedProcess:
    code = BLOCK_TORCH + f"from litevit.cli import main; sys.exit(main({args!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("art") / "lvt_seg"
    export_model(
        "lvt_seg",
        img_size=(64, 64),
        dynamic_batch=True,
        out_dir=out,
        model_kwargs=get_model_cfg("lvt_seg").smoke_arch,
        log=lambda s: None,
    )
    return out


def test_bench_and_report_without_torch(artifact, tmp_path):
    run_json = tmp_path / "run.json"
    proc = _cli(
        [
            "bench",
            str(artifact),
            "--batch",
            "1",
            "2",
            "--iters",
            "5",
            "--allow-few-iterations",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--json",
            str(run_json),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "timed region:" in proc.stdout and "FPS" in proc.stdout
    doc = json.loads(run_json.read_text())
    assert doc["schema"] == "litevit.bench/1" and doc["backend"] == "ort" and doc["model"] == "lvt_seg"
    assert [r["batch"] for r in doc["runs"]] == [1, 2]
    assert all(r["iterations"] == 5 and r["latency_ms"]["min"] <= r["latency_ms"]["p50"] for r in doc["runs"])
    assert doc["complexity"]["macs"] > 0  # from the manifest: no torch needed
    report_dir = tmp_path / "report"
    proc = _cli(["report", str(run_json), "--out", str(report_dir)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "lvt_seg" in (report_dir / "report.md").read_text()
    assert (report_dir / "report.csv").read_text().count("\n") >= 3


def test_bench_refuses_bad_targets_in_one_line(artifact, tmp_path):
    for args, fragment in (
        (["bench", str(tmp_path / "nothing")], "nothing"),
        (["bench", str(artifact), "--backend", "trt"], "engine"),
        (["report", str(artifact / "manifest.json"), "--out", str(tmp_path / "r")], "manifest.json"),
    ):
        proc = _cli(args, tmp_path)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("litevit: error:") and fragment in lines[0].lower()
