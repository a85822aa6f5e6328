"""LVT family: lvt (released lvt_cls classifier) and lvt_seg (SegFormer-LVT on ADE20K)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from litevit.errors import CheckpointError, InputSizeError
from litevit.models.lvt import LVT_SMOKE_ARCH
from litevit.models import create_model, get_model_cfg, list_models
from litevit.models._pretrained import check_state_dict, convert_checkpoint, state_dict_from_key_list
from litevit.models import segmentation_labels

KEYS = Path(__file__).parent.parent / "fixtures" / "keys"
SMALL = LVT_SMOKE_ARCH


def _keys(name: str) -> dict[str, list[int]]:
    return json.loads((KEYS / f"{name}.json").read_text())


def test_registered() -> None:
    assert {"lvt", "lvt_seg"} <= set(list_models("lvt*"))
    assert get_model_cfg("lvt_seg").task == "segmentation"


def test_lvt_reduced_forward_and_num_classes() -> None:
    model = create_model("lvt", num_classes=10, post_layers=1, **SMALL)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        logits = model(x)
        tokens = model.forward_features(x)
    assert logits.shape == (2, 10)
    assert tokens.shape == (2, 1 + 2 * 3, 32)  # class token + the stride-32 map
    assert model.head.weight.shape == (10, 32) and model.aux_head.weight.shape == (10, 32)
    # Eval logits: head(cls) + 0.5 * per-class max of aux_head over the patch tokens.
    expected = (
        model.head(tokens[:, 0])
        + 0.5
        * torch.stack([model.aux_head(tokens[:, i]) for i in range(1, tokens.shape[1])]).max(dim=0).values
    )
    torch.testing.assert_close(logits, expected)


def test_lvt_seg_reduced_forward() -> None:
    model = create_model("lvt_seg", num_classes=7, decoder_dim=24, **SMALL)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
    assert logits.shape == (2, 7, 16, 24)
    assert [tuple(f.shape) for f in features] == [
        (2, 16, 16, 24),
        (2, 16, 8, 12),
        (2, 32, 4, 6),
        (2, 32, 2, 3),
    ]
    labels = segmentation_labels(logits, x.shape[-2:])
    assert labels.shape == (2, 64, 96) and labels.dtype == torch.int64


def test_odd_late_stage_maps() -> None:
    # 160x32 gives stage maps 40x8, 20x4, 10x2, 5x1: odd and degenerate sizes after the RASA
    # spatial reductions (20x4 / 4 -> 5x1, 10x2 / 2 -> 5x1) still run.
    model = create_model("lvt", num_classes=3, post_layers=1, **SMALL)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 160, 32)).shape == (1, 3)


@pytest.mark.parametrize("name", ["lvt", "lvt_seg"])
def test_bad_input_size(name: str) -> None:
    model = create_model(name, **SMALL)
    with pytest.raises(InputSizeError, match="multiples of 32"):
        model(torch.randn(1, 3, 64, 80 + 1))
    with pytest.raises(InputSizeError, match="3, height, width"):
        model(torch.randn(1, 1, 64, 64))


def test_unknown_arch_option() -> None:
    with pytest.raises(TypeError, match="depth"):
        create_model("lvt", depth=(1, 1, 1, 1))


def test_trains() -> None:
    model = create_model("lvt_seg", num_classes=4, decoder_dim=16, **SMALL).train()
    logits = model(torch.randn(2, 3, 64, 64))
    F.cross_entropy(logits, torch.randint(0, 4, (2, 16, 16))).backward()
    csa_grad = model.backbone[0][1][0].attn.weight.weight.grad
    rasa_grad = model.backbone[1][1][0].attn.ds.weight.grad
    assert csa_grad is not None and csa_grad.abs().sum() > 0
    assert rasa_grad is not None and rasa_grad.abs().sum() > 0


@pytest.mark.parametrize("name,drop", [("lvt", None), ("lvt_seg", "decode_head.conv_seg.weight")])
def test_official_keys_load(name: str, drop: str | None) -> None:
    keys = _keys(name)
    with torch.device("meta"):
        model = create_model(name)
    state = convert_checkpoint(model, state_dict_from_key_list(keys, device="meta"))
    check_state_dict(model, state)
    if drop is not None:
        assert drop in keys and drop not in state


@pytest.mark.parametrize("name", ["lvt", "lvt_seg"])
def test_corrupted_keys_refused(name: str) -> None:
    keys = _keys(name)
    names = list(keys)
    removed, renamed = names[5], names[-3]
    keys.pop(removed)
    keys[renamed + "_x"] = keys.pop(renamed)
    with torch.device("meta"):
        model = create_model(name)
    state = convert_checkpoint(model, state_dict_from_key_list(keys, device="meta"))
    with pytest.raises(CheckpointError) as info:
        check_state_dict(model, state)
    message = str(info.value)
    removed, renamed = (k.replace("backbone.backbone.", "backbone.", 1) for k in (removed, renamed))
    assert removed in message and renamed in message and renamed + "_x" in message


def test_official_backbone_keys_match_seg_backbone() -> None:
    # The classifier's backbone.* and the segmentation backbone are the same network.
    cls_backbone = {k: v for k, v in _keys("lvt").items() if k.startswith("backbone.")}
    seg_backbone = {
        k.replace("backbone.backbone.", "backbone.", 1): v
        for k, v in _keys("lvt_seg").items()
        if k.startswith("backbone.")
    }
    assert cls_backbone == seg_backbone


def test_segmentation_labels() -> None:
    # Class k dominates cell k of a 2x2 logit map; at 8x8 each quadrant gets its cell's class.
    logits = torch.full((1, 4, 2, 2), -10.0)
    for k in range(4):
        logits[0, k, k // 2, k % 2] = 10.0
    labels = segmentation_labels(logits, (8, 8))
    assert labels.dtype == torch.int64 and labels.shape == (1, 8, 8)
    assert labels[0, 0, 0] == 0 and labels[0, 0, 7] == 1 and labels[0, 7, 0] == 2 and labels[0, 7, 7] == 3


@pytest.mark.slow
def test_full_param_counts() -> None:
    lvt = create_model("lvt")
    assert sum(p.numel() for p in lvt.parameters()) == 5_521_844
    assert sum(p.numel() for p in lvt.backbone.parameters()) == 3_429_092
    stage_params = [sum(p.numel() for p in stage.parameters()) for stage in lvt.backbone]
    assert stage_params == [179_396, 345_536, 931_680, 1_972_480]
    seg = create_model("lvt_seg")
    assert sum(p.numel() for p in seg.parameters()) == 3_870_586
    assert sum(p.numel() for p in seg.decode_head.parameters()) == 441_494
    with torch.no_grad():
        assert lvt(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
        assert seg(torch.randn(1, 3, 512, 512)).shape == (1, 150, 128, 128)


@pytest.mark.slow
def test_full_macs_near_paper() -> None:
    flops = pytest.importorskip("litevit.flops")
    with torch.device("meta"):
        lvt, seg = create_model("lvt"), create_model("lvt_seg")
    # Official classes under fvcore: 0.897 G (lvt_cls @224) and 10.76 G (SegFormer-LVT @512).
    assert flops.count_model(lvt).gmacs == pytest.approx(0.897, rel=0.01)
    assert flops.count_model(seg).gmacs == pytest.approx(10.76, rel=0.01)
