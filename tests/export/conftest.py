"""The smoke exports of every registered model, made once per session: the export tests and the
parser-coverage tests read the same graphs (treat them as read-only)."""

from __future__ import annotations

from collections.abc import Callable

import onnx
import pytest

from litevit.export.onnx_export import GraphSpec, SegmentationLabels, output_names, torch_to_onnx
from litevit.models import create_model

SMOKE_SIZE = (64, 64)


def smoke_module(name: str):
    model = create_model(name, smoke=True)
    return SegmentationLabels(model) if model.cfg.task == "segmentation" else model


@pytest.fixture(scope="session")
def smoke_export() -> Callable[[str], onnx.ModelProto]:
    """``smoke_export(name)``: the smoke model at 64x64 with a dynamic batch (and dynamic H x W
    for segmenters), litevit nodes without bodies, opset 17, exported once per session."""
    exported: dict[str, onnx.ModelProto] = {}

    def export(name: str) -> onnx.ModelProto:
        if name not in exported:
            module = smoke_module(name)
            segmentation = module.cfg.task == "segmentation"
            spec = GraphSpec(SMOKE_SIZE, 1, True, segmentation, 17, "plugin")
            exported[name] = torch_to_onnx(module, spec, output_names(module.cfg.task, "labels"))
        return exported[name]

    return export
