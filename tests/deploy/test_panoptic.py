"""Panoptic quality (``litevit.calibration.panoptic``) and panoptic outputs -> COCO panoptic
(``litevit.calibration.det_results``): hand-computed cases of the definition (Kirillov et al.
2019 with COCO's VOID and crowd rules), an independent brute-force count on random maps, the file
format, and the synthetic shapes end to end. Torch-free; runs in CI's torch-free and Python 3.8
venvs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from litevit.calibration.coco import CategoryTable, read_coco_panoptic
from litevit.calibration.det_results import (
    ImageGeometry,
    panoptic_to_coco,
    segments_from_mmdet,
    write_panoptic_predictions,
)
from litevit.calibration.panoptic import (
    PanopticQuality,
    evaluate_panoptic,
    evaluate_panoptic_files,
    format_panoptic,
    ground_truth_ids,
)
from litevit.errors import DataError
from litevit.synthetic_shapes import write_shapes_dataset

# Things a (id 1) and b (id 3), stuff sky (2) and grass (4): labels a 0, b 1, sky 2, grass 3.
TABLE = CategoryTable.from_coco(
    [
        {"id": 1, "name": "a", "isthing": 1},
        {"id": 2, "name": "sky", "isthing": 0},
        {"id": 3, "name": "b", "isthing": 1},
        {"id": 4, "name": "grass", "isthing": 0},
    ],
    "test",
)
A, SKY, B, GRASS = 1, 2, 3, 4


def _segments(*pairs, crowd=()):
    return [{"id": sid, "category_id": cid, "iscrowd": int(sid in crowd)} for sid, cid in pairs]


def _scene():
    """10 x 10: sky rows 0-4 (id 5), grass rows 5-9 (id 6) holding a 3 x 3 ``a`` (id 7) and a
    2 x 4 ``b`` (id 8)."""
    ids = np.full((10, 10), 5)
    ids[5:] = 6
    ids[6:9, 1:4] = 7
    ids[7:9, 5:9] = 8
    return ids, _segments((5, SKY), (6, GRASS), (7, A), (8, B))


def _score(gt, gt_segments, pred, pred_segments):
    meter = PanopticQuality(TABLE)
    meter.update(np.asarray(gt), gt_segments, np.asarray(pred), pred_segments)
    return meter.result()


def _per_class(result):
    return {c.name: (c.tp, c.fp, c.fn, c.pq) for c in result.per_class}


# --------------------------------------------------------------------------------------------
# Hand-computed cases


def test_a_perfect_prediction_scores_one_whatever_its_ids():
    gt, segments = _scene()
    pred = gt * 1000 + 3  # other ids, same partition
    result = _score(gt, segments, pred, [dict(s, id=s["id"] * 1000 + 3) for s in segments])
    assert result.scores() == {
        k: 1.0 for k in ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st")
    }
    assert (result.all.n, result.things.n, result.stuff.n) == (4, 2, 2)


def test_one_missing_segment_is_a_false_negative():
    gt, segments = _scene()
    pred = gt.copy()
    pred[pred == 7] = 0  # a is not predicted: its pixels are VOID in the prediction
    result = _score(gt, segments, pred, [s for s in segments if s["id"] != 7])
    assert _per_class(result)["a"] == (0, 0, 1, 0.0)
    # a: PQ = SQ = RQ = 0; b, sky, grass: 1.
    assert (result.all.pq, result.all.sq, result.all.rq) == (0.75, 0.75, 0.75)
    assert (result.things.pq, result.stuff.pq) == (0.5, 1.0)


def test_a_split_segment_gives_one_match_and_one_false_positive():
    gt, segments = _scene()
    pred = gt.copy()
    pred[3:5] = 9  # sky (50 px) predicted as 30 px (id 5) + 20 px (id 9), both sky
    result = _score(gt, segments, pred, _segments((5, SKY), (6, GRASS), (7, A), (8, B), (9, SKY)))
    sky = next(c for c in result.per_class if c.name == "sky")
    # The 30 px part: IoU 30/50 = 0.6 > 0.5, a match; the 20 px part (IoU 0.4) a false positive.
    assert (sky.tp, sky.fp, sky.fn) == (1, 1, 0)
    assert sky.sq == pytest.approx(0.6) and sky.rq == pytest.approx(1 / 1.5) and sky.pq == pytest.approx(0.4)
    assert result.all.pq == pytest.approx((0.4 + 3) / 4)


def test_an_iou_of_exactly_one_half_is_not_a_match():
    gt, segments = _scene()
    pred = gt.copy()
    pred[7:9, 7:9] = 6  # b (8 px) predicted as its left 4 px, the rest as grass: IoU 4/8
    result = _score(gt, segments, pred, segments)
    assert _per_class(result)["b"][:3] == (0, 1, 1)
    assert _per_class(result)["grass"][:3] == (1, 0, 0)


def test_void_pixels_leave_the_union_and_mostly_void_predictions_are_ignored():
    gt, segments = _scene()
    gt[0:2] = 0  # the top 20 px of sky are VOID (unlabelled): sky is 30 px
    pred = gt.copy()
    pred[0:2] = 5  # sky predicted over the VOID too: IoU = 30 / (50 - 20 + 30 - 30) = 1
    pred[1, 0:3] = 9  # a b-prediction, 3 px VOID ...
    pred[2, 0:2] = 9  # ... and 2 px of sky: 3/5 VOID, more than half: not a false positive
    pred[1, 5:7] = 10  # an a-prediction, 2 px VOID ...
    pred[2, 5:8] = 10  # ... and 3 px of sky: 2/5 VOID: a false positive
    pred_segments = _segments((5, SKY), (6, GRASS), (7, A), (8, B), (9, B), (10, A))
    result = _score(gt, segments, pred, pred_segments)
    per_class = _per_class(result)
    sky = next(c for c in result.per_class if c.name == "sky")
    # sky lost 5 px of its 30 to the two small predictions: IoU 25/30 (the VOID it covers is free).
    assert (sky.tp, sky.fp, sky.fn) == (1, 0, 0) and sky.iou == pytest.approx(25 / 30)
    assert per_class["b"][:3] == (1, 0, 0)
    assert per_class["a"][:3] == (1, 1, 0)


def test_crowd_regions_never_match_never_miss_and_absorb_predictions_of_their_class():
    gt, segments = _scene()
    gt[0:4, 0:4] = 11  # a crowd of a (16 px) in the sky
    segments = segments + _segments((11, A), crowd=(11,))
    pred = gt.copy()
    pred[0:4, 0:4] = 5  # the crowd predicted as sky ...
    pred[0:3, 0:4] = 12  # ... except 12 px predicted as an a, with 2 px of sky: 12/14 crowd of a: ignored
    pred[0, 4:6] = 12
    pred[0:2, 6:8] = 13  # a b over 4 px of sky: a false positive
    pred_segments = _segments((5, SKY), (6, GRASS), (7, A), (8, B), (12, A), (13, B))
    result = _score(gt, segments, pred, pred_segments)
    per_class = _per_class(result)
    assert per_class["a"][:3] == (1, 0, 0)  # the crowd is no false negative, the 14 px a no false positive
    assert per_class["b"][:3] == (1, 1, 0)
    # A b-prediction over the a crowd is not absorbed: only crowd of the prediction's own class is.
    pred[0:3, 0:4] = 13
    pred[0, 4:6] = 5
    result = _score(gt, segments, pred, _segments((5, SKY), (6, GRASS), (7, A), (8, B), (13, B)))
    assert _per_class(result)["b"][:3] == (1, 1, 0)


def test_categories_that_never_occur_are_left_out_of_the_means():
    gt, segments = _scene()
    gt[gt == 8] = 6  # no b anywhere
    result = _score(gt, [s for s in segments if s["id"] != 8], gt, [s for s in segments if s["id"] != 8])
    assert _per_class(result)["b"] == (0, 0, 0, None)
    assert (result.all.n, result.things.n, result.things.pq) == (3, 1, 1.0)
    only_stuff = _score(np.full((4, 4), 5), _segments((5, SKY)), np.full((4, 4), 5), _segments((5, SKY)))
    assert only_stuff.things.pq is None and only_stuff.things.n == 0
    assert "| Things | -  " in format_panoptic(only_stuff)


def test_id_maps_and_segments_info_must_agree():
    gt, segments = _scene()
    with pytest.raises(
        DataError, match="the prediction for img 4 has segment id 7 in its PNG but not in its segments_info"
    ):
        PanopticQuality(TABLE).update(gt, segments, gt, segments[:2] + segments[3:], where="img 4")
    with pytest.raises(
        DataError, match="the ground truth of img 4 lists segment 99 in its segments_info but has no pixel"
    ):
        PanopticQuality(TABLE).update(gt, segments + _segments((99, A)), gt, segments, where="img 4")
    with pytest.raises(
        DataError, match="segment 8 has category_id 77, which is not a category of the ground truth"
    ):
        PanopticQuality(TABLE).update(gt, segments, gt, segments[:3] + _segments((8, 77)), where="img 4")
    with pytest.raises(DataError, match="the prediction for img 4 is 10x9 but its ground truth is 10x10"):
        PanopticQuality(TABLE).update(gt, segments, gt[:9], segments, where="img 4")


# --------------------------------------------------------------------------------------------
# An independent brute-force count on random maps


def _brute_force(gt, gt_segments, pred, pred_segments):
    """Per category [tp, fp, fn, iou] with one boolean mask per segment and plain loops."""
    stats = {cid: [0, 0, 0, 0.0] for cid in TABLE.ids}
    void = gt == 0
    crowd_of = {}
    for g in gt_segments:
        if g["iscrowd"]:
            crowd_of[g["category_id"]] = crowd_of.get(g["category_id"], np.zeros_like(void)) | (gt == g["id"])
    matched_gt, matched_pred = set(), set()
    for g in gt_segments:
        if g["iscrowd"]:
            continue
        g_mask = gt == g["id"]
        for p in pred_segments:
            p_mask = pred == p["id"]
            if p["category_id"] != g["category_id"] or not p_mask.any():
                continue
            union = (g_mask | (p_mask & ~void)).sum()
            iou = (g_mask & p_mask).sum() / union
            if iou > 0.5:
                stats[g["category_id"]][0] += 1
                stats[g["category_id"]][3] += iou
                matched_gt.add(g["id"])
                matched_pred.add(p["id"])
    for g in gt_segments:
        if not g["iscrowd"] and g["id"] not in matched_gt:
            stats[g["category_id"]][2] += 1
    for p in pred_segments:
        p_mask = pred == p["id"]
        if p["id"] in matched_pred or not p_mask.any():
            continue
        absorbed = void | crowd_of.get(p["category_id"], np.zeros_like(void))
        if (p_mask & absorbed).sum() / p_mask.sum() <= 0.5:
            stats[p["category_id"]][1] += 1
    return stats


def _random_image(rng):
    """A 16 x 16 ground truth of painted rectangles (some crowd, some VOID) and a prediction made
    from it by shifting, relabelling, merging and splitting segments."""
    gt = np.zeros((16, 16), np.int64)
    categories = {}
    for sid in range(1, rng.integers(3, 9)):
        y, x = rng.integers(0, 14, 2)
        h, w = rng.integers(2, 9, 2)
        gt[y : y + h, x : x + w] = sid
        categories[sid] = int(rng.choice(TABLE.ids))
    present = [sid for sid in np.unique(gt).tolist() if sid]
    crowd = {sid for sid in present if rng.random() < 0.2}
    gt_segments = [{"id": s, "category_id": categories[s], "iscrowd": int(s in crowd)} for s in present]
    pred = np.where(gt > 0, gt + 100, 0)
    if rng.random() < 0.7:  # fill some VOID with a segment
        pred[pred == 0] = 150
    dy, dx = rng.integers(-2, 3, 2)
    shifted = np.roll(pred, (dy, dx), axis=(0, 1))
    take = rng.random((16, 16)) < 0.3
    pred = np.where(take, shifted, pred)
    y, x = rng.integers(0, 14, 2)
    pred[y : y + 4, x : x + 3] = 151  # a new segment
    if rng.random() < 0.5:  # split one segment
        pred[(pred == pred.max()) & (np.arange(16)[None, :] % 2 == 0)] = 152
    pred_ids = [sid for sid in np.unique(pred).tolist() if sid]
    pred_segments = [
        {
            "id": s,
            "category_id": categories.get(s - 100, int(rng.choice(TABLE.ids)))
            if rng.random() < 0.8
            else int(rng.choice(TABLE.ids)),
        }
        for s in pred_ids
    ]
    return gt, gt_segments, pred, pred_segments


def test_pq_equals_an_independent_brute_force_count():
    rng = np.random.default_rng(2019)
    meter = PanopticQuality(TABLE)
    totals = {cid: [0, 0, 0, 0.0] for cid in TABLE.ids}
    matches = 0
    for _ in range(150):
        gt, gt_segments, pred, pred_segments = _random_image(rng)
        meter.update(gt, gt_segments, pred, pred_segments)
        for cid, (tp, fp, fn, iou) in _brute_force(gt, gt_segments, pred, pred_segments).items():
            totals[cid][0] += tp
            totals[cid][1] += fp
            totals[cid][2] += fn
            totals[cid][3] += iou
            matches += tp
    result = meter.result()
    for label, cid in enumerate(TABLE.ids):
        c = result.per_class[label]
        tp, fp, fn, iou = totals[cid]
        assert (c.tp, c.fp, c.fn) == (tp, fp, fn) and c.iou == pytest.approx(iou)
        assert c.pq == pytest.approx(iou / (tp + fp / 2 + fn / 2))
    assert matches > 100 and all(sum(t[:3]) for t in totals.values())  # the random maps exercise every path
    assert 0.1 < result.all.pq < 0.9


# --------------------------------------------------------------------------------------------
# Files and the output contract, end to end on the synthetic shapes


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes_dataset(tmp_path_factory.mktemp("shapes"), 6, size=(48, 64), seed=5)


def _canvas_outputs(panoptic, image_id, geometry, drop=()):
    """What a perfect panoptic graph would give: the ground truth at twice the size on a padded
    canvas, with its own ids and contiguous labels; ``drop``'s category ids become VOID."""
    ids, segments = ground_truth_ids(panoptic, image_id)
    label_of = panoptic.categories.label_of()
    canvas = np.full((geometry.canvas_height, geometry.canvas_width), 0, np.int64)
    region = np.kron(ids, np.ones((2, 2), np.int64))
    dropped = [s["id"] for s in segments if s["category_id"] in drop]
    region[np.isin(region, dropped)] = 0
    canvas[geometry.top : geometry.top + 96, geometry.left : geometry.left + 128] = region
    canvas[canvas > 0] += 17  # new ids
    out_segments = [
        {
            "id": s["id"] + 17,
            "label": label_of[s["category_id"]],
            "isthing": panoptic.categories.isthing_of()[s["category_id"]],
        }
        for s in segments
        if s["id"] not in dropped
    ]
    return canvas, out_segments


