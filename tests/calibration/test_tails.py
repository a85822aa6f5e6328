"""The fast per-layer sensitivity (each candidate runs only the tail of the graph it changes) against
the whole-graph method it replaced, on the trained LVT fixture; the ranking's image subset, its
progress estimate and the quant-report options around it."""

import io
import json
import shutil

import onnx
import pytest

from litevit._progress import Progress
from litevit.artifacts import graph_file, read_manifest
from litevit.calibration.diagnose import HeldOutSet, groups_of, rank_layers
from litevit.calibration.images import Preprocessing, evenly_spaced, list_images, load_images
from litevit.calibration.int8 import Int8Options, graph_batch, stack_batches
from litevit.calibration.qdq import fold_weight_transposes, quant_sites, quantize
from litevit.calibration.quant_report import _cached_thresholds
from litevit.calibration.tails import TailEvaluator
from litevit.cli import main
from litevit.export import export_model


@pytest.fixture(scope="module")
def calibrated(trained_lvt, digit_folder, tmp_path_factory):
    """The fixture exported with --int8, its folded FP32 graph, sites, thresholds and 16 held-out digits."""
    calib = tmp_path_factory.mktemp("tails-calib") / "images"
    shutil.copytree(digit_folder("train", layout="flat", limit=64), calib)
    out = tmp_path_factory.mktemp("tails") / "lvt"
    facts = trained_lvt.facts
    export_model(
        facts["model"],
        weights=trained_lvt.weights,
        img_size=facts["img_size"],
        model_kwargs=facts["model_kwargs"],
        int8=True,
        calib=calib,
        int8_options=Int8Options(holdout=16),
        out_dir=out,
        progress=False,
        log=lambda line: None,
    )
    manifest = read_manifest(out)
    fp32 = onnx.load(graph_file(out, manifest, "fp32"))
    amax = _cached_thresholds(out, manifest, manifest["files"]["lvt.onnx"]["sha256"])
    paths = evenly_spaced(list_images(digit_folder("test", layout="flat", limit=16)), 16)
    batches = stack_batches(
        load_images(paths, Preprocessing.from_manifest(manifest)).arrays, graph_batch(fp32)
    )
    folded = fold_weight_transposes(fp32)
    sites = quant_sites(folded)
    return out, folded, sites, amax, HeldOutSet.from_batches(folded, batches, None)


def _whole_graph(folded, sites, amax, held, keep):
    return held.evaluate(quantize(folded, sites, amax, keep_fp32=keep))


def test_tails_rank_like_the_whole_graph_method(calibrated):
    _, folded, sites, amax, held = calibrated
    groups = list(groups_of(sites, "module"))
    slow = {group: _whole_graph(folded, sites, amax, held, {group}) for group in groups}
    ranking = rank_layers(folded, sites, amax, held, max_images=0)
    assert ranking.images == 16 and len(ranking.entries) == len(groups) > 20
    for entry in ranking.entries:
        reference = slow[entry.group]
        assert abs(entry.result.cosine_mean - reference.cosine_mean) < 1e-6, entry.group
        assert abs(entry.result.cosine_min - reference.cosine_min) < 1e-6, entry.group
        assert entry.result.agreement == reference.agreement, entry.group
    order = sorted(groups, key=lambda g: (slow[g].cosine_mean, slow[g].agreement), reverse=True)
    assert [entry.group for entry in ranking.entries] == order
    # The baseline of the gains is the all-INT8 graph on the same images.
    assert ranking.baseline == held.evaluate(quantize(folded, sites, amax))


def test_one_cut_at_a_time_is_bit_exact_and_kept_sets_start_at_their_first_layer(calibrated):
    _, folded, sites, amax, held = calibrated
    # A budget too small for two cuts' boundaries: every candidate reads its own cut alone.
    evaluator = TailEvaluator(folded, sites, amax, held, budget_bytes=1)
    groups = evenly_spaced(list(groups_of(sites, "module")), 6)
    results = evaluator.evaluate_each([{group} for group in groups])
    for group, result in zip(groups, results, strict=True):
        assert result == _whole_graph(folded, sites, amax, held, {group}), group
    assert [evaluator.cut_of({g}) for g in groups] == sorted(evaluator.cut_of({g}) for g in groups)
    kept = {groups[2], groups[4]}
    assert evaluator.cut_of(kept) == evaluator.cut_of({groups[2]}) > 0
    assert evaluator.evaluate(kept) == _whole_graph(folded, sites, amax, held, kept)


def test_the_ranking_uses_a_spread_subset_and_reuses_its_reference(calibrated):
    _, folded, sites, amax, held = calibrated
    subset = held.subset(4)
    assert subset.images == 4
    picked = [next(i for i, b in enumerate(held.batches) if b is batch) for batch in subset.batches]
    assert picked == [0, 4, 8, 12]
    assert all(subset.reference.scores[k] is held.reference.scores[i] for k, i in enumerate(picked))
    assert held.subset(100) is held
    ranking = rank_layers(folded, sites, amax, held, max_images=4)
    assert ranking.images == 4 and ranking.baseline == subset.evaluate(quantize(folded, sites, amax))


def test_progress_estimates_the_time_left(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("litevit._progress.has", lambda module: False)
    monkeypatch.setattr("litevit._progress.sys.stderr", stream)
    clock = iter([0.0, 30.0, 30.0])
    monkeypatch.setattr("litevit._progress.time.monotonic", lambda: next(clock))
    bar = Progress(True, 4, "sensitivity on 16 images", unit="groups")
    bar.update()  # 1 of 4 after 30 s: about 90 s left (a log file gets a line every 10 s)
    assert stream.getvalue() == "sensitivity on 16 images: 1/4 groups, 30 s so far, about 90 s left\n"


def test_quant_report_states_its_ranking_images_and_refuses_ranking_options_it_would_skip(
    calibrated, digit_folder, tmp_path, capsys
):
    out = calibrated[0]
    data = digit_folder("test", layout="flat", limit=24)
    report_path = tmp_path / "report.json"
    code = main(
        [
            "quant-report",
            str(out),
            "--data",
            str(data),
            "--sensitivity-images",
            "8",
            "--json",
            str(report_path),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["images"] == 24 and report["sensitivity_images"] == 8
    assert "per-layer sensitivity on 8 images" in printed
    code = main(["quant-report", str(out), "--data", str(data), "--no-sensitivity", "--granularity", "layer"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--granularity" in err and "--no-sensitivity" in err
