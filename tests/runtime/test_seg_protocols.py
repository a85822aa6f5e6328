"""The segmentation test protocols run around a runner: mmseg's geometry, and the trained fixture's
scores through ONNX Runtime against a torch transcription of mmseg's EncoderDecoder test code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from litevit.errors import LitevitError
from litevit.export import export_model
from litevit.models import create_model, load_pretrained
from litevit.runtime.runners import open_runner
from litevit.runtime.seg_protocols import (
    GraphScores,
    SegTestProtocol,
    check_artifact,
    normalize,
    predict,
    protocol_for,
    protocol_input,
    rescale_size,
    slide_windows,
)

SLIDE_512 = SegTestProtocol("slide", (2048, 512), crop_size=(512, 512), stride=(341, 341))


@pytest.mark.parametrize(
    ("width", "height", "scale", "min_size", "expected"),
    [
        # mmcv.imrescale: factor min(max(scale) / long, min(scale) / short), int(side * factor + 0.5)
        (683, 512, (2048, 512), None, (683, 512)),
        (640, 480, (2048, 512), None, (683, 512)),
        (480, 640, (2048, 512), None, (512, 683)),
        (3000, 500, (2048, 512), None, (2048, 341)),  # the long side caps
        (1024, 256, (1024, 256), None, (1024, 256)),
        # mmseg 0.24 Resize(min_size): target short side max(min(scale), min_size), long side free
        (3000, 500, (2048, 512), 512, (3072, 512)),
        (640, 480, (1024, 256), 512, (683, 512)),  # a 0.5 ratio is lifted back to 512
        (500, 375, (520, 520), 480, (693, 520)),  # PASCAL-Context
        (375, 500, (260, 260), 480, (480, 640)),
    ],
)
def test_rescale_size_follows_mmcv_and_mmseg(width, height, scale, min_size, expected):
    assert rescale_size(width, height, scale, min_size) == expected


def test_slide_windows_follow_mmseg():
    assert slide_windows(512, 683, (512, 512), (341, 341)) == [(0, 512, 0, 512), (0, 512, 171, 683)]
    # Smaller than a window: one window of the image's own size (mmseg never pads).
    assert slide_windows(300, 400, (512, 512), (341, 341)) == [(0, 300, 0, 400)]
    windows = slide_windows(1000, 1500, (512, 512), (341, 341))
    assert len(windows) == 3 * 4
    cover = np.zeros((1000, 1500), int)
    for y1, y2, x1, x2 in windows:
        assert (y2 - y1, x2 - x1) == (512, 512)
        cover[y1:y2, x1:x2] += 1
    assert cover.min() >= 1 and windows[-1][1] == 1000 and windows[-1][3] == 1500


def test_protocol_runs_and_description():
    aug = SLIDE_512.with_aug()
    assert aug.scales() == [(1024, 256), (1536, 384), (2048, 512), (2560, 640), (3072, 768), (3584, 896)]
    assert len(aug.runs()) == 12 and aug.runs()[1] == ((1024, 256), True)
    assert "flip" in aug.describe() and "single scale" in SLIDE_512.describe()
    with pytest.raises(LitevitError, match="crop_size and stride"):
        SegTestProtocol.from_config({"mode": "slide", "img_scale": [2048, 512]})
    with pytest.raises(LitevitError, match="unknown test protocol mode"):
        SegTestProtocol.from_config({"mode": "tile", "img_scale": [2048, 512]})


# --------------------------------------------------------------------------------------------
# The trained fixture through ONNX Runtime vs mmseg's test code transcribed in torch


def _reference_inference(
    model, img: torch.Tensor, protocol: SegTestProtocol, ori: tuple[int, int], flip: bool
):
    """mmseg 0.24 EncoderDecoder.inference (slide or whole, rescale=True), torch ops as mmseg has them."""

    def encode_decode(x):
        return F.interpolate(model(x), size=x.shape[2:], mode="bilinear", align_corners=False)

    if protocol.mode == "slide":
        (h_stride, w_stride), (h_crop, w_crop) = protocol.stride, protocol.crop_size
        batch, _, h_img, w_img = img.shape
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        preds, count = None, img.new_zeros((batch, 1, h_img, w_img))
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y1, x1 = h_idx * h_stride, w_idx * w_stride
                y2, x2 = min(y1 + h_crop, h_img), min(x1 + w_crop, w_img)
                y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
                logit = encode_decode(img[:, :, y1:y2, x1:x2])
                padded = F.pad(logit, (int(x1), int(w_img - x2), int(y1), int(h_img - y2)))
                preds = padded if preds is None else preds + padded
                count[:, :, y1:y2, x1:x2] += 1
        seg_logit = preds / count
    else:
        seg_logit = encode_decode(img)
    seg_logit = F.interpolate(seg_logit, size=ori, mode="bilinear", align_corners=False)
    output = F.softmax(seg_logit, dim=1)
    return output.flip(dims=(3,)) if flip else output


def _reference_scores(model, image: np.ndarray, protocol: SegTestProtocol, data_config) -> torch.Tensor:
    """mmseg aug_test (or simple_test) on one uint8 image; the resized uint8 images come from the
    runtime (the pipeline's resize is tested on its own above)."""
    outputs = []
    for scale, flip in protocol.runs():
        resized = protocol_input(image, protocol, scale)
        if flip:
            resized = resized[:, ::-1]
        img = torch.from_numpy(normalize(resized, data_config))[None]
        with torch.no_grad():
            outputs.append(_reference_inference(model, img, protocol, image.shape[:2], flip))
    return sum(outputs) / len(outputs)


def _export_fixture(trained, folder: Path, **kwargs) -> Path:
    export_model(
        trained.facts["model"],
        weights=trained.weights,
        img_size=trained.facts["img_size"],
        model_kwargs=trained.facts["model_kwargs"],
        test_protocol=trained.facts["test_protocol"],
        dynamic_batch=True,
        seg_output="logits",
        out_dir=folder,
        threads=1,
        log=lambda s: None,
        **kwargs,
    )
    return folder


@pytest.fixture(scope="module")
def fixture_artifact(trained_upernet, tmp_path_factory) -> Path:
    """The fixture at its 64x64 window size (what sliding windows need), dynamic batch."""
    return _export_fixture(trained_upernet, tmp_path_factory.mktemp("upernet-shapes"))


@pytest.fixture(scope="module")
def fixture_artifact_any_size(trained_upernet, tmp_path_factory) -> Path:
    """The fixture with dynamic H x W (whole-image protocols: each image at its own size)."""
    return _export_fixture(trained_upernet, tmp_path_factory.mktemp("upernet-shapes-hw"), dynamic_hw=True)


# "whole" needs the fixture exported with dynamic H x W, over a minute on 2 cores: slow.
@pytest.mark.parametrize("variant", ["slide", "slide-aug", pytest.param("whole", marks=pytest.mark.slow)])
def test_protocol_through_onnx_runtime_matches_mmseg_in_torch(trained_upernet, request, variant):
    """Scores at the original size, ONNX Runtime + numpy protocol vs mmseg's code in torch: sliding
    windows (90x125 is resized to 96x133: 2x3 uneven windows), multi-scale + flip (12 runs; min_size
    lifts the 0.5 ratio's short side back to 64), and whole images at a size no multiple of
    anything (96x133: padding and exact pyramid pooling inside the graph)."""
    import shapes

    from litevit.artifacts import read_manifest

    folder = request.getfixturevalue(
        "fixture_artifact_any_size" if variant == "whole" else "fixture_artifact"
    )
    manifest = read_manifest(folder)
    protocol = protocol_for(manifest, aug=variant == "slide-aug")
    if variant == "whole":
        protocol = SegTestProtocol("whole", (256, 96))
    facts = trained_upernet.facts
    model = create_model(facts["model"], img_size=facts["img_size"], **facts["model_kwargs"])
    load_pretrained(model, str(trained_upernet.weights))
    image, _ = shapes.scene(2000, size=(90, 125))
    with open_runner(folder, "ort", threads=1) as runner:
        graph = GraphScores(runner, manifest, batch=4)
        got: list[np.ndarray] = []
        labels = predict(image, protocol, graph, manifest["data_config"], scores_at_original=got.append)
    reference = _reference_scores(model, image, protocol, manifest["data_config"])[0].numpy()
    if len(protocol.runs()) == 1:  # the runtime skips the softmax of a single run: compare after it
        got = [torch.softmax(torch.from_numpy(got[0]), dim=0).numpy()]
    assert got[0].shape == reference.shape == (4, 90, 125)
    np.testing.assert_allclose(got[0], reference, rtol=1e-3, atol=2e-5)
    assert np.mean(labels == reference.argmax(0)) > 0.999
    # Each run's windows go through the graph 4 at a time.
    expected_calls = 0
    for scale, _ in protocol.runs():
        width, height = rescale_size(125, 90, scale, protocol.min_size)
        windows = (
            slide_windows(height, width, protocol.crop_size, protocol.stride) if protocol.crop_size else [0]
        )
        expected_calls += -(-len(windows) // 4)
    assert graph.calls == expected_calls and (variant == "whole" or expected_calls > len(protocol.runs()))


def test_artifacts_the_protocol_cannot_run_are_refused(trained_upernet, fixture_artifact, tmp_path):
    from litevit.artifacts import read_manifest

    manifest = read_manifest(fixture_artifact)
    slide = protocol_for(manifest)
    labels = {**manifest, "seg_output": "labels"}
    with pytest.raises(LitevitError, match="--seg-output logits"):
        check_artifact(labels, slide)
    fixed = {**manifest, "dynamic_axes": {"input": {"0": "batch"}}, "img_size": [96, 96]}
    with pytest.raises(LitevitError, match="window size or with --dynamic-hw"):
        check_artifact(fixed, slide)
    with pytest.raises(LitevitError, match="--dynamic-hw"):
        check_artifact(fixed, SegTestProtocol("whole", (256, 96)))
    no_protocol = {**manifest, "data_config": {**manifest["data_config"], "test_protocol": None}}
    with pytest.raises(LitevitError, match="records no test protocol"):
        protocol_for(no_protocol)