GEOMETRY = ImageGeometry(48, 64, 96, 128, 100, 136, top=1, left=6)


def _predict(panoptic, drop=()):
    for image in panoptic.images:
        canvas, segments = _canvas_outputs(panoptic, image.id, GEOMETRY, drop)
        yield (image.id, *panoptic_to_coco(GEOMETRY, panoptic.categories, canvas, segments))


def test_ground_truth_through_the_output_contract_scores_one_and_a_dropped_class_zero(shapes):
    panoptic = read_coco_panoptic(shapes.root)
    perfect = evaluate_panoptic(panoptic, _predict(panoptic))
    assert perfect.all.pq == 1.0 and perfect.all.n == 6 and perfect.images == 6
    # No triangle (id 6) predicted: its pixels VOID. Triangle PQ 0 (all false negatives), the
    # others 1 (VOID in a prediction costs nothing else): PQ 5/6, things 2/3, stuff 1.
    without = evaluate_panoptic(panoptic, _predict(panoptic, drop=(6,)))
    triangle = next(c for c in without.per_class if c.name == "triangle")
    count = sum(s["category_id"] == 6 for a in panoptic.annotations.values() for s in a.segments)
    assert (triangle.tp, triangle.fp, triangle.fn, triangle.pq) == (0, 0, count, 0.0)
    assert without.all.pq == pytest.approx(5 / 6) and without.things.pq == pytest.approx(2 / 3)
    assert without.stuff.pq == 1.0


