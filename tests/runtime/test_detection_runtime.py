"""Detector pre- and post-processing on the host (litevit.runtime.detection) against mmdet's rules,
and detection-by-detection comparison (litevit.runtime.detection_compare)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from litevit.calibration.coco import CategoryTable
from litevit.calibration.det_results import ImageGeometry, paste_masks
from litevit.errors import LitevitError
from litevit.runtime.detection import DetectionPreprocessing, paste_roi_masks, postprocess
from litevit.runtime.detection_compare import (
    DETECTION_TOLERANCES,
    box_iou,
    compare_outputs,
    label_table,
    match_candidates,
    match_detections,
)

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def _manifest(canvas=None, scale=(1333, 800)):
    dynamic = canvas is None
    return {
        "model": "lvt_panoptic_fpn",
        "task": "panoptic",
        "data_config": {
            "mean": MEAN,
            "std": STD,
            "pixel_scale": 255.0,
            "size_divisor": 32,
            "label_set": "coco_panoptic133",
            "num_classes": 133,
        },
        "img_size": list(canvas or (800, 1344)),
        "dynamic_axes": {"input": {"0": "batch", **({"2": "height", "3": "width"} if dynamic else {})}},
        "hw_range": {"min": [64, 64], "max": [1344, 1344]} if dynamic else None,
        "detection": {"test_scale": list(scale)},
    }


@pytest.mark.parametrize("size", [(480, 640), (640, 427), (333, 1000), (1200, 1600), (50, 70)])
def test_dynamic_canvas_geometry_is_mmdets_keep_ratio_resize_and_pad(size):
    prep = DetectionPreprocessing.from_manifest(_manifest())
    geometry = prep.geometry(*size)
    expected = ImageGeometry.keep_ratio(*size)  # det-eval's port of mmcv's rescale_size + Pad(32)
    assert geometry == expected


def test_fixed_canvas_scales_a_picture_that_does_not_fit_down_until_it_does():
    prep = DetectionPreprocessing.from_manifest(_manifest(canvas=(800, 1344)))
    landscape = prep.geometry(480, 640)  # mmdet's own size fits: 800 x 1067
    assert (landscape.resized_height, landscape.resized_width) == (800, 1067)
    assert (landscape.canvas_height, landscape.canvas_width) == (800, 1344)
    portrait = prep.geometry(640, 480)  # mmdet: 1067 x 800, taller than the canvas
    assert (portrait.resized_height, portrait.resized_width) == (800, 600)
    assert (portrait.canvas_height, portrait.canvas_width) == (800, 1344)


def test_pixels_are_resized_normalised_and_zero_padded():
    prep = DetectionPreprocessing.from_manifest(_manifest(scale=(96, 64)))
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    feeds, (geometry,) = prep.batch([picture])
    assert (geometry.resized_height, geometry.resized_width) == (64, 80)
    canvas = feeds["input"][0]
    assert canvas.shape == (3, 64, 96)
    # torch's bilinear resize (half-pixel, no antialiasing: cv2.INTER_LINEAR's rule), then mean/std.
    resized = F.interpolate(
        torch.from_numpy(picture.transpose(2, 0, 1)[None].astype(np.float32)),
        size=(64, 80),
        mode="bilinear",
        align_corners=False,
    )[0].numpy()
    expected = (resized - np.asarray(MEAN, np.float32)[:, None, None]) / np.asarray(STD, np.float32)[
        :, None, None
    ]
    np.testing.assert_allclose(canvas[:, :, :80], expected, atol=1e-4)
    assert not canvas[:, :, 80:].any()
    np.testing.assert_array_equal(feeds["image_shapes"], [[64, 80, 40, 50]])


def test_a_batch_is_padded_to_its_largest_canvas():
    prep = DetectionPreprocessing.from_manifest(_manifest())
    pictures = [np.zeros((480, 640, 3), np.uint8), np.zeros((640, 480, 3), np.uint8)]
    feeds, geometries = prep.batch(pictures)
    assert feeds["input"].shape == (2, 3, 1088, 1088)
    assert [(g.canvas_height, g.canvas_width) for g in geometries] == [(1088, 1088)] * 2
    np.testing.assert_array_equal(feeds["image_shapes"], [[800, 1067, 480, 640], [1067, 800, 640, 480]])
    with pytest.raises(LitevitError, match="RGB image"):
        prep.batch([np.zeros((10, 10), np.uint8)])


def _mmdet_paste(masks: torch.Tensor, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """mmdet 2.x ``_do_paste_mask(masks, boxes, img_h, img_w, skip_empty=False)`` (the GPU path), line
    by line."""
    x0, y0, x1, y1 = torch.split(boxes, 1, dim=1)
    img_y = torch.arange(0, height, dtype=torch.float32) + 0.5
    img_x = torch.arange(0, width, dtype=torch.float32) + 0.5
    img_y = (img_y - y0) / (y1 - y0) * 2 - 1
    img_x = (img_x - x0) / (x1 - x0) * 2 - 1
    if torch.isinf(img_x).any():
        img_x[torch.where(torch.isinf(img_x))] = 0
    if torch.isinf(img_y).any():
        img_y[torch.where(torch.isinf(img_y))] = 0
    gx = img_x[:, None, :].expand(masks.size(0), img_y.size(1), img_x.size(1))
    gy = img_y[:, :, None].expand(masks.size(0), img_y.size(1), img_x.size(1))
    grid = torch.stack([gx, gy], dim=3)
    return F.grid_sample(masks.to(torch.float32), grid, align_corners=False)[:, 0]


def test_roi_masks_are_pasted_as_mmdet_pastes_them_on_a_gpu():
    rng = np.random.default_rng(0)
    height, width = 70, 90
    boxes = np.array(
        [
            [10.3, 5.7, 60.2, 50.9],  # inside
            [-5.0, 30.0, 20.0, 80.0],  # across the border
            [40.0, 20.0, 40.0, 35.0],  # zero width: mmdet samples the centre column everywhere
            [80.5, 60.5, 89.9, 69.9],  # small, in the corner
            [0.0, 0.0, 90.0, 70.0],  # the whole image
        ],
        np.float32,
    )
    masks = rng.uniform(0, 1, (len(boxes), 28, 28)).astype(np.float32)
    masks[:, 10:18, 10:18] = 0.95  # a solid core, so some pixels pass 0.5 however the noise falls
    expected = _mmdet_paste(torch.from_numpy(masks[:, None]), torch.from_numpy(boxes), height, width) >= 0.5
    got = paste_roi_masks(masks, boxes, height, width)
    assert got.shape == (len(boxes), height, width)
    np.testing.assert_array_equal(got, expected.numpy())
    assert got[2].any() and got[2][:, :20].any()  # the zero-width box's stripe spans the width


def test_postprocess_rescales_boxes_and_pastes_canvas_masks_at_the_original_size():
    geometry = ImageGeometry(40, 50, 64, 80, 64, 96)
    boxes = np.array([[[8.0, 16.0, 40.0, 48.0], [70.0, 60.0, 95.0, 64.0], [0, 0, 0, 0]]], np.float32)
    masks = np.zeros((1, 3, 64, 96), bool)
    masks[0, 0, 16:48, 8:40] = True
    outputs = {
        "boxes": boxes,
        "scores": np.array([[0.9, 0.5, 0.0]], np.float32),
        "labels": np.array([[2, 0, -1]], np.int32),
        "num_detections": np.array([2], np.int32),
        "masks": masks,
    }
    result = postprocess(outputs, 0, geometry, CategoryTable.from_label_set("coco80"))
    # Clipped to the 64 x 80 resized image, divided by the scale 80/50 = 64/40 = 1.6.
    np.testing.assert_allclose(result.boxes, [[5, 10, 25, 30], [43.75, 37.5, 50, 40]], rtol=1e-6)
    np.testing.assert_array_equal(result.labels, [2, 0])
    assert result.masks is not None and result.masks.shape == (2, 40, 50)
    np.testing.assert_array_equal(result.masks, paste_masks(geometry, masks[0, :2]))
    assert result.masks[0, 10:30, 5:25].all() and not result.masks[0, :9].any()


def test_postprocess_renumbers_panoptic_segments_and_names_their_categories():
    geometry = ImageGeometry(32, 32, 32, 32, 32, 64)
    segment_map = np.zeros((1, 32, 64), np.int32)
    segment_map[0, :16, :32] = 1  # instance slot 1 (a person)
    segment_map[0, 16:, :32] = 5  # stuff slot: K + 1 + s with K = 2, s = 2
    segment_map[0, :, 32:] = 0  # padding: void
    labels = np.array([[0, -1, 80, 81, 82]], np.int32)
    areas = np.array([[512, 0, 0, 0, 512]], np.int32)
    outputs = {
        "boxes": np.zeros((1, 2, 4), np.float32),
        "scores": np.array([[0.9, 0]], np.float32),
        "labels": np.array([[0, -1]], np.int32),
        "num_detections": np.array([1], np.int32),
        "panoptic": segment_map,
        "segment_labels": labels,
        "segment_areas": areas,
    }
    table = CategoryTable.from_label_set("coco_panoptic133")
    result = postprocess(outputs, 0, geometry, table)
    assert result.panoptic is not None and result.panoptic.shape == (32, 32)
    assert set(np.unique(result.panoptic).tolist()) == {1, 2}
    by_id = {segment["id"]: segment for segment in result.segments}
    assert by_id[1]["category_id"] == 1 and by_id[1]["isthing"] == 1 and by_id[1]["area"] == 512
    assert by_id[2]["label"] == 82 and by_id[2]["category_id"] == table.ids[82] and by_id[2]["isthing"] == 0


# --------------------------------------------------------------------------------------------
# Detection-by-detection comparison


def test_box_iou_by_hand():
    iou = box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 5, 5]]))
    np.testing.assert_allclose(iou, [[1 / 7, 1.0, 0.0]])


def test_detections_are_matched_by_iou_and_label_not_by_order():
    tol = DETECTION_TOLERANCES["fp32"]
    ref_boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], np.float32)
    boxes = ref_boxes[[2, 0, 1]] + 0.001
    match = match_detections(ref_boxes, np.array([1, 2, 3]), boxes, np.array([3, 1, 2]), tol)
    assert sorted(match.pairs) == [(0, 1), (1, 2), (2, 0)] and match.fraction == 1.0
    wrong_label = match_detections(ref_boxes, np.array([1, 2, 3]), boxes, np.array([3, 1, 1]), tol)
    assert wrong_label.fraction == pytest.approx(2 / 3)
    fewer = match_detections(ref_boxes, np.array([1, 2, 3]), boxes[:1], np.array([3]), tol)
    assert fewer.fraction == pytest.approx(1 / 3)
    # Boxes clipped to zero width have no IoU, even with themselves: equal coordinates match.
    flat = np.array([[0, 10, 0, 50], [0, 12, 0, 52]], np.float32)
    assert match_detections(flat, np.array([1, 1]), flat[::-1].copy(), np.array([1, 1]), tol).fraction == 1.0
    moved = flat + [0, 0, 0, 1]  # 1 pixel off: zero IoU, outside the FP32 box tolerance
    assert match_detections(flat, np.array([1, 1]), moved, np.array([1, 1]), tol).fraction == 0.0


def test_candidates_match_in_any_order_among_near_ties_and_not_when_moved():
    tol = DETECTION_TOLERANCES["fp32"]
    rng = np.random.default_rng(0)
    boxes = rng.uniform(0, 500, (200, 4)).astype(np.float32)
    scores = rng.uniform(0, 1, 200).astype(np.float32)
    scores[:40] = 1.0  # a trained RPN saturates: 40 equal scores
    scores[150:] = -1.0  # padding
    shuffled = rng.permutation(200)
    fraction, worst, count = match_candidates(boxes, scores, boxes[shuffled], scores[shuffled], tol)
    assert (fraction, count) == (1.0, 150) and worst == 0.0
    moved = boxes.copy()
    moved[:15] += 1.0  # 10 % of the valid candidates off by a pixel
    fraction, _, _ = match_candidates(boxes, scores, moved, scores, tol)
    assert fraction == pytest.approx(135 / 150)
    rescored = scores.copy()
    rescored[100:110] += 1e-3  # beyond FP32's score tolerance
    fraction, _, _ = match_candidates(boxes, scores, boxes, rescored, tol)
    assert fraction == pytest.approx(140 / 150)


def test_compare_outputs_catches_a_changed_mask_and_a_changed_panoptic_map():
    tol = DETECTION_TOLERANCES["fp32"]
    masks = np.zeros((1, 2, 20, 20), bool)
    masks[0, 0, 2:10, 2:10] = True
    masks[0, 1, 12:18, 12:18] = True
    reference = {
        "boxes": np.array([[[2, 2, 10, 10], [12, 12, 18, 18]]], np.float32),
        "scores": np.array([[0.9, 0.8]], np.float32),
        "labels": np.array([[0, 1]], np.int32),
        "num_detections": np.array([2], np.int32),
        "masks": masks,
    }
    same = compare_outputs(reference, dict(reference), tol, None, ("picture", [1, 3, 20, 20]))
    assert all(check.passed for check in same)
    changed = dict(reference, masks=masks.copy())
    changed["masks"][0, 1, 12:15] = False
    checks = {c.check: c for c in compare_outputs(reference, changed, tol, None, ("picture", [1, 3, 20, 20]))}
    assert not checks["masks"].passed and checks["masks"].value == pytest.approx(0.5)
    assert checks["detections"].passed

    segment_map = np.zeros((1, 20, 20), np.int32)
    segment_map[0, :10] = 1
    segment_map[0, 10:] = 4
    panoptic = {
        **{k: v for k, v in reference.items() if k != "masks"},
        "panoptic": segment_map,
        "segment_labels": np.array([[0, 1, 2, 3]], np.int32),
        "segment_areas": np.array([[200, 0, 0, 200]], np.int32),
    }
    table = label_table(4)
    assert all(c.passed for c in compare_outputs(panoptic, dict(panoptic), tol, table, ("shapes", [1])))
    split = dict(panoptic, panoptic=segment_map.copy())
    split["panoptic"][0, :10, :10] = 0  # half of segment 1 becomes void: IoU 0.5 is not a match
    check = compare_outputs(panoptic, split, tol, table, ("shapes", [1]))[-1]
    assert check.check == "panoptic" and not check.passed and math.isclose(check.value, 0.5)


def test_a_tie_for_the_last_of_k_places_is_not_a_mismatch():
    tol = DETECTION_TOLERANCES["fp32"]
    reference = {
        "boxes": np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]], np.float32),
        "scores": np.array([[0.9, 0.5, 0.3]], np.float32),
        "labels": np.array([[0, 1, 1]], np.int32),
        "num_detections": np.array([3], np.int32),
    }
    # K = 3 places, both full; the third place went to another box of the same score.
    tied = {**reference, "boxes": reference["boxes"].copy()}
    tied["boxes"][0, 2] = [70, 70, 80, 80]
    (detections, _) = compare_outputs(reference, tied, tol, None, ("picture", [1]))
    assert detections.passed and "1 tied at the K cut-off" in detections.detail
    lower = {**tied, "scores": np.array([[0.9, 0.5, 0.29]], np.float32)}
    (detections, _) = compare_outputs(reference, lower, tol, None, ("picture", [1]))
    assert not detections.passed and detections.value == pytest.approx(2 / 3)
