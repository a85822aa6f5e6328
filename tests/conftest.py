"""Shared fixtures: the trained LVT on scikit-learn's digits and its images as files.

``tests/fixtures/trained`` (made by its ``make_fixture.py``) holds the weights, the facts of how
they were trained, and the digits themselves; its ``digits.py`` is put on ``sys.path`` here so that
tests (and benchmarks) can ``import digits`` without scikit-learn.
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
if str(TRAINED_DIR) not in sys.path:
    sys.path.insert(0, str(TRAINED_DIR))

import digits  # noqa: E402  (importable only once its folder is on sys.path)


@dataclass(frozen=True)
class TrainedModel:
    """The fixture's weights and ``lvt_digits.json``: ``facts["model"]``, ``["model_kwargs"]`` and
    ``["img_size"]`` are what ``export_model`` needs; ``["torch_test_top1"]`` what training measured."""

    weights: Path
    facts: dict[str, Any]


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