def test_predictions_in_coco_panoptic_files_score_the_same(shapes, tmp_path):
    panoptic = read_coco_panoptic(shapes.root)
    pred_json = tmp_path / "pred" / "panoptic_pred.json"
    pred_json.parent.mkdir()
    names = {image.id: image.file_name.replace(".png", "_pan.png") for image in panoptic.images}
    png_dir = write_panoptic_predictions(
        pred_json,
        ((image_id, names[image_id], ids, info) for image_id, ids, info in _predict(panoptic, drop=(6,))),
    )
    assert png_dir == tmp_path / "pred" / "panoptic_pred" and len(list(png_dir.iterdir())) == 6
    from_files = evaluate_panoptic_files(panoptic, pred_json)
    assert from_files.scores() == evaluate_panoptic(panoptic, _predict(panoptic, drop=(6,))).scores()

    data = json.loads(pred_json.read_text())
    data["annotations"].pop(0)
    pred_json.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"has no prediction for image 1 \(1 image\(s\) missing\)"):
        evaluate_panoptic_files(panoptic, pred_json)
    data["annotations"].insert(0, {"image_id": 1, "file_name": names[1], "segments_info": []})
    pred_json.write_text(json.dumps(data))
    with pytest.raises(
        DataError, match="the prediction for image 1 has segment id 1 in its PNG but not in its segments_info"
    ):
        evaluate_panoptic_files(panoptic, pred_json)


