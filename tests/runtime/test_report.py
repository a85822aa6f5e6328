"""`litevit report`: merging the committed sample bench JSONs into report.md, report.csv and plots.

The samples in tests/fixtures/bench are hand-written (see the README there); expected values are
recomputed here from the raw JSON, never taken from the report code.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from litevit.errors import LitevitError
from litevit.runtime.report import PAPER_REFERENCE, build_report, load_bench_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bench"
SAMPLES = sorted(FIXTURES.glob("*.json"))


def _raw(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _entry(name: str, batch: int, measure: str) -> dict:
    return next(r for r in _raw(name)["runs"] if r["batch"] == batch and r["measure"] == measure)


def _fps(name: str, batch: int, measure: str) -> float:
    return _entry(name, batch, measure)["fps"]


def _by_key(rows: list[dict[str, str]]) -> dict[tuple[str, int, str], dict[str, str]]:
    return {(r["run"], int(r["batch"]), r["measure"]): r for r in rows}


def test_samples_are_valid_bench_documents():
    assert len(SAMPLES) >= 3
    for path in SAMPLES:
        doc = load_bench_json(path)
        assert doc["schema"] == "litevit.bench/1"
        for run in doc["runs"]:  # the samples keep the schema's own arithmetic
            assert run["fps"] == pytest.approx(run["batch"] / run["latency_ms"]["mean"] * 1000, rel=1e-3)


def test_report_tables_speedups_and_reference(tmp_path):
    written = build_report(SAMPLES, tmp_path)
    assert written["report.md"] == tmp_path / "report.md"
    assert written["report.csv"] == tmp_path / "report.csv"
    md = (tmp_path / "report.md").read_text()

    # One table per model x device; the Jetson's power mode is part of the device.
    assert "### lvt_seg on Tesla V100-SXM2-32GB" in md
    assert "### lvt_seg on Orin (nvgpu) [nvpmodel MAXN, jetson_clocks on]" in md
    assert "### lvt on Intel(R) Xeon(R) Processor" in md
    assert "### mobile_former_294m on Intel(R) Xeon(R) Processor" in md
    # Environment, timing scope and the runs' notes are stated.
    assert "JetPack 6.1 (L4T 36.4.0)" in md and "TensorRT 10.4.0" in md
    for path in SAMPLES:
        for run in json.loads(path.read_text())["runs"]:
            assert run["timed_region"] in md
    assert "(host)" in md and "(compute only)" in md and "(with copies)" in md
    assert "--protocol paper: 200 timed images" in md
    # Default baseline: the slowest lvt_seg run is the PyTorch FP32 paper-protocol one.
    assert "Speed-up baseline: run `v100_torch_fp32_lvt_seg_paper`" in md
    paper_protocol_fps = _fps("v100_torch_fp32_lvt_seg_paper", 1, "paper_end_to_end")
    expected = _fps("v100_trt_fp16_lvt_seg", 1, "with_copies") / paper_protocol_fps
    assert f"{expected:.2f}× †" in md  # a different timing scope from the baseline's is flagged
    # The paper's figure, labelled, with its protocol.
    assert PAPER_REFERENCE["lvt_seg"].fps == 45.5
    assert "paper FPS (ref., one NVIDIA V100)" in md
    assert "45.5 FPS at batch 1 on one NVIDIA V100" in md
    assert "2000 images" in md and "200 images after 5 warm-up" in md

    rows = _csv_rows(tmp_path / "report.csv")
    assert len(rows) == sum(len(json.loads(p.read_text())["runs"]) for p in SAMPLES)
    by_key = _by_key(rows)
    orin_1 = by_key["orin_trt_fp16_lvt_seg", 1, "with_copies"]
    assert float(orin_1["speedup"]) == pytest.approx(
        _fps("orin_trt_fp16_lvt_seg", 1, "with_copies") / paper_protocol_fps
    )
    assert orin_1["baseline_run"] == "v100_torch_fp32_lvt_seg_paper"
    assert orin_1["paper_fps"] == "45.5"
    assert orin_1["nvpmodel_mode"] == "MAXN" and orin_1["jetpack"] == "6.1"
    power = _entry("orin_trt_fp16_lvt_seg", 1, "with_copies")["power"]
    assert float(orin_1["power_w"]) == pytest.approx(power["total_mw_mean"] / 1000)
    assert orin_1["power_rail"] == "VDD_IN"
    # Board power over images per second: the energy bench recorded agrees with its inputs.
    assert float(orin_1["energy_mj_per_image"]) == pytest.approx(
        power["total_mw_mean"] / _fps("orin_trt_fp16_lvt_seg", 1, "with_copies"), rel=1e-3
    )
    # The baseline has no batch-4 or batch-8 measurement: no speed-up rather than a wrong one.
    assert by_key["orin_trt_fp16_lvt_seg", 4, "compute_only"]["speedup"] == ""
    assert by_key["cpu_ort_fp32_lvt", 8, "host"]["paper_fps"] == ""
    p99 = _entry("cpu_ort_fp32_lvt", 8, "host")["latency_ms"]["p99"]
    assert float(by_key["cpu_ort_fp32_lvt", 8, "host"]["latency_p99_ms"]) == p99
    assert not list(tmp_path.glob(".*.partial"))


def test_named_baseline(tmp_path):
    build_report(SAMPLES, tmp_path, baseline="v100_trt_fp16_lvt_seg")
    rows = _by_key(_csv_rows(tmp_path / "report.csv"))
    assert float(rows["v100_trt_fp16_lvt_seg", 8, "with_copies"]["speedup"]) == 1.0
    for measure in ("compute_only", "with_copies"):  # each against the baseline's same measure
        assert float(rows["orin_trt_fp16_lvt_seg", 1, measure]["speedup"]) == pytest.approx(
            _fps("orin_trt_fp16_lvt_seg", 1, measure) / _fps("v100_trt_fp16_lvt_seg", 1, measure)
        )
    assert rows["cpu_ort_fp32_lvt", 1, "host"]["speedup"] == ""  # no lvt run matches this baseline
    md = (tmp_path / "report.md").read_text()
    assert "No run of lvt, mobile_former_294m matches it" in md

    build_report(SAMPLES, tmp_path, baseline="ort/cpu")
    rows = _by_key(_csv_rows(tmp_path / "report.csv"))
    assert float(rows["cpu_ort_fp32_mobile_former_294m", 8, "host"]["speedup"]) == 1.0
    assert rows["v100_trt_fp16_lvt_seg", 1, "compute_only"]["speedup"] == ""


def test_no_paper_figure_where_the_bench_says_it_does_not_apply(tmp_path):
    doc = _raw("orin_trt_fp16_lvt_seg")
    doc["reference"] = None  # what bench writes for an artefact that is not the paper's model
    (tmp_path / "smoke_lvt_seg.json").write_text(json.dumps(doc))
    build_report([tmp_path / "smoke_lvt_seg.json"], tmp_path / "out")
    assert {r["paper_fps"] for r in _csv_rows(tmp_path / "out" / "report.csv")} == {""}
    assert "45.5" not in (tmp_path / "out" / "report.md").read_text()


def test_ambiguous_or_unknown_baseline_is_one_sentence(tmp_path):
    with pytest.raises(LitevitError, match="matches 2 runs of lvt_seg") as info:
        build_report(SAMPLES, tmp_path, baseline="trt/cuda")
    assert "orin_trt_fp16_lvt_seg" in str(info.value) and "v100_trt_fp16_lvt_seg" in str(info.value)
    with pytest.raises(LitevitError, match="matches no run; choose one of: .*ort/cpu") as info:
        build_report(SAMPLES, tmp_path, baseline="ort/cuda:0")
    assert "\n" not in str(info.value)


def test_runs_from_several_machines_with_the_same_file_name(tmp_path):
    for machine in ("jetson", "desktop"):
        (tmp_path / machine).mkdir()
        shutil.copy(FIXTURES / "cpu_ort_fp32_lvt.json", tmp_path / machine / "run.json")
    paths = [tmp_path / "jetson" / "run.json", tmp_path / "desktop" / "run.json"]
    build_report([*paths, paths[0]], tmp_path / "out")  # the same file twice counts once
    runs = [r["run"] for r in _csv_rows(tmp_path / "out" / "report.csv")]
    assert runs == ["jetson/run"] * 2 + ["desktop/run"] * 2


def test_plots_are_png_images(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    written = build_report(SAMPLES, tmp_path)
    expected = {"flops_vs_latency.png"} | {
        f"{kind}_{model}.png"
        for kind in ("latency", "fps_vs_batch")
        for model in ("lvt", "lvt_seg", "mobile_former_294m")
    }
    assert expected <= set(written)
    for name in expected:
        image = imread(tmp_path / name)
        assert image.shape[0] > 300 and image.shape[1] > 600
        assert image.std() > 0.05  # something is drawn
        assert f"]({name})" in (tmp_path / "report.md").read_text()


def test_without_torch_or_matplotlib_md_and_csv_still_come(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['matplotlib'] = None\n"
        "from litevit.runtime.report import build_report\n"
        f"print(sorted(build_report({[str(p) for p in SAMPLES]!r}, {str(tmp_path)!r})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["['report.csv',", "'report.md']"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv", "report.md"]
    md = (tmp_path / "report.md").read_text()
    assert "Plots were not drawn because matplotlib is not installed: pip install 'litevit[report]'." in md


def _broken(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _without_p99() -> str:
    doc = _raw("cpu_ort_fp32_lvt")
    del doc["runs"][1]["latency_ms"]["p99"]
    return json.dumps(doc)


def _bool_batch() -> str:
    doc = _raw("cpu_ort_fp32_lvt")
    doc["runs"][0]["batch"] = True
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"schema": "litevit.bench/1", "runs": [', "is not valid JSON (Expecting value at line 1"),
        ('{"name": "resnet50", "latency": 3.2}', 'is not a litevit benchmark file: it has no "schema" key'),
        ("[1, 2, 3]", 'is not a litevit benchmark file: it has no "schema" key'),
        ('{"schema": "trtexec/1"}', "its schema is 'trtexec/1', not 'litevit.bench/1'"),
        ('{"schema": "litevit.bench/1", "model": "lvt"}', "'backend' must be a non-empty string"),
        (_without_p99(), "runs[1].latency_ms.p99 must be a number of milliseconds"),
        (_bool_batch(), "runs[0].batch must be a positive integer"),
    ],
)
def test_malformed_or_foreign_json_is_one_sentence_naming_the_file(tmp_path, text, message):
    path = _broken(tmp_path, "bad.json", text)
    with pytest.raises(LitevitError) as info:
        build_report([SAMPLES[0], path], tmp_path / "out")
    sentence = str(info.value)
    assert str(path) in sentence and message in sentence
    assert "\n" not in sentence and sentence.endswith(".")
    assert not (tmp_path / "out").exists()  # nothing written for a bad input


def test_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(LitevitError, match=r"cannot read benchmark file .*nowhere\.json"):
        build_report([tmp_path / "nowhere.json"], tmp_path / "out")
