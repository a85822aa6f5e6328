"""Detectors (litevit.models.detection): official parameter counts and keys, outputs, and the
post-processing against direct ports of mmdet's code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import litevit
from litevit.flops import count_params
from litevit.models._pretrained import check_state_dict, convert_checkpoint, state_dict_from_key_list
from litevit.models.detection.postprocess import (
    PanopticTestCfg,
    decode_boxes,
    grid_anchors,
    map_roi_levels,
    panoptic_fusion,
    paste_masks,
)

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
# Parameters of the official models, built from the official configs with the official code
# (mmdet 2.17 / 2.11 vendored by the LVT / ELSA repositories; see tests/fixtures/keys/).
OFFICIAL_PARAMS = {
    "lvt_panoptic_fpn": 5_349_770,
    "elsa_swin_tiny_mask_rcnn": 48_647_226,
    "elsa_swin_small_mask_rcnn": 72_380_874,
    "elsa_swin_tiny_cascade_mask_rcnn": 86_482_428,
    "elsa_swin_small_cascade_mask_rcnn": 110_216_076,
}


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_parameters_and_keys_equal_the_official_detector(name):
    with torch.device("meta"):
        model = litevit.create_model(name)
    assert count_params(model) == OFFICIAL_PARAMS[name]
    keys = json.loads((KEYS / f"{name}.json").read_text())
    state = convert_checkpoint(model, state_dict_from_key_list(keys, device="meta"))
    check_state_dict(model, state)  # raises listing missing / unexpected / mismatched keys
    assert set(keys) - set(state) == {k for k in keys if k.endswith(".attn.relative_id")}


def test_a_checkpoint_for_another_detector_is_refused():
    with torch.device("meta"):
        model = litevit.create_model("elsa_swin_tiny_mask_rcnn")
    keys = json.loads((KEYS / "elsa_swin_tiny_cascade_mask_rcnn.json").read_text())
    with pytest.raises(litevit.errors.CheckpointError, match="unexpected"):
        check_state_dict(model, convert_checkpoint(model, state_dict_from_key_list(keys, device="meta")))


@pytest.mark.parametrize("name", ["lvt_panoptic_fpn", "elsa_swin_tiny_cascade_mask_rcnn"])
def test_smoke_detector_outputs_per_image(name):
    torch.manual_seed(0)
    model = litevit.create_model(name, smoke=True, img_size=(96, 128), score_thr=0.0)
    images = torch.randn(2, 3, 96, 128)
    # Image 1 is a 64 x 90 picture padded to the canvas, resized from 128 x 180.
    shapes = torch.tensor([[96.0, 128.0, 96.0, 128.0], [64.0, 90.0, 128.0, 180.0]])
    with torch.no_grad():
        outputs = dict(zip(model.output_names, model(images, shapes), strict=True))
    k = model.det.rcnn.max_per_img
    assert outputs["boxes"].shape == (2, k, 4) and outputs["labels"].dtype == torch.int32
    count = outputs["num_detections"]
    assert count.tolist() == [k, k]  # score_thr 0: every slot filled
    scores = outputs["scores"]
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    boxes = outputs["boxes"][1]
    assert (boxes[:, [0, 2]] <= 90).all() and (boxes[:, [1, 3]] <= 64).all() and (boxes >= 0).all()
    if "masks" in outputs:
        assert outputs["masks"].shape == (2, k, 96, 128) and outputs["masks"].dtype == torch.bool
    else:
        panoptic = outputs["panoptic"]
        assert panoptic.shape == (2, 96, 128) and panoptic.dtype == torch.int32
        assert (panoptic[1, 64:] == 0).all() and (panoptic[1, :, 90:] == 0).all()  # padding is void
        areas = outputs["segment_areas"]
        ids, counts = torch.unique(panoptic[0], return_counts=True)
        expected = torch.zeros(areas.shape[1] + 1, dtype=torch.int32)
        expected[ids.long()] = counts.to(torch.int32)
        assert torch.equal(areas[0], expected[1:])


def test_mask_output_roi_gives_probabilities():
    model = litevit.create_model(
        "elsa_swin_tiny_mask_rcnn", smoke=True, img_size=(64, 64), score_thr=0.0, mask_output="roi"
    )
    with torch.no_grad():
        masks = model(torch.randn(1, 3, 64, 64))[-1]
    assert masks.shape == (1, model.det.rcnn.max_per_img, 28, 28) and masks.dtype == torch.float32
    assert ((masks >= 0) & (masks <= 1)).all() and masks.max() > 0


def test_anchors_follow_mmdet():
    # AnchorGenerator(strides=[16], ratios=[0.5, 1, 2], scales=[8]) on a 1 x 2 map.
    anchors = grid_anchors(1, 2, 16, [8.0], [0.5, 1.0, 2.0], torch.zeros(()))
    w = 128 / 0.5**0.5  # ratio 0.5: h = 128 * sqrt(.5), w = 128 / sqrt(.5)
    expected_first = torch.tensor([-w / 2, -128 * 0.5**0.5 / 2, w / 2, 128 * 0.5**0.5 / 2])
    torch.testing.assert_close(anchors[0], expected_first)
    torch.testing.assert_close(anchors[3] - anchors[0], torch.tensor([16.0, 0.0, 16.0, 0.0]))  # next location
    assert anchors.shape == (6, 4)


def test_decode_clips_to_the_resized_image_and_clamps_the_log_ratio():
    rois = torch.tensor([[[10.0, 10.0, 30.0, 50.0]]])
    deltas = torch.tensor([[[0.0, 0.0, 100.0, 0.0]]])  # exp(100) clamped to 1000 / 16
    boxes = decode_boxes(rois, deltas, (1.0, 1.0, 1.0, 1.0), torch.tensor([[40.0, 600.0]]))
    half = 20 * 1000 / 16 / 2
    torch.testing.assert_close(boxes, torch.tensor([[[0.0, 10.0, min(20 + half, 600.0), 40.0]]]))


def test_roi_levels_use_finest_scale_56():
    sides = torch.tensor([111.9, 112.1, 224.1, 448.1, 2000.0])
    boxes = torch.stack([torch.zeros(5), torch.zeros(5), sides, sides], dim=1)
    assert map_roi_levels(boxes, 4).tolist() == [0, 1, 2, 3, 3]


def test_paste_equals_mmdet_grid_sample():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(1, 5, 28, 28, generator=g)
    boxes = torch.tensor(
        [
            [
                [3.2, 4.7, 40.1, 30.0],
                [-5.0, 10.0, 20.0, 60.0],
                [0.0, 0.0, 63.0, 47.0],
                [30.0, 20.0, 30.5, 20.5],
                [10.0, 10.0, 12.0, 40.0],
            ]
        ]
    )
    pasted = paste_masks(masks, boxes, 48, 64)
    # mmdet _do_paste_mask(skip_empty=False)
    x0, y0, x1, y1 = boxes[0].split(1, dim=1)
    img_y = (torch.arange(48).float() + 0.5 - y0) / (y1 - y0) * 2 - 1
    img_x = (torch.arange(64).float() + 0.5 - x0) / (x1 - x0) * 2 - 1
    grid = torch.stack([img_x[:, None, :].expand(5, 48, 64), img_y[:, :, None].expand(5, 48, 64)], dim=3)
    expected = F.grid_sample(masks[0][:, None], grid, align_corners=False)[:, 0]
    torch.testing.assert_close(pasted[0], expected, atol=1e-5, rtol=0)


def _mmdet_heuristic_fusion(boxes_scores, labels, masks, seg_logits, cfg):
    """mmdet 2.17 HeuristicFusionHead.simple_test, ported line by line (INSTANCE_OFFSET 1000)."""
    id_map = torch.zeros(masks.shape[-2:], dtype=torch.long)
    order = torch.argsort(-boxes_scores)
    instance_id, left = 1, []
    for idx in order.tolist():
        mask = masks[idx]
        area = mask.sum()
        if area == 0:
            continue
        pasted = id_map > 0
        if (mask & pasted).sum() / (area + 1e-5) > cfg.mask_overlap:
            continue
        id_map = torch.where(mask & ~pasted, instance_id, id_map)
        left.append(labels[idx])
        instance_id += 1
    pan = seg_logits.argmax(dim=0) + cfg.num_things
    for i, cls in enumerate(left):
        pan[id_map == i + 1] = cls + (i + 1) * 1000
    ids, counts = torch.unique(pan % 1000, return_counts=True)
    small = ids[(ids >= cfg.num_things) & (counts < cfg.stuff_area_limit)]
    pan[(pan.unsqueeze(2) == small.reshape(1, 1, -1)).any(dim=2)] = cfg.num_things + cfg.num_stuff
    return pan


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_panoptic_fusion_equals_mmdet_heuristic_fusion(seed):
    g = torch.Generator().manual_seed(seed)
    cfg = PanopticTestCfg(num_stuff=5, stuff_area_limit=60)
    count, height, width = 6, 24, 32
    boxes = torch.rand(count, 2, generator=g) * torch.tensor([width, height])
    boxes = torch.cat([boxes, boxes + torch.rand(count, 2, generator=g) * 16 + 2], dim=1)
    rows, cols = torch.arange(height)[:, None], torch.arange(width)[None, :]
    masks = (
        (cols >= boxes[:, 0, None, None])
        & (cols < boxes[:, 2, None, None])
        & (rows >= boxes[:, 1, None, None])
        & (rows < boxes[:, 3, None, None])
        & (torch.rand(count, height, width, generator=g) > 0.2)
    )
    scores = torch.sort(torch.rand(count, generator=g), descending=True).values
    labels = torch.randint(0, 80, (count,), generator=g)
    found = torch.tensor([True] * (count - 1) + [False])
    semantic = torch.randn(cfg.num_stuff + 1, height // 4, width // 4, generator=g)
    semantic = F.interpolate(semantic[None], size=(height, width), mode="nearest")[0]
    shapes = torch.tensor([[height, width, height, width]], dtype=torch.float32)
    segments, segment_labels, areas = panoptic_fusion(
        masks[None], labels[None], found[None], semantic[None], shapes, cfg
    )
    reference = _mmdet_heuristic_fusion(scores[:-1], labels[:-1], masks[:-1], semantic, cfg)
    # Our ids -> mmdet's encoding.
    ours = torch.full((height, width), cfg.num_things + cfg.num_stuff, dtype=torch.long)
    for slot, (label, area) in enumerate(zip(segment_labels[0].tolist(), areas[0].tolist(), strict=True)):
        where = segments[0] == slot + 1
        assert int(where.sum()) == area
        if area:
            ours[where] = label + (slot + 1) * 1000 if slot < count else label
    assert torch.equal(ours, reference)
    assert (segments[0] > 0).any() and (segments[0] > count).any()  # things and stuff both present
