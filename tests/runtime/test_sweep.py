"""``litevit bench --sweep`` and its cost curves in ``litevit report``, on small exported artefacts."""

from __future__ import annotations

import csv
import io
import json

import pytest

from litevit.cli import main
from litevit.errors import LitevitError
from litevit.export.api import model_complexity
from litevit.runtime import sweep as sweep_module
from litevit.runtime.report import build_report, load_bench_json
from litevit.runtime.sweep import Sweep, format_sweep, parse_sweep, run_sweep

QUIET = {"log": lambda s: None, "allow_few_iterations": True}
FAST = {"warmup": 1, "iterations": 3, "threads": 1}


@pytest.fixture(scope="module")
def classifier(smoke_artifact):
    """Dynamic batch, static 64x64."""
    return smoke_artifact("lvt", dynamic_batch=True)


@pytest.fixture(scope="module")
def segmenter(smoke_artifact):
    """Dynamic H x W, static batch 1."""
    return smoke_artifact("lvt_seg", dynamic_hw=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("batch=1,2,4", Sweep("batch", (1, 2, 4))),
        ("batch", Sweep("batch")),
        ("size=256, 512x1024", Sweep("size", ((256, 256), (512, 1024)))),
        ("size", Sweep("size")),
    ],
)
def test_parse_sweep(text, expected):
    assert parse_sweep(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("depth=3", r"--sweep takes batch=N,N,\.\.\. or size=S,S,\.\.\."),
        ("batch=1,two", "each value must be a positive integer; got 'two'"),
        ("size=256x", "positive integer or HxW; got '256x'"),
        ("batch=0,1", "values must be positive"),
        ("batch=2,2", "values repeat"),
    ],
)
def test_parse_sweep_refuses_in_one_sentence(text, message):
    with pytest.raises(LitevitError, match=message):
        parse_sweep(text)


def test_batch_sweep_document(classifier):
    doc = run_sweep(classifier, parse_sweep("batch=1,2,4"), **FAST, **QUIET)
    manifest = json.loads((classifier / "manifest.json").read_text())
    per_image = manifest["complexity"]["macs"]
    assert doc["sweep"] == {
        "axis": "batch",
        "values": [1, 2, 4],
        "fixed": {"img_size": [64, 64]},
        "macs": "litevit.flops (fvcore convention): the manifest's count at the export size; "
        "per timed iteration = per image x batch",
    }
    assert [run["batch"] for run in doc["runs"]] == [1, 2, 4]
    for run in doc["runs"]:
        assert run["input_shape"] == [run["batch"], 3, 64, 64] and run["img_size"] == [64, 64]
        assert run["macs_per_image"] == per_image and run["macs"] == per_image * run["batch"]
        assert run["gmacs_per_s"] == pytest.approx(run["macs"] / (run["latency_ms"]["mean"] / 1e3) / 1e9)
        assert run["throughput_ips"] == pytest.approx(run["batch"] / run["latency_ms"]["mean"] * 1e3)
        assert run["iterations"] == 3
    # (the run's own notes, on machine load and sample counts, may be there too)
    assert [note for note in doc["notes"] if "MACs" in note] == []
    assert "batch sweep at 64x64" in format_sweep(doc)


def test_size_sweep_counts_macs_at_each_size(segmenter):
    doc = run_sweep(segmenter, parse_sweep("size=64,96x128"), batch=1, **FAST, **QUIET)
    manifest = json.loads((segmenter / "manifest.json").read_text())
    assert doc["sweep"]["values"] == [[64, 64], [96, 128]] and doc["sweep"]["fixed"] == {"batch": 1}
    first, second = doc["runs"]
    assert first["input_shape"] == [1, 3, 64, 64] and second["input_shape"] == [1, 3, 96, 128]
    assert first["macs_per_image"] == manifest["complexity"]["macs"]
    counted = model_complexity("lvt_seg", (96, 128), manifest["model_kwargs"])["macs"]
    assert second["macs_per_image"] == counted > first["macs_per_image"]


def test_size_sweep_without_torch_has_no_macs_off_the_export_size(segmenter, monkeypatch):
    monkeypatch.setattr(sweep_module, "has", lambda module: module != "torch")
    doc = run_sweep(segmenter, parse_sweep("size=64,96"), **FAST, **QUIET)
    assert [run["macs_per_image"] is None for run in doc["runs"]] == [False, True]
    assert [note for note in doc["notes"] if "MACs" in note] == [sweep_module.MACS_NEED_TORCH]


def test_default_sizes_follow_the_task(segmenter, classifier):
    manifest = json.loads((segmenter / "manifest.json").read_text())
    assert sweep_module._sizes(Sweep("size"), manifest, segmenter)[0] == (256, 256)
    assert sweep_module._sizes(Sweep("size"), manifest, segmenter)[-1] == (1024, 1024)
    cls_manifest = json.loads((classifier / "manifest.json").read_text())
    assert (224, 224) in sweep_module._sizes(Sweep("size"), cls_manifest, classifier)


def test_graph_without_the_swept_axis_is_refused_naming_the_export_flag(classifier, segmenter):
    with pytest.raises(
        LitevitError, match=r"takes batch 1 only; to benchmark batch 2, export it with --dynamic-batch\."
    ):
        run_sweep(segmenter, parse_sweep("batch=1,2"), **FAST, **QUIET)
    with pytest.raises(
        LitevitError, match=r"takes 64x64 images only; to benchmark 96x96, export it with --dynamic-hw\."
    ):
        run_sweep(classifier, parse_sweep("size=64,96"), **FAST, **QUIET)
    with pytest.raises(LitevitError, match=r"multiples of 32; the sweep has 70x70\."):
        run_sweep(segmenter, parse_sweep("size=70"), **FAST, **QUIET)


def test_cli_sweep_and_report_draw_cost_curves(classifier, segmenter, tmp_path, capsys):
    batch_json, size_json = tmp_path / "batch.json", tmp_path / "size.json"
    common = ["--iters", "2", "--warmup", "1", "--threads", "1", "--allow-few-iterations"]
    assert main(["bench", str(classifier), "--sweep", "batch=1,2", *common, "--json", str(batch_json)]) == 0
    assert main(["bench", str(segmenter), "--sweep", "size=64,96", *common, "--json", str(size_json)]) == 0
    assert load_bench_json(size_json)["sweep"]["axis"] == "size"

    assert main(["bench", str(classifier), "--sweep", "batch=1,2", "--batch", "2"]) == 2
    assert "--sweep batch=... gives the batch sizes: drop --batch." in capsys.readouterr().err

    written = build_report([batch_json, size_json], tmp_path / "report")
    assert {"cost_batch_batch.png", "cost_size_size.png"} <= set(written)
    assert all(
        written[name].stat().st_size > 10_000 for name in ("cost_batch_batch.png", "cost_size_size.png")
    )
    report = written["report.md"].read_text()
    section = report[report.index("## Cost curves") : report.index("## Plots")]
    assert "### lvt: batch sweep at 64×64" in section and "### lvt_seg: size sweep at batch 1" in section
    assert "| 96×96 | 1×3×96×96 |" in section
    # The per-model FPS-against-batch plot leaves the size sweep (many sizes at batch 1) out.
    assert "fps_vs_batch_lvt.png" in written and "fps_vs_batch_lvt_seg.png" not in written
    # report.csv gives each point its own MACs.
    rows = [
        r for r in csv.DictReader(io.StringIO(written["report.csv"].read_text())) if r["model"] == "lvt_seg"
    ]
    points = load_bench_json(size_json)["runs"]
    assert [int(r["macs"]) for r in rows] == [p["macs_per_image"] for p in points]
