"""Shared fixtures and the per-architecture rule for tests parametrised over every model.

Fixtures: the trained LVT on scikit-learn's digits and its images as files; the trained
detectors on synthetic shapes, their held-out data and their exported artefacts.

``tests/fixtures/trained`` (made by its ``make_fixture.py``) holds the weights, the facts of how
they were trained, and the digits themselves; its ``digits.py`` is put on ``sys.path`` here so that
tests (and benchmarks) can ``import digits`` without scikit-learn. ``tests/fixtures/detection``
(made by its ``make_fixture.py``) holds the two detectors' weights and facts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TRAINED_DIR = Path(__file__).resolve().parent / "fixtures" / "trained"
DETECTION_DIR = Path(__file__).resolve().parent / "fixtures" / "detection"
if str(TRAINED_DIR) not in sys.path:
    sys.path.insert(0, str(TRAINED_DIR))

import digits  # noqa: E402  (importable only once its folder is on sys.path)


def architecture_representatives() -> dict[str, str]:
    """Each registered model -> the first registered model of its architecture.

    Two models share an architecture when they have the same task and their smoke models are
    built from the same set of module classes (ELSA-Swin T/S/B, Mobile-Former 26M-508M, SegViT
    ViT-B/L on any data set: same code at other widths and depths; Shrunk and Cascade are other
    architectures). Built once per collection (about 5 s of smoke models).
    """
    from litevit import create_model
    from litevit.models import get_model_cfg, list_models

    first: dict[tuple[str, frozenset[str]], str] = {}
    representative = {}
    for name in list_models():
        modules = frozenset(type(m).__qualname__ for m in create_model(name, smoke=True).modules())
        representative[name] = first.setdefault((get_model_cfg(name).task, modules), name)
    return representative


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the slow mark must be there by then
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.per_architecture`` on a test parametrised by ``name`` over models: the
    default run keeps one model per architecture, the others are marked ``slow`` (CI runs both)."""
    marked = [item for item in items if item.get_closest_marker("per_architecture")]
    if not marked:
        return
    representative = architecture_representatives()
    for item in marked:
        name = item.callspec.params["name"]  # type: ignore[attr-defined]
        if representative[name] != name:
            item.add_marker(pytest.mark.slow)


@dataclass(frozen=True)
class TrainedModel:
    """The fixture's weights and ``lvt_digits.json``: ``facts["model"]``, ``["model_kwargs"]`` and
    ``["img_size"]`` are what ``export_model`` needs; ``["torch_test_top1"]`` what training measured."""

    weights: Path
    facts: dict[str, Any]


@pytest.fixture(scope="session")
def smoke_artifact(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``smoke_artifact(name, **export options)``: the model's smoke architecture exported at 64x64
    (parity gate on), once per session for each distinct set of options (treat as read-only)."""
    exported: dict[tuple[str, tuple[tuple[str, Any], ...]], Path] = {}

    def make(name: str, **options: Any) -> Path:
        key = (name, tuple(sorted(options.items())))
        if key not in exported:
            from litevit.export import export_model
            from litevit.models import get_model_cfg

            folder = tmp_path_factory.mktemp(name) / name
            export_model(
                name,
                img_size=(64, 64),
                model_kwargs=get_model_cfg(name).smoke_arch,
                out_dir=folder,
                log=lambda line: None,
                **options,
            )
            exported[key] = folder
        return exported[key]

    return make


@pytest.fixture(scope="session")
def trained_lvt() -> TrainedModel:
    return TrainedModel(
        TRAINED_DIR / "lvt_digits.pth", json.loads((TRAINED_DIR / "lvt_digits.json").read_text())
    )


@pytest.fixture(scope="session")
def trained_upernet() -> TrainedModel:
    """ELSA UPerNet's smoke architecture trained on ``shapes`` scenes (``make_seg_fixture.py``);
    ``facts["test_protocol"]`` is the sliding-window protocol it is scored with."""
    return TrainedModel(
        TRAINED_DIR / "upernet_shapes.pth", json.loads((TRAINED_DIR / "upernet_shapes.json").read_text())
    )


@pytest.fixture(scope="session")
def shape_scenes(tmp_path_factory: pytest.TempPathFactory) -> Callable[[range], Path]:
    """``shape_scenes(seeds)``: ``images/`` + ``annotations/`` folders of those ``shapes`` scenes,
    written once per session; treat them as read-only."""
    import shapes

    written: dict[tuple[int, int], Path] = {}

    def make(seeds: range) -> Path:
        key = (seeds.start, seeds.stop)
        if key not in written:
            written[key] = shapes.write_scenes(tmp_path_factory.mktemp(f"scenes-{key[0]}-{key[1]}"), seeds)
        return written[key]

    return make


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``digit_folder(split, layout="classes", limit=None)``: a folder of that split's digits as PNG
    files (see ``digits.write_digit_images``), written once per session; treat it as read-only."""
    written: dict[tuple[str, str, int | None], Path] = {}

    def make(split: str, layout: str = "classes", limit: int | None = None) -> Path:
        key = (split, layout, limit)
        if key not in written:
            root = tmp_path_factory.mktemp(f"digits-{split}-{layout}-{limit or 'all'}")
            written[key] = digits.write_digit_images(root, split, layout=layout, limit=limit)
        return written[key]

    return make


@pytest.fixture(scope="session")
def trained_detector() -> Callable[[str], TrainedModel]:
    """``trained_detector(name)``: ``shapes_mask_rcnn`` or ``shapes_panoptic_fpn`` (their facts also
    hold the held-out scores training measured, ``["heldout"]``)."""

    def load(name: str) -> TrainedModel:
        return TrainedModel(
            DETECTION_DIR / f"{name}.pth", json.loads((DETECTION_DIR / f"{name}.json").read_text())
        )

    return load


@pytest.fixture(scope="session")
def shapes_heldout(
    tmp_path_factory: pytest.TempPathFactory, trained_detector: Callable[[str], TrainedModel]
) -> Path:
    """The detectors' held-out synthetic shapes, both COCO layouts (treat as read-only)."""
    from litevit.synthetic_shapes import write_shapes_dataset

    facts = trained_detector("shapes_mask_rcnn").facts
    return write_shapes_dataset(
        tmp_path_factory.mktemp("shapes-heldout"),
        facts["heldout"]["images"],
        size=tuple(facts["img_size"]),
        seed=facts["heldout"]["seed"],
    ).root


# What each trained detector is exported with, once per session (parity gate included): the Mask
# R-CNN with a dynamic batch and an FP16 graph, the Panoptic FPN with a dynamic canvas.
DETECTOR_EXPORTS: dict[str, dict[str, Any]] = {
    "shapes_mask_rcnn": {"dynamic_batch": True, "fp16": True},
    "shapes_panoptic_fpn": {"dynamic_hw": True},
}


@pytest.fixture(scope="session")
def detector_artifact(
    tmp_path_factory: pytest.TempPathFactory, trained_detector: Callable[[str], TrainedModel]
) -> Callable[[str], Path]:
    """``detector_artifact(name)``: the trained detector exported as :data:`DETECTOR_EXPORTS` says,
    once per session (treat as read-only)."""
    from litevit.export import export_model

    exported: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in exported:
            trained = trained_detector(name)
            folder = tmp_path_factory.mktemp(name) / name
            export_model(
                trained.facts["model"],
                weights=trained.weights,
                img_size=trained.facts["img_size"],
                model_kwargs=trained.facts["model_kwargs"],
                out_dir=folder,
                threads=1,
                log=lambda line: None,
                **DETECTOR_EXPORTS[name],
            )
            exported[name] = folder
        return exported[name]

    return make
