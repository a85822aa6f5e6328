"""``litevit val``: accuracy of exported artefacts on labelled folders.

Classification runs on the trained fixture (a reduced LVT trained on scikit-learn's digits), so
the scores are real: ONNX Runtime's FP32 top-1 must be what the PyTorch model gets on the same
preprocessed images, computed here. Segmentation runs on a random-weight smoke ``lvt_seg`` with
masks built from its own predictions, scored against an independent per-class count in numpy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import digits
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from litevit.artifacts import read_manifest
from litevit.calibration.images import Preprocessing, list_images, load_images
from litevit.calibration.val import (
    MASK_RULE,
    class_mapping,
    configure_val_parser,
    format_val,
    run_val,
    segmentation_labels,
    validate,
)
from litevit.errors import DataError, LitevitError
from litevit.export import export_model
from litevit.labels import imagenet_synsets
from litevit.models import create_model, get_model_cfg, load_pretrained
from litevit.runtime.runners import open_runner

FIXED_BATCH = 7  # 360 test digits leave a last batch of 3: padding is exercised on every full run
SEG_SIZE = (64, 64)
# Segmentation images are 3x wider and 2x taller than the graph: resizing them squashes the aspect
# ratio, and every mask pixel of the graph-sized grid is a 2x3 block, so nearest-neighbour picks
# it unambiguously.
SEG_BLOCK = (2, 3)


def _export_digits(trained, folder: Path, **kwargs) -> Path:
    export_model(
        trained.facts["model"],
        weights=trained.weights,
        img_size=trained.facts["img_size"],
        model_kwargs=trained.facts["model_kwargs"],
        out_dir=folder,
        check=False,
        threads=1,
        log=lambda s: None,
        **kwargs,
    )
    return folder


@pytest.fixture(scope="module")
def digits_artifact(trained_lvt, tmp_path_factory) -> Path:
    return _export_digits(trained_lvt, tmp_path_factory.mktemp("lvt_digits"), batch=FIXED_BATCH, fp16=True)


@pytest.fixture(scope="module")
def digits_dynamic_artifact(trained_lvt, tmp_path_factory) -> Path:
    return _export_digits(trained_lvt, tmp_path_factory.mktemp("lvt_digits_dyn"), dynamic_batch=True)


def _run(artifact: Path, data: Path, **kwargs):
    return validate(artifact, data, progress=False, threads=1, **kwargs)


# --------------------------------------------------------------------------------------------
# Classification on the trained fixture


def test_fp32_and_fp16_reproduce_the_pytorch_top1_on_the_digit_test_split(
    trained_lvt, digits_artifact, digit_folder
):
    folder = digit_folder("test")
    result = _run(digits_artifact, folder, precisions=("fp32", "fp16"))

    # The same images through the same preprocessing, into the PyTorch model with the same weights;
    # the truth comes from digits.npz (file names are its row indices), not from folder names.
    model = create_model(
        trained_lvt.facts["model"],
        img_size=trained_lvt.facts["img_size"],
        **trained_lvt.facts["model_kwargs"],
    )
    load_pretrained(model, trained_lvt.weights)
    loaded = load_images(list_images(folder), Preprocessing.from_manifest(read_manifest(digits_artifact)))
    _, labels, _ = digits.load_digits()
    truth = torch.tensor([int(labels[int(path.stem)]) for path in loaded.paths])
    with torch.inference_mode():
        predicted = model(torch.from_numpy(loaded.arrays)).argmax(dim=1)
    torch_top1 = 100.0 * int((predicted == truth).sum()) / len(truth)

    fp32, fp16 = result.rows
    assert (fp32.precision, fp16.precision) == ("fp32", "fp16")
    assert result.images == fp32.images == fp16.images == len(digits.split_indices("test")) == 360
    assert fp32.scores["top-1"] == pytest.approx(torch_top1, abs=1e-9)
    assert fp32.scores["top-1"] >= 95.0  # the fixture's accuracy floor
    # What training recorded, within one image (a torch upgrade may move a borderline digit).
    assert abs(torch_top1 - 100.0 * trained_lvt.facts["torch_test_top1"]) <= 100.0 / 360 + 1e-9
    assert fp32.scores["top-5"] >= fp32.scores["top-1"]
    assert abs(fp16.scores["top-1"] - fp32.scores["top-1"]) <= 1.0
    assert fp16.delta == pytest.approx(fp16.scores["top-1"] - fp32.scores["top-1"])
    assert fp32.delta is None
    assert result.batch == FIXED_BATCH
    assert "class indices" in result.label_rule
    # A reduced architecture with 10 classes is not the paper's model: no paper figure.
    assert result.paper == "n/a" and "not the paper's lvt" in result.paper_note
    text = format_val(result)
    assert "Δtop-1 vs fp32" in text and f"{fp32.scores['top-1']:.2f}" in text


def test_dynamic_batch_gives_the_same_scores_as_a_padded_fixed_batch(
    digits_artifact, digits_dynamic_artifact, digit_folder
):
    folder = digit_folder("test")
    fixed = _run(digits_artifact, folder, limit=50)
    dynamic = _run(digits_dynamic_artifact, folder, limit=50, batch=16)
    default = _run(digits_dynamic_artifact, folder, limit=50)
    assert fixed.batch == FIXED_BATCH and dynamic.batch == 16 and default.batch == 8
    assert fixed.images == dynamic.images == default.images == 50
    assert fixed.rows[0].scores == dynamic.rows[0].scores == default.rows[0].scores
    assert any("--limit 50: 50 of 360 images" in note for note in fixed.notes)


def test_folder_names_in_sorted_order_when_they_are_not_integers(digits_artifact, digit_folder, tmp_path):
    # "digit_0" .. "digit_9" sort in digit order: the sorted rule must give the same scores as
    # the integer rule; "nine" .. "zero" sort otherwise ("eight" becomes class 0), so the scores
    # must collapse.
    source = digit_folder("test", limit=60)
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    prefixed, worded = tmp_path / "prefixed", tmp_path / "worded"
    for digit in range(10):
        shutil.copytree(source / str(digit), prefixed / f"digit_{digit}")
        shutil.copytree(source / str(digit), worded / words[digit])
    by_integer = _run(digits_artifact, source)
    by_prefix = _run(digits_artifact, prefixed)
    by_word = _run(digits_artifact, worded)
    assert "sorted order" in by_prefix.label_rule and "sorted order" in by_word.label_rule
    assert by_prefix.rows[0].scores == by_integer.rows[0].scores
    assert by_word.rows[0].scores["top-1"] < 50.0 < by_integer.rows[0].scores["top-1"]


def test_class_mapping_rules():
    # Integers are indices: "10" is class 10, where sorted order would make it class 2.
    integers = class_mapping([str(i) for i in range(11)], 11, "custom")
    assert integers.index_of["10"] == 10 and integers.index_of["2"] == 2
    assert "integers" in integers.rule
    synsets = imagenet_synsets()
    wordnet = class_mapping([synsets[999], synsets[5]], 1000, "imagenet1k")
    assert wordnet.index_of == {synsets[5]: 5, synsets[999]: 999}
    assert "WordNet" in wordnet.rule
    # The same names for a model without the ImageNet label set: sorted order.
    assert class_mapping([synsets[999], synsets[5]], 2, "custom").index_of == {synsets[5]: 0, synsets[999]: 1}
    assert class_mapping(["dog", "cat", "bird"], 3, "custom").index_of == {"bird": 0, "cat": 1, "dog": 2}


@pytest.mark.parametrize(
    ("names", "num_classes", "label_set", "named"),
    [
        (["0", "3", "10"], 10, "custom", "'10'"),
        (["n01440764", "n99999999"], 1000, "imagenet1k", "'n99999999'"),
        (["ant", "bee", "cat"], 2, "custom", "'cat'"),
    ],
)
def test_a_class_folder_that_maps_to_no_class_is_refused(names, num_classes, label_set, named):
    with pytest.raises(DataError, match=f"class folder {named} maps to no class"):
        class_mapping(names, num_classes, label_set)


def test_unreadable_files_are_named_and_excluded_not_replaced(digits_artifact, digit_folder, tmp_path):
    clean = digit_folder("test", limit=20)
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    (data / "3" / "broken.png").write_bytes(b"not a png")
    (data / "5" / "empty.jpg").write_bytes(b"")
    result = _run(digits_artifact, data)
    assert result.images == 20
    assert [path for path, _ in result.unreadable] == ["3/broken.png", "5/empty.jpg"]
    assert result.rows[0].scores == _run(digits_artifact, clean).rows[0].scores
    assert "2 unreadable files: 3/broken.png (" in format_val(result)

    only_bad = tmp_path / "only_bad"
    (only_bad / "1").mkdir(parents=True)
    (only_bad / "1" / "x.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"no readable image in .*1 unreadable file: 1/x.png"):
        _run(digits_artifact, only_bad)


def test_classification_refusals(digits_artifact, digits_dynamic_artifact, digit_folder, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        _run(digits_artifact, tmp_path / "missing")
    (tmp_path / "empty" / "0").mkdir(parents=True)
    with pytest.raises(DataError, match="has no images"):
        _run(digits_artifact, tmp_path / "empty")
    flat = digit_folder("test", layout="flat", limit=5)
    with pytest.raises(DataError, match="has no class folders"):
        _run(digits_artifact, flat)
    mixed = tmp_path / "mixed"
    shutil.copytree(digit_folder("test", limit=10), mixed)
    shutil.copy(next(flat.iterdir()), mixed / "stray.png")
    with pytest.raises(DataError, match=r"outside any class folder \(e.g. stray.png\)"):
        _run(digits_artifact, mixed)
    extra = tmp_path / "extra"
    shutil.copytree(digit_folder("test", limit=10), extra)
    shutil.copytree(extra / "1", extra / "12")
    with pytest.raises(DataError, match="class folder '12' maps to no class"):
        _run(digits_artifact, extra)
    small = digit_folder("test", limit=10)
    with pytest.raises(LitevitError, match="fixed batch of 7 .* --batch 16 cannot"):
        _run(digits_artifact, small, batch=16)
    with pytest.raises(LitevitError, match="unknown precision 'int4'"):
        _run(digits_artifact, small, precisions=("int4",))
    with pytest.raises(LitevitError, match="no fp16 ONNX graph"):
        _run(digits_dynamic_artifact, small, precisions=("fp16",))
    with pytest.raises(LitevitError, match="not a litevit artefact folder"):
        _run(tmp_path, small)


def test_cli_prints_the_table_and_writes_json(digits_artifact, digit_folder, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    configure_val_parser(parser)
    out = tmp_path / "val.json"
    args = parser.parse_args(
        [
            str(digits_artifact),
            "--data",
            str(digit_folder("test")),
            "--precision",
            "fp32,fp16",
            "--limit",
            "30",
            "--json",
            str(out),
        ]
    )
    assert run_val(args) == 0
    printed = capsys.readouterr().out
    assert "precision" in printed and "fp16" in printed and f"wrote {out}" in printed
    doc = json.loads(out.read_text())
    assert doc["schema"] == "litevit.val/1" and doc["images"] == 30
    assert [(row["backend"], row["precision"]) for row in doc["rows"]] == [("ort", "fp32"), ("ort", "fp16")]
    assert doc["rows"][1]["delta"] == pytest.approx(
        doc["rows"][1]["scores"]["top-1"] - doc["rows"][0]["scores"]["top-1"]
    )


def test_paper_figure_is_shown_for_the_paper_configuration(digits_artifact, digit_folder, tmp_path):
    # An artefact whose manifest names no model_kwargs is the registry's model: its paper figure
    # is shown. (The graph is the fixture's; only the manifest's claim matters for this column.)
    claimed = tmp_path / "claimed"
    shutil.copytree(digits_artifact, claimed)
    manifest = json.loads((claimed / "manifest.json").read_text())
    manifest["model_kwargs"] = {}
    (claimed / "manifest.json").write_text(json.dumps(manifest))
    result = _run(claimed, digit_folder("test", limit=10))
    assert result.paper == get_model_cfg("lvt").paper.metric
    assert result.paper in format_val(result)


def test_val_runs_without_torch(digits_artifact, digit_folder, tmp_path):
    script = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnxscript'] = None\n"
        "from litevit.calibration.val import validate\n"
        f"result = validate({str(digits_artifact)!r}, {str(digit_folder('test', limit=10))!r}, "
        "progress=False)\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print(result.images, result.paper)\n"
    )
    # Outside the checkout: `python -c` puts the working directory first on sys.path, where the
    # source tree would shadow the installed package.
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["10", "n/a"]


# --------------------------------------------------------------------------------------------
# Segmentation on a smoke lvt_seg


def _export_seg(folder: Path, seg_output: str, **kwargs) -> Path:
    export_model(
        "lvt_seg",
        img_size=SEG_SIZE,
        seg_output=seg_output,
        model_kwargs=get_model_cfg("lvt_seg").smoke_arch,
        out_dir=folder,
        check=False,
        threads=1,
        log=lambda s: None,
        **kwargs,
    )
    return folder


@pytest.fixture(scope="module")
def seg_labels_artifact(tmp_path_factory) -> Path:
    return _export_seg(tmp_path_factory.mktemp("seg_labels"), "labels", batch=2)


@pytest.fixture(scope="module")
def seg_logits_artifact(tmp_path_factory) -> Path:
    return _export_seg(tmp_path_factory.mktemp("seg_logits"), "logits", dynamic_batch=True)


def _write_mask(path: Path, grid: np.ndarray) -> None:
    """A graph-sized grid of mask values, written at the image's size (each value a 2x3 block)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.kron(grid, np.ones(SEG_BLOCK)).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def seg_data(seg_labels_artifact, tmp_path_factory):
    """Five noise images with masks made from the model's own predictions, partly ignored (0 and
    255) and partly relabelled at random; returns the folder and the graph-sized (pred, mask)."""
    root = tmp_path_factory.mktemp("seg_data")
    rng = np.random.default_rng(0)
    prep = Preprocessing.from_manifest(read_manifest(seg_labels_artifact))
    height, width = SEG_SIZE[0] * SEG_BLOCK[0], SEG_SIZE[1] * SEG_BLOCK[1]
    expected = []
    with open_runner(seg_labels_artifact) as runner:
        for index in range(5):
            image_path = root / "images" / f"scene{index}.jpg"
            image_path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
                image_path, quality=95
            )
            batch = np.stack([prep.load(image_path)] * 2)
            predicted = runner.infer({"input": batch})["labels"][0].astype(np.int64)
            grid = predicted + 1
            grid[:, :16] = rng.integers(1, 41, (SEG_SIZE[0], 16))  # disagreeing; classes 41+ mostly absent
            grid[:6] = 0
            grid[6:9] = 255
            _write_mask(root / "annotations" / f"scene{index}.png", grid)
            expected.append((predicted, grid))
    return root, expected


