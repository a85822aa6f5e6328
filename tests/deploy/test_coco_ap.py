"""COCO box and mask AP (``litevit.calibration.coco_ap``) and model outputs -> COCO results
(``litevit.calibration.det_results``): hand-computed figures on a hand-made set, then end to end
on the synthetic shapes. Torch-free; runs in CI's torch-free and Python 3.8 venvs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from litevit.calibration.coco import CategoryTable, load_instances_json, mask_to_rle, read_coco_instances
from litevit.calibration.coco_ap import evaluate_coco, format_coco_evaluation
from litevit.calibration.det_results import ImageGeometry, detections_to_coco, encode_masks, paste_masks
from litevit.errors import DataError
from litevit.runtime.bench import resize_bilinear
from litevit.synthetic_shapes import write_shapes_dataset

# COCOeval's 101 recall thresholds 0, 0.01, ..., 1: with perfect precision up to recall r, AP is
# the share of thresholds <= r.
RECALL_POINTS = 101


def _square(top: int, left: int, side: int, size=(40, 60)) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[top : top + side, left : left + side] = True
    return mask


# Image 1 (40 x 60): three 10 x 10 squares of category 5 ("a") and one of category 9 ("b");
# image 2: one more "a". Ids with gaps, so category ids and contiguous labels differ.
OBJECTS = [(1, 5, 0, 0), (1, 5, 0, 20), (1, 5, 20, 0), (1, 9, 20, 40), (2, 5, 5, 5)]


@pytest.fixture
def hand_made(tmp_path) -> Path:
    annotations = []
    for index, (image_id, category_id, top, left) in enumerate(OBJECTS):
        mask = _square(top, left, 10)
        annotations.append(
            {
                "id": index + 1,
                "image_id": image_id,
                "category_id": category_id,
                "bbox": [left, top, 10, 10],
                "area": 100,
                "iscrowd": 0,
                "segmentation": mask_to_rle(mask),
            }
        )
    data = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 60, "height": 40} for i in (1, 2)],
        "annotations": annotations,
        "categories": [{"id": 9, "name": "b"}, {"id": 5, "name": "a"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def _results(objects, score=0.9):
    out = []
    for image_id, category_id, top, left in objects:
        (rle,) = encode_masks(_square(top, left, 10)[None])
        out.append(
            {
                "image_id": image_id,
                "category_id": category_id,
                "bbox": [left, top, 10, 10],
                "score": score,
                "segmentation": rle,
            }
        )
    return out


def test_perfect_predictions_score_one(hand_made):
    gt = load_instances_json(hand_made, hand_made.parent)
    before = json.dumps(gt.dataset, sort_keys=True)
    evaluation = evaluate_coco(gt, _results(OBJECTS))
    assert json.dumps(gt.dataset, sort_keys=True) == before  # pycocotools' in-place edits stay on copies
    for iou_type in ("bbox", "segm"):
        result = evaluation.results[iou_type]
        assert result.scores == {"AP": 1.0, "AP50": 1.0, "AP75": 1.0, "APs": 1.0, "APm": None, "APl": None}
        assert result.per_class == pytest.approx([1.0, 1.0])  # labels: a (id 5), b (id 9)
    text = format_coco_evaluation(evaluation)
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000" in text
    assert (
        "bbox_mAP: 1.000, bbox_mAP_50: 1.000, bbox_mAP_75: 1.000, bbox_mAP_s: 1.000, bbox_mAP_m: -1.000"
        in text
    )
    assert "segm_mAP_copypaste: 1.000 1.000 1.000 1.000 -1.000 -1.000" in text


def test_a_missed_object_costs_the_recall_thresholds_beyond_its_recall(hand_made):
    gt = load_instances_json(hand_made, hand_made.parent)
    evaluation = evaluate_coco(gt, _results(OBJECTS[1:]))  # class a: 3 of its 4 objects found
    expected_a = 76 / RECALL_POINTS  # recall 0.75: thresholds 0, 0.01, ..., 0.75
    for iou_type in ("bbox", "segm"):
        result = evaluation.results[iou_type]
        assert result.per_class == pytest.approx([expected_a, 1.0])
        assert result.scores["AP"] == pytest.approx((expected_a + 1) / 2)


def test_a_false_positive_ranked_first_caps_precision(hand_made):
    gt = load_instances_json(hand_made, hand_made.parent)
    # A class-a detection scored above all others, on empty ground: precision k/(k+1) after k of
    # the 4 objects, so 4/5 at every recall threshold once interpolated.
    results = _results(OBJECTS) + _results([(2, 5, 25, 45)], score=0.95)
    result = evaluate_coco(gt, results, iou_types=("bbox",)).results["bbox"]
    assert result.per_class == pytest.approx([4 / 5, 1.0])


def test_box_and_mask_iou_decide_the_thresholds_passed(hand_made):
    gt = load_instances_json(hand_made, hand_made.parent)
    results = _results(OBJECTS)
    # b's box moved 2.3 px right: IoU 77/123 = 0.626 passes 0.50, 0.55, 0.60 of the ten thresholds.
    results[3]["bbox"] = [42.3, 20, 10, 10]
    # b's mask loses 13 of its 100 pixels: IoU 0.87 passes 0.50 ... 0.85, eight thresholds.
    mask = _square(20, 40, 10)
    mask[20, 40:50] = False
    mask[21, 40:43] = False
    (results[3]["segmentation"],) = encode_masks(mask[None])
    evaluation = evaluate_coco(gt, results)
    bbox, segm = evaluation.results["bbox"], evaluation.results["segm"]
    assert bbox.per_class == pytest.approx([1.0, 0.3])
    assert bbox.scores["AP"] == pytest.approx(0.65)
    assert bbox.scores["AP50"] == 1.0 and bbox.scores["AP75"] == pytest.approx(0.5)
    assert segm.per_class == pytest.approx([1.0, 0.8])
    assert segm.scores["AP75"] == 1.0


def test_no_detections_and_a_subset_of_images(hand_made):
    gt = load_instances_json(hand_made, hand_made.parent)
    empty = evaluate_coco(gt, []).results["bbox"]
    assert empty.scores == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "APs": 0.0, "APm": None, "APl": None}
    # Only image 1 scored: image 2's object, which nothing predicts, does not count.
    only_first = evaluate_coco(gt, _results(OBJECTS[:4]), image_ids=[1])
    assert only_first.images == 1 and only_first.results["segm"].scores["AP"] == 1.0
    assert evaluate_coco(gt, _results(OBJECTS[:4])).results["segm"].scores["AP"] < 1.0


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda r: r.update(image_id=7),
            "record 0 has image_id 7, which is not an image of the ground truth",
        ),
        (
            lambda r: r.update(category_id=0),
            r"record 0 has category_id 0, which is not a category of the ground truth "
            r"\(COCO category ids, not contiguous labels\)",
        ),
        (
            lambda r: r.pop("bbox"),
            r"record 0 has no valid 'bbox' \(\[x, y, width, height\] in original-image pixels\)",
        ),
        (lambda r: r.pop("score"), "record 0 has no numeric 'score'"),
        (
            lambda r: r.update(segmentation=mask_to_rle(_square(0, 0, 10))),
            "record 0 has no compressed RLE 'segmentation'",
        ),
        (
            lambda r: r["segmentation"].update(size=[60, 40]),
            r"record 0 has an RLE of size \[60, 40\] but image 1 is \[height, width\] = \[40, 60\]",
        ),
    ],
)
def test_malformed_results_are_refused(hand_made, edit, message):
    gt = load_instances_json(hand_made, hand_made.parent)
    results = _results(OBJECTS)
    edit(results[0])
    with pytest.raises(DataError, match=f"^results.json: {message}"):
        evaluate_coco(gt, results, source="results.json")


def test_mask_ap_needs_masks_in_the_ground_truth(hand_made):
    data = json.loads(hand_made.read_text())
    del data["annotations"][2]["segmentation"]
    hand_made.write_text(json.dumps(data))
    gt = load_instances_json(hand_made, hand_made.parent)
    assert evaluate_coco(gt, _results(OBJECTS), iou_types=("bbox",)).results["bbox"].scores["AP"] == 1.0
    with pytest.raises(DataError, match="annotation 3 has no 'segmentation'; mask AP needs one"):
        evaluate_coco(gt, _results(OBJECTS))


# --------------------------------------------------------------------------------------------
# Model outputs -> COCO results


def test_keep_ratio_geometry_is_mmdets_test_resize():
    # 640 x 480 image, scale (1333, 800): factor min(1333/640, 800/480) = 5/3 -> 1067 x 800
    # (640 * 5/3 = 1066.67 rounds half up), padded to 1088 x 800.
    geometry = ImageGeometry.keep_ratio(480, 640)
    assert (geometry.resized_height, geometry.resized_width) == (800, 1067)
    assert (geometry.canvas_height, geometry.canvas_width) == (800, 1088)
    assert geometry.scale_factor == (1067 / 640, 800 / 480)
    tall = ImageGeometry.keep_ratio(1000, 300)  # long side bound: 1333/1000
    assert (tall.resized_height, tall.resized_width, tall.canvas_height) == (1333, 400, 1344)


def test_boxes_map_back_to_original_pixels_and_padding_rows_are_ignored():
    table = CategoryTable.from_coco([{"id": 3, "name": "x"}, {"id": 11, "name": "y"}], "t")
    # 100 x 200 image resized to 50 x 80 (height scale 0.5, width scale 0.4), placed at (top 4,
    # left 8) of a 64 x 128 canvas.
    geometry = ImageGeometry(100, 200, 50, 80, 64, 128, top=4, left=8)
    boxes = np.array([[18, 9, 38, 24], [0, 0, 200, 200], [1, 2, 3, 4]], np.float32)
    records = detections_to_coco(
        7, geometry, table, boxes, np.array([0.9, 0.5, 0.1]), np.array([1, 0, 1]), count=2
    )
    assert records == [
        # x: (18 - 8) / 0.4 = 25 .. (38 - 8) / 0.4 = 75; y: (9 - 4) / 0.5 = 10 .. (24 - 4) / 0.5 = 40
        {"image_id": 7, "category_id": 11, "bbox": [25.0, 10.0, 50.0, 30.0], "score": pytest.approx(0.9)},
        # clipped to the image: the canvas's padding is not part of it
        {"image_id": 7, "category_id": 3, "bbox": [0.0, 0.0, 200.0, 100.0], "score": 0.5},
    ]
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        detections_to_coco(7, geometry, table, boxes, np.ones(3), np.array([2, 0, 0]), count=1)
    with pytest.raises(ValueError, match="expected arrays on the 64x128 canvas"):
        detections_to_coco(
            7, geometry, table, boxes, np.ones(3), np.zeros(3, int), 1, masks=np.ones((3, 50, 80))
        )


def test_pasted_masks_equal_a_full_bilinear_resize_and_threshold():
    rng = np.random.default_rng(0)
    geometry = ImageGeometry(37, 51, 50, 70, 64, 96, top=3, left=5)
    masks = np.zeros((4, 64, 96), np.float32)
    masks[0, 10:30, 20:40] = rng.random((20, 20))  # probabilities
    masks[1, 3:53, 5:75] = 0.49  # nowhere >= 0.5: empty
    masks[2, 20:22, 60:62] = 1.0  # a 2 x 2 blob on the image's edge region
    masks[3] = rng.random((64, 96)) > 0.5  # binary noise everywhere
    pasted = paste_masks(geometry, masks)
    crop = masks[:, 3:53, 5:75]
    np.testing.assert_array_equal(pasted, resize_bilinear(crop, (37, 51)) >= 0.5)
    assert pasted.shape == (4, 37, 51) and not pasted[1].any() and pasted[2].any()


# --------------------------------------------------------------------------------------------
# End to end on the synthetic shapes


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes_dataset(tmp_path_factory.mktemp("shapes"), 8, size=(48, 64), seed=11)


def _network_outputs(instances, image_id, geometry, k=10):
    """What a perfect detector's graph would give: ground truth at twice the size on a padded
    canvas, padded to ``k`` slots (nearest upsampling by 2 and bilinear back down is exact)."""
    anns = [a for a in instances.dataset["annotations"] if a["image_id"] == image_id]
    label_of = instances.categories.label_of()
    boxes = np.zeros((k, 4), np.float32)
    masks = np.zeros((k, geometry.canvas_height, geometry.canvas_width), np.float32)
    labels = np.zeros(k, np.int64)
    from pycocotools import mask as mask_utils

    for row, ann in enumerate(anns):
        x, y, w, h = ann["bbox"]
        boxes[row] = np.array([x, y, x + w, y + h]) * 2 + [geometry.left, geometry.top] * 2
        mask = mask_utils.decode(mask_utils.frPyObjects(ann["segmentation"], 48, 64))
        masks[row, geometry.top : geometry.top + 96, geometry.left : geometry.left + 128] = np.kron(
            mask, np.ones((2, 2))
        )
        labels[row] = label_of[ann["category_id"]]
    scores = np.linspace(1.0, 0.5, k).astype(np.float32)
    return boxes, scores, labels, len(anns), masks


def _detect_all(instances, drop=lambda ann: False):
    geometry = ImageGeometry(48, 64, 96, 128, 104, 136, top=3, left=5)
    results = []
    for image in instances.images:
        boxes, scores, labels, count, masks = _network_outputs(instances, image.id, geometry)
        anns = [a for a in instances.dataset["annotations"] if a["image_id"] == image.id]
        keep = [row for row, ann in enumerate(anns) if not drop(ann)]
        records = detections_to_coco(
            image.id,
            geometry,
            instances.categories,
            boxes[keep],
            scores[keep],
            labels[keep],
            len(keep),
            masks[keep],
        )
        results.extend(records)
    return results


def test_ground_truth_through_the_output_contract_scores_one(shapes):
    instances = read_coco_instances(shapes.root)
    evaluation = evaluate_coco(instances, _detect_all(instances))
    for iou_type in ("bbox", "segm"):
        assert evaluation.results[iou_type].scores["AP"] == 1.0
        assert evaluation.results[iou_type].per_class == [1.0, 1.0, 1.0]


def test_perturbed_outputs_score_what_is_computed_by_hand(shapes):
    instances = read_coco_instances(shapes.root)
    anns = instances.dataset["annotations"]
    # Every triangle missed: triangle AP 0, the other two classes 1.
    without_triangles = evaluate_coco(instances, _detect_all(instances, lambda a: a["category_id"] == 6))
    for iou_type in ("bbox", "segm"):
        assert without_triangles.results[iou_type].per_class == [1.0, 1.0, 0.0]
        assert without_triangles.results[iou_type].scores["AP"] == pytest.approx(2 / 3)
    # One square missed: recall (n - 1)/n for the n squares.
    squares = [a for a in anns if a["category_id"] == 3]
    n = len(squares)
    assert n >= 2
    one_square = evaluate_coco(instances, _detect_all(instances, lambda a: a["id"] == squares[0]["id"]))
    thresholds = math.floor(100 * (n - 1) / n + 1e-9) + 1
    for iou_type in ("bbox", "segm"):
        assert one_square.results[iou_type].per_class == pytest.approx([1.0, thresholds / RECALL_POINTS, 1.0])