def test_ground_truth_png_and_segments_info_must_agree(shapes, tmp_path):
    import shutil

    root = shutil.copytree(shapes.root, tmp_path / "data")
    path = root / "annotations" / "panoptic_val.json"
    data = json.loads(path.read_text())
    dropped = data["annotations"][1]["segments_info"].pop()
    path.write_text(json.dumps(data))
    predictions = list(_predict(read_coco_panoptic(shapes.root)))
    with pytest.raises(
        DataError,
        match=f"the ground truth of image 2 has segment id {dropped['id']} in its PNG "
        f"but not in its segments_info",
    ):
        evaluate_panoptic(read_coco_panoptic(root), predictions)


def test_panoptic_outputs_are_cropped_resized_and_renumbered():
    table = TABLE
    # 4 x 4 image shown at 8 x 8 on a 9 x 10 canvas at (1, 2); nearest takes even canvas rows/cols.
    geometry = ImageGeometry(4, 4, 8, 8, 9, 10, top=1, left=2)
    canvas = np.zeros((9, 10), np.int64)
    canvas[1:9, 2:10] = 500  # grass
    canvas[1:5, 2:6] = 40  # an a
    canvas[2, 3] = 41  # a b on an odd row and column of the image: gone at 4 x 4
    canvas[0, :] = 77  # padding above the image: cropped away
    segments = [
        {"id": 500, "label": 3},
        {"id": 40, "label": 0, "isthing": True},
        {"id": 41, "label": 1},
        {"id": 77, "label": 2},
    ]
    ids, info = panoptic_to_coco(geometry, table, canvas, segments)
    expected = np.full((4, 4), 2)
    expected[:2, :2] = 1
    np.testing.assert_array_equal(ids, expected)
    assert info == [
        {"id": 1, "category_id": A, "isthing": 1, "area": 4},
        {"id": 2, "category_id": GRASS, "isthing": 0, "area": 12},
    ]
    with pytest.raises(ValueError, match="segment 40 says isthing=False but 'a' is a thing"):
        panoptic_to_coco(
            geometry, table, canvas, [dict(s, isthing=False) if s["id"] == 40 else s for s in segments]
        )
    with pytest.raises(ValueError, match="segment id 500 is in the map but has no entry"):
        panoptic_to_coco(geometry, table, canvas, segments[1:])


def test_mmdet_panoptic_encoding_is_decoded():
    # mmdet 2.x: label + instance * 1000 per pixel, VOID = num_classes (4 here).
    pan = np.array([[3, 3, 4], [1000, 2001, 4]])
    segment_map, segments = segments_from_mmdet(pan, num_classes=4)
    np.testing.assert_array_equal(segment_map, [[4, 4, 0], [1001, 2002, 0]])
    assert segments == [{"id": 4, "label": 3}, {"id": 1001, "label": 0}, {"id": 2002, "label": 1}]
    geometry = ImageGeometry(2, 3, 2, 3, 2, 3)
    ids, info = panoptic_to_coco(geometry, TABLE, segment_map, segments)
    assert [(s["category_id"], s["area"]) for s in info] == [(GRASS, 2), (A, 1), (B, 1)]
    np.testing.assert_array_equal(ids, [[1, 1, 0], [2, 3, 0]])