def _numpy_scores(expected) -> tuple[float, float]:
    """mIoU and pixel accuracy (percent), counted class by class (mmseg's definitions)."""
    predicted = np.concatenate([p.ravel() for p, _ in expected])
    values = np.concatenate([g.ravel() for _, g in expected])
    scored = (values != 0) & (values != 255)
    predicted, truth = predicted[scored], values[scored] - 1
    ious = []
    for cls in range(150):
        union = np.sum((predicted == cls) | (truth == cls))
        if union:
            ious.append(np.sum((predicted == cls) & (truth == cls)) / union)
    return 100.0 * float(np.mean(ious)), 100.0 * float(np.mean(predicted == truth))


def test_segmentation_miou_matches_an_independent_count(seg_labels_artifact, seg_logits_artifact, seg_data):
    root, expected = seg_data
    miou, pixel_acc = _numpy_scores(expected)
    labels = _run(seg_labels_artifact, root)
    assert labels.images == 5 and labels.batch == 2  # 5 images: the last batch is padded
    assert labels.metric == "mIoU" and labels.label_rule == MASK_RULE
    assert labels.rows[0].scores["mIoU"] == pytest.approx(miou, abs=1e-9)
    assert labels.rows[0].scores["pixel acc"] == pytest.approx(pixel_acc, abs=1e-9)
    assert 0.0 < pixel_acc < 100.0
    # Classes in neither masks nor predictions exist, and are left out of the mean (not counted as 0).
    assert None in labels.rows[0].per_class_iou
    # The logits graph is resized and arg-maxed on the host: the same labels up to rare near-ties.
    logits = _run(seg_logits_artifact, root)
    assert logits.rows[0].scores["mIoU"] == pytest.approx(miou, abs=0.5)
    assert logits.rows[0].scores["pixel acc"] == pytest.approx(pixel_acc, abs=0.1)
    assert "input size 64x64" in format_val(labels)


