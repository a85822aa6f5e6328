"""COCO data for detectors (``litevit.calibration.coco``) and the synthetic shapes data set: layouts,
refusals in one sentence, category tables, panoptic id coding, determinism. Torch-free; runs in
CI's torch-free and Python 3.8 venvs."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litevit.calibration.coco import (
    CategoryTable,
    id_to_rgb,
    mask_box,
    mask_to_rle,
    panoptic_png,
    read_coco_instances,
    read_coco_panoptic,
    read_panoptic_png,
    rgb_to_id,
)
from litevit.errors import DataError
from litevit.labels import class_names, coco_categories
from litevit.synthetic_shapes import CATEGORIES, shapes_scene, write_shapes_dataset

COCO_THING_GAPS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes_dataset(tmp_path_factory.mktemp("shapes"), 6, size=(64, 80), seed=3)


def _copy(shapes, tmp_path: Path) -> Path:
    return Path(shutil.copytree(shapes.root, tmp_path / "data"))


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# --------------------------------------------------------------------------------------------
# Categories


def test_coco_tables_map_the_80_thing_ids_and_the_53_stuff_to_contiguous_labels():
    things = CategoryTable.from_label_set("coco80")
    assert len(things) == 80 and all(things.isthing)
    assert set(things.ids) == set(range(1, 91)) - COCO_THING_GAPS
    assert list(things.ids) == sorted(things.ids)
    label_of = things.label_of()
    assert label_of[1] == 0 and label_of[13] == 11 and label_of[90] == 79  # stop sign: id 13, label 11
    assert things.names[label_of[13]] == "stop sign"

    panoptic = CategoryTable.from_label_set("coco_panoptic133")
    assert len(panoptic) == 133 and panoptic.num_things == 80
    assert panoptic.ids[:80] == things.ids and panoptic.names[:80] == things.names
    assert (panoptic.ids[80], panoptic.names[80]) == (92, "banner")
    assert (panoptic.ids[132], panoptic.names[132]) == (200, "rug-merged")
    assert not any(panoptic.isthing[80:]) and list(panoptic.ids[80:]) == sorted(panoptic.ids[80:])
    assert class_names("coco_panoptic133") == list(panoptic.names)
    assert class_names("coco80") == list(things.names)
    assert all(len(c.color) == 3 for c in coco_categories())


def test_category_order_is_things_by_id_then_stuff_by_id():
    table = CategoryTable.from_coco([dict(c) for c in CATEGORIES], "shapes")
    assert table.names == ("circle", "square", "triangle", "sky", "grass", "wall")
    assert table.label_of() == {1: 0, 3: 1, 6: 2, 2: 3, 4: 4, 5: 5}
    # An instances file has no isthing: every category is a thing.
    plain = CategoryTable.from_coco([{"id": 7, "name": "b"}, {"id": 2, "name": "a"}], "x.json")
    assert plain.ids == (2, 7) and plain.num_things == 2


def test_data_categories_must_be_ones_the_model_predicts():
    coco = CategoryTable.from_label_set("coco_panoptic133")
    subset = CategoryTable.from_coco([{"id": 3, "name": "car"}, {"id": 1, "name": "person"}], "d.json")
    subset.check_predicted_by(coco, "d.json", "lvt_panoptic_fpn")  # a subset of COCO's is fine
    CategoryTable.from_label_set("coco80").check_predicted_by(coco, "d.json", "lvt_panoptic_fpn")
    shapes = CategoryTable.from_coco([dict(c) for c in CATEGORIES], "shapes.json")
    with pytest.raises(DataError, match="^shapes.json: category 1 is 'circle' but 'person' for m; the"):
        shapes.check_predicted_by(coco, "shapes.json", "m")
    with pytest.raises(DataError, match=r"^d.json: category 12 \('x'\) is not one that m predicts"):
        CategoryTable.from_coco([{"id": 12, "name": "x"}], "d.json").check_predicted_by(coco, "d.json", "m")
    with pytest.raises(DataError, match=r"category 92 \('banner'\) is a thing but stuff for m"):
        CategoryTable.from_coco([{"id": 92, "name": "banner"}], "d").check_predicted_by(coco, "d", "m")


@pytest.mark.parametrize(
    "categories, message",
    [
        ([], "'categories' must be a non-empty list"),
        ([{"id": 1, "name": "a"}, {"id": 1, "name": "b"}], "category id 1 appears more than once"),
        ([{"id": "1", "name": "a"}], r"categories\[0\] has no integer 'id'"),
        ([{"id": 0, "name": "a"}], "category ids must be positive"),
    ],
)
def test_bad_categories_are_refused(categories, message):
    with pytest.raises(DataError, match=f"^x.json: {message}"):
        CategoryTable.from_coco(categories, "x.json")


# --------------------------------------------------------------------------------------------
# Panoptic ids, RLE


def test_panoptic_ids_round_trip_through_rgb_and_png(tmp_path):
    ids = np.array([[0, 1, 255, 256], [65535, 65536, 123456, 256**3 - 1]], np.int64)
    rgb = id_to_rgb(ids)
    assert rgb.dtype == np.uint8 and rgb[1, 2].tolist() == [
        123456 % 256,
        (123456 // 256) % 256,
        123456 // 65536,
    ]
    np.testing.assert_array_equal(rgb_to_id(rgb), ids)
    (tmp_path / "p.png").write_bytes(panoptic_png(ids))
    np.testing.assert_array_equal(read_panoptic_png(tmp_path / "p.png", (2, 4)), ids)
    with pytest.raises(DataError, match=r"is 4x2 but its image is 5x2"):
        read_panoptic_png(tmp_path / "p.png", (2, 5))
    Image.fromarray(np.zeros((2, 4), np.uint8)).save(tmp_path / "gray.png")
    with pytest.raises(DataError, match=r"is a L image; panoptic PNGs are RGB"):
        read_panoptic_png(tmp_path / "gray.png")
    with pytest.raises(DataError, match=r"ids must lie in \[0, 16777216\)"):
        id_to_rgb(np.array([256**3]))


def test_uncompressed_rle_and_box_agree_with_pycocotools():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    for shape in [(7, 5), (16, 16), (1, 9)]:
        for first in (False, True):
            mask = rng.random(shape) < 0.4
            mask[0, 0] = first
            rle = mask_to_rle(mask)
            compressed = mask_utils.frPyObjects(rle, *shape)
            np.testing.assert_array_equal(mask_utils.decode(compressed).astype(bool), mask)
            if mask.any():
                assert mask_box(mask) == mask_utils.toBbox(compressed).tolist()


# --------------------------------------------------------------------------------------------
# Synthetic shapes


def test_shapes_partition_the_image_and_are_deterministic(tmp_path):
    scene = shapes_scene(5, seed=1, size=(48, 64))
    assert scene.image.shape == (48, 64, 3) and scene.image.dtype == np.uint8
    np.testing.assert_array_equal(np.sum(scene.masks, axis=0), 1)  # every pixel in exactly one segment
    assert any(scene.isthing) and not all(scene.isthing)
    again = shapes_scene(5, seed=1, size=(48, 64))
    np.testing.assert_array_equal(again.image, scene.image)
    assert not np.array_equal(shapes_scene(5, seed=2, size=(48, 64)).image, scene.image)

    def digest(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    first = digest(write_shapes_dataset(tmp_path / "a", 3, size=(48, 64), seed=1).root)
    assert first == digest(write_shapes_dataset(tmp_path / "b", 3, size=(48, 64), seed=1).root)
    longer = digest(write_shapes_dataset(tmp_path / "c", 4, size=(48, 64), seed=1).root)
    assert all(longer[name] == first[name] for name in first if name.startswith("images/"))


def test_shapes_layouts_read_back_consistently(shapes):
    instances = read_coco_instances(shapes.root)
    panoptic = read_coco_panoptic(shapes.root)
    assert [im.id for im in instances.images] == [1, 2, 3, 4, 5, 6] == [im.id for im in panoptic.images]
    assert instances.image_dir == shapes.image_dir and all(im.path.is_file() for im in instances.images)
    assert instances.categories.names == ("circle", "square", "triangle")
    assert panoptic.categories.names == ("circle", "square", "triangle", "sky", "grass", "wall")
    for image in panoptic.images:
        ann = panoptic.annotations[image.id]
        ids = read_panoptic_png(ann.png, (64, 80))
        assert set(np.unique(ids).tolist()) == {s["id"] for s in ann.segments}  # no VOID, all listed
        things = [s for s in ann.segments if s["category_id"] in (1, 3, 6)]
        boxes = sorted(a["bbox"] for a in instances.dataset["annotations"] if a["image_id"] == image.id)
        assert boxes == sorted(s["bbox"] for s in things)
        for segment in ann.segments:
            assert int((ids == segment["id"]).sum()) == segment["area"]
            assert mask_box(ids == segment["id"]) == segment["bbox"]


# --------------------------------------------------------------------------------------------
# Layouts and refusals


def test_coco_own_layout_with_the_split_folder_is_read(shapes, tmp_path):
    root = _copy(shapes, tmp_path)
    (root / "images").rename(root / "val")
    instances = read_coco_instances(root, split="val")
    assert instances.image_dir == root / "val" and instances.images[0].path == root / "val" / "000000.png"
    assert read_coco_panoptic(root).image_dir == root / "val"


def test_layout_refusals_name_what_is_missing(shapes, tmp_path):
    with pytest.raises(DataError, match="does not exist or is not a folder"):
        read_coco_instances(tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        DataError, match=r"has no annotations/instances_\*.json: the COCO instances layout is"
    ):
        read_coco_instances(empty)
    root = _copy(shapes, tmp_path)
    shutil.copy(root / "annotations" / "instances_val.json", root / "annotations" / "instances_train.json")
    with pytest.raises(
        DataError, match=r"has 2 instances files \(instances_train.json, instances_val.json\)"
    ):
        read_coco_instances(root)
    assert read_coco_instances(root, split="train").annotation_file.name == "instances_train.json"
    with pytest.raises(DataError, match="has no annotations/instances_test.json"):
        read_coco_instances(root, split="test")
    (root / "images" / "000002.png").unlink()
    with pytest.raises(
        DataError,
        match=r"1 image\(s\) listed in instances_val.json are missing, e.g. images/000002.png \(image 3\)",
    ):
        read_coco_instances(root, split="val")
    shutil.rmtree(root / "images")
    with pytest.raises(DataError, match="has neither images/ nor val/"):
        read_coco_instances(root, split="val")


def test_panoptic_layout_refusals(shapes, tmp_path):
    root = _copy(shapes, tmp_path)
    (root / "annotations" / "panoptic_val" / "000004.png").unlink()
    with pytest.raises(
        DataError,
        match=r"1 panoptic PNG\(s\) listed in panoptic_val.json are missing, "
        r"e.g. annotations/panoptic_val/000004.png",
    ):
        read_coco_panoptic(root)
    shutil.rmtree(root / "annotations" / "panoptic_val")
    with pytest.raises(
        DataError,
        match=r"the panoptic PNG folder .* does not exist: "
        r"the PNGs of panoptic_val.json go in annotations/panoptic_val/",
    ):
        read_coco_panoptic(root)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda d: d["annotations"][0].update(image_id=999),
            "annotation 1 refers to image_id 999, which is not in 'images'",
        ),
        (
            lambda d: d["annotations"][1].update(category_id=2),
            "annotation 2 has category_id 2, which is not in 'categories'",
        ),
        (
            lambda d: d["annotations"][0].update(bbox=[0, 0, -1, 3]),
            r"annotation 1 has no valid 'bbox' \(\[x, y, width, height\]",
        ),
        (
            lambda d: d["annotations"][0]["segmentation"].update(size=[80, 64]),
            r"annotation 1 has an RLE of size \[80, 64\] but its image is \[height, width\] = \[64, 80\]",
        ),
        (
            lambda d: d["annotations"][0]["segmentation"]["counts"].append(3),
            "annotation 1 has RLE counts that do not add up to its 64x80 pixels",
        ),
        (
            lambda d: d["annotations"][0].update(segmentation=[[1, 2, "x"]]),
            "annotation 1 has a 'segmentation' list that is not polygons",
        ),
        (lambda d: d["annotations"][1].update(id=1), "annotation 1 appears more than once"),
        (lambda d: d["images"][0].pop("height"), "image 1 has no positive integer 'height'"),
        (
            lambda d: d.pop("categories"),
            r"has no 'categories' list \(a COCO file has images, annotations, categories\)",
        ),
    ],
)
def test_malformed_instances_are_refused_naming_the_file(shapes, tmp_path, edit, message):
    root = _copy(shapes, tmp_path)
    path = root / "annotations" / "instances_val.json"
    _edit_json(path, edit)
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}:? .*{message}"):
        read_coco_instances(root)


def test_missing_area_and_iscrowd_are_filled_in(shapes, tmp_path):
    root = _copy(shapes, tmp_path)
    path = root / "annotations" / "instances_val.json"
    areas = [a["area"] for a in json.loads(path.read_text())["annotations"]]

    def strip(data):
        for ann in data["annotations"]:
            del ann["area"], ann["iscrowd"]
        data["annotations"][0]["segmentation"] = [[0, 0, 10, 0, 10, 10, 0, 10]]  # a polygon
        del data["annotations"][1]["segmentation"]

    _edit_json(path, strip)
    anns = read_coco_instances(root).dataset["annotations"]
    assert [a["iscrowd"] for a in anns] == [0] * len(anns)
    assert anns[0]["area"] == 100.0  # the polygon's raster: 10 x 10 pixels
    assert anns[1]["area"] == anns[1]["bbox"][2] * anns[1]["bbox"][3]  # no mask: the box's area
    assert [a["area"] for a in anns[2:]] == areas[2:]


def test_invalid_json_and_malformed_panoptic_files_are_refused(shapes, tmp_path):
    root = _copy(shapes, tmp_path)
    path = root / "annotations" / "panoptic_val.json"
    text = path.read_text()
    path.write_text(text[:-20])
    with pytest.raises(
        DataError, match=f"the panoptic annotation file '{re.escape(str(path))}' is not valid JSON"
    ):
        read_coco_panoptic(root)
    for edit, message in [
        (
            lambda d: d["annotations"][0]["segments_info"][0].update(category_id=77),
            "segment .* has category_id 77, which is not in the categories",
        ),
        (
            lambda d: d["annotations"][0]["segments_info"].append(
                dict(d["annotations"][0]["segments_info"][0])
            ),
            "has segment id .* more than once",
        ),
        (
            lambda d: d["annotations"].pop(2),
            r"1 image\(s\) have no panoptic annotation, e.g. image 3 \(000002.png\)",
        ),
        (
            lambda d: d["annotations"][0].update(image_id=42),
            "the annotation of image 42|image_id 42, which is not in 'images'",
        ),
        (
            lambda d: d["annotations"][0]["segments_info"][0].update(id=0),
            r"has segment id 0; ids lie in 1..16777215 \(0 is VOID\)",
        ),
    ]:
        path.write_text(text)
        _edit_json(path, edit)
        with pytest.raises(DataError, match=f"^{re.escape(str(path))}: .*({message})"):
            read_coco_panoptic(root)