def test_host_resize_of_logits_matches_torch():
    scores = torch.randn(2, 150, 16, 16)
    expected = F.interpolate(scores, size=(64, 48), mode="bilinear", align_corners=False).argmax(dim=1)
    ours = segmentation_labels(scores.numpy(), "logits", (64, 48))
    assert ours.shape == (2, 64, 48)
    assert np.mean(ours == expected.numpy()) > 0.999


def test_segmentation_refusals_and_unreadable_masks(seg_labels_artifact, seg_data, tmp_path):
    root, _ = seg_data

    def variant(name: str) -> Path:
        copy = tmp_path / name
        shutil.copytree(root, copy)
        return copy

    no_masks = variant("no_masks")
    shutil.rmtree(no_masks / "annotations")
    with pytest.raises(DataError, match="has no annotations/ folder"):
        _run(seg_labels_artifact, no_masks)
    unpaired = variant("unpaired")
    (unpaired / "annotations" / "scene3.png").unlink()
    with pytest.raises(DataError, match=r"1 image\(s\) have no mask, e.g. images/scene3.jpg"):
        _run(seg_labels_artifact, unpaired)
    coloured = variant("coloured")
    Image.open(root / "annotations" / "scene1.png").convert("RGB").save(
        coloured / "annotations" / "scene1.png"
    )
    with pytest.raises(DataError, match="the mask annotations/scene1.png is a RGB image"):
        _run(seg_labels_artifact, coloured)
    beyond = variant("beyond")
    _write_mask(beyond / "annotations" / "scene2.png", np.full(SEG_SIZE, 200))
    with pytest.raises(DataError, match="holds value 200, beyond the model's 150 classes"):
        _run(seg_labels_artifact, beyond)
    resized = variant("resized")
    Image.new("L", (10, 10)).save(resized / "annotations" / "scene0.png")
    with pytest.raises(DataError, match=r"annotations/scene0.png is 10x10 but its image is 192x128"):
        _run(seg_labels_artifact, resized)
    ignored = variant("ignored")
    for index in range(5):
        _write_mask(ignored / "annotations" / f"scene{index}.png", np.zeros(SEG_SIZE))
    with pytest.raises(DataError, match="every mask pixel .* is ignored"):
        _run(seg_labels_artifact, ignored)

    broken = variant("broken")
    (broken / "annotations" / "scene4.png").write_bytes(b"not a png")
    result = _run(seg_labels_artifact, broken)
    assert result.images == 4
    assert [path for path, _ in result.unreadable] == ["annotations/scene4.png"]
    assert "1 unreadable file: annotations/scene4.png" in format_val(result)
