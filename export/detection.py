"""Detectors in the export: their two graph inputs, their options, and their parity gate.

A detector graph (``litevit.models.detection``) takes ``input`` (B, 3, H, W), the normalised,
padded canvas, and ``image_shapes`` (B, 4) float, per image the resized image's (height, width)
inside the canvas and the original image's (height, width). Its outputs are the model's
``output_names``. Both inputs share the batch axis; H and W are dynamic with ``--dynamic-hw``.
K (detections per image) is static.

Options (``DetectionOptions``): ``mask_output`` ``canvas`` (masks pasted in the graph, bool on
the canvas) or ``roi`` (28 x 28 probabilities, pasted on the host at the original resolution,
Mask R-CNN only); ``score_thr`` the RCNN score threshold written into the graph (default: the
official config's); ``gate_score_thr`` the threshold the parity gate runs at (default: the
graph's when weights are loaded, :data:`RANDOM_WEIGHTS_GATE_THRESHOLD` for random weights, whose
class scores sit near 1/81 and would leave every detection empty). The threshold is the graph's
weight ``score_threshold``: the gate sets it in an in-memory copy and in the PyTorch model, which
is the same graph with one weight changed.

The parity gate (ONNX Runtime CPU against PyTorch FP32, same inputs): inputs are image-like, not
noise: smooth synthetic pictures (``litevit.synthetic``) and synthetic shapes scenes
(``litevit.synthetic_shapes``), several images per batch with different resized sizes padded to
the canvas; a second batch size and a second canvas when those axes are dynamic. Compared
(:mod:`litevit.runtime.detection_compare`, tolerances in its ``DETECTION_TOLERANCES``): the
boxes and scores entering every ``NonMaxSuppression`` (the RPN's and the RCNN's: a dense test of
the backbone, neck, RPN and RoI heads that does not depend on a detection surviving the score
threshold; PyTorch's are recorded at its NMS op, ONNX Runtime's are added as graph outputs), the
detections matched by IoU (not by order) with their scores and masks, and Panoptic FPN's segments
by PQ against PyTorch's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from litevit import synthetic
from litevit.artifacts import DETECTION_TASKS
from litevit.errors import LitevitError
from litevit.export.onnx_export import (
    INPUT_NAME,
    ExportInputs,
    GraphSpec,
    example_input,
    image_dynamic_shapes,
)
from litevit.export.parity import cpu_session
from litevit.runtime.detection_compare import (
    DETECTION_TOLERANCES,
    DetectionGate,
    compare_candidates,
    compare_outputs,
    label_table,
)
from litevit.models import model_cfg
from litevit.models.detection.detectors import MASK_OUTPUTS, SCORE_THRESHOLD, TwoStageDetector
from litevit.models.detection.zoo import CANVAS, MMDET_TEST_SCALE
from litevit.ops.nms import NMS_OP
from litevit.synthetic_shapes import shapes_scene

IMAGE_SHAPES = "image_shapes"
# Random weights give class scores near 1 / (classes + 1): the gate lowers the threshold to 0 so
# that detections, masks and panoptic segments exist and are compared.
RANDOM_WEIGHTS_GATE_THRESHOLD = 0.0


def is_detector(task: str) -> bool:
    return task in DETECTION_TASKS


@dataclass(frozen=True)
class DetectionOptions:
    """What ``litevit-export`` can choose for a detector (module docstring)."""

    mask_output: str = "canvas"
    score_thr: float | None = None
    gate_score_thr: float | None = None

    def check(self, task: str) -> None:
        if self.mask_output not in MASK_OUTPUTS:
            raise LitevitError(
                f"unknown --det-masks {self.mask_output!r}; choose one of {', '.join(MASK_OUTPUTS)}."
            )
        if self.mask_output == "roi" and task == "panoptic":
            raise LitevitError(
                "--det-masks roi applies to Mask R-CNN models: Panoptic FPN fuses pasted masks in the graph."
            )
        for name, value in (("--score-thr", self.score_thr), ("--gate-score-thr", self.gate_score_thr)):
            if value is not None and not 0.0 <= value < 1.0:
                raise LitevitError(f"{name} must lie in [0, 1); got {value}.")

    def model_kwargs(self) -> dict[str, Any]:
        """The builder options these set (``litevit.models.detection.zoo``)."""
        kwargs: dict[str, Any] = {"mask_output": self.mask_output}
        if self.score_thr is not None:
            kwargs["score_thr"] = self.score_thr
        return kwargs

    def manifest(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_manifest(cls, entry: dict[str, Any]) -> DetectionOptions:
        """The options of a manifest's ``detection`` entry (which also records facts of the export)."""
        return cls(**{f.name: entry[f.name] for f in dataclasses.fields(cls) if f.name in entry})

    def gate_threshold(self, module: torch.nn.Module, has_weights: bool) -> float:
        if self.gate_score_thr is not None:
            return self.gate_score_thr
        if has_weights:
            return graph_score_threshold(module)
        return RANDOM_WEIGHTS_GATE_THRESHOLD


def as_detector(module: torch.nn.Module) -> TwoStageDetector:
    if not isinstance(module, TwoStageDetector):
        raise LitevitError(f"{type(module).__name__} is not a litevit detector.")
    return module


def output_names(module: torch.nn.Module) -> list[str]:
    return list(as_detector(module).output_names)


def graph_score_threshold(module: torch.nn.Module) -> float:
    """The RCNN score threshold the module (and so its graph) is built with."""
    return round(float(getattr(module, SCORE_THRESHOLD)), 6)  # the float32 buffer's value, as written


def detection_inputs(module: torch.nn.Module, spec: GraphSpec) -> ExportInputs:
    """Example ``input`` and ``image_shapes`` for tracing; the batch axis is one axis of both."""
    images = example_input(spec, model_cfg(module).size_divisor)
    batch, _, height, width = images.shape
    shapes = torch.tensor([height, width, height, width], dtype=torch.float32).repeat(batch, 1)
    dynamic = None
    if spec.dynamic_axes():
        image_dims = image_dynamic_shapes(module, spec)
        dynamic = (image_dims, {0: image_dims[0]} if 0 in image_dims else {})
    return ExportInputs((images, shapes), (INPUT_NAME, IMAGE_SHAPES), dynamic)


def test_scale(cfg: Any, img_size: Sequence[int]) -> list[int]:
    """The keep-ratio resize limits (long side, short side) of the host pre-processing: mmdet's
    1333 x 800 for an export at the registered canvas, else the export size's own sides."""
    if tuple(img_size) == tuple(cfg.input_size) and tuple(cfg.input_size) == CANVAS:
        return list(MMDET_TEST_SCALE)
    return [max(img_size), min(img_size)]


def hw_range(cfg: Any, spec: GraphSpec) -> dict[str, list[int]] | None:
    """The canvas sizes a ``--dynamic-hw`` detector graph is meant for (TensorRT profiles): from
    the model's smallest input to a square of the export size's long side, which holds the
    keep-ratio canvas of a landscape or a portrait image (800 x 1344 or 1344 x 800 at 1333 x 800)."""
    if not spec.dynamic_hw:
        return None
    divisor = cfg.size_divisor
    low = [-(-side // divisor) * divisor for side in (cfg.min_size or (divisor, divisor))]
    side = max(spec.img_size)
    return {"min": low, "max": [side, side]}


def dynamic_axes(spec: GraphSpec) -> dict[str, dict[int, str]]:
    """The manifest's ``dynamic_axes`` of a detector graph."""
    axes = {INPUT_NAME: spec.dynamic_axes()}
    axes[IMAGE_SHAPES] = {0: "batch"} if spec.dynamic_batch else {}
    return axes


# --------------------------------------------------------------------------------------------
# Gate inputs


def gate_batch(
    batch: int, height: int, width: int, cfg: Any, kind: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` image-like canvases (B, 3, H, W) and their ``image_shapes`` (B, 4).

    Image 0 fills the canvas; image i > 0 is smaller (padded with zeros at the bottom and right,
    as mmdet pads after normalising). Each is said to be resized by 0.8 from its original.
    ``kind``: ``picture`` (smooth synthetic picture) or ``shapes`` (synthetic shapes scene)."""
    images = np.zeros((batch, 3, height, width), np.float32)
    shapes = np.zeros((batch, 4), np.float32)
    mean = np.asarray(cfg.mean, np.float32)[:, None, None]
    std = np.asarray(cfg.std, np.float32)[:, None, None]
    for i in range(batch):
        rh = height if i == 0 else max(32, int(height * (1 - 0.15 * i)))
        rw = width if i == 0 else max(32, int(width * (1 - 0.1 * i)))
        if kind == "picture":
            pixels = synthetic.smooth_pictures((1, 3, rh, rw), seed + i)[0] * 255.0
        elif kind == "shapes":
            pixels = shapes_scene(i, seed, (rh, rw)).image.transpose(2, 0, 1).astype(np.float32)
        else:
            raise ValueError(f"unknown gate input kind {kind!r}")
        scaled = pixels * np.float32(cfg.pixel_scale / 255.0)
        images[i, :, :rh, :rw] = (scaled - mean) / std
        shapes[i] = (rh, rw, round(rh / 0.8), round(rw / 0.8))
    return images, shapes


GATE_KINDS = ("picture", "shapes")


def gate_sizes(spec: GraphSpec, divisor: int) -> list[tuple[int, int, int]]:
    """(batch, H, W) per gate run: the export's; a second batch size and a second, non-square
    canvas when those axes are dynamic."""
    h, w = spec.img_size
    sizes = [(spec.batch, h, w)]
    if spec.dynamic_batch:
        sizes.append((spec.batch + 1, h, w))
    if spec.dynamic_hw:
        sizes.append((spec.batch, h + 2 * divisor, w + divisor))
    return sizes


# --------------------------------------------------------------------------------------------
# Running both sides


class _NmsInputs(TorchDispatchMode):
    """Records the (boxes, scores) every NMS call of the PyTorch model receives."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is NMS_OP.torch_op:
            self.calls.append((args[0].detach().float().numpy(), args[1].detach().float().numpy()))
        return func(*args, **(kwargs or {}))


def with_nms_inputs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[tuple[str, str]]]:
    """A copy of ``model`` that also outputs the boxes and scores of every NonMaxSuppression node
    (in graph order), and their names."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    existing = {value.name for value in out.graph.output}
    names = []
    for node in out.graph.node:
        if node.op_type == "NonMaxSuppression" and node.domain in ("", "ai.onnx"):
            pair = (node.input[0], node.input[1])
            names.append(pair)
            for name in pair:
                if name not in existing:
                    out.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
                    existing.add(name)
    return out, names


def set_score_threshold(model: onnx.ModelProto, value: float) -> onnx.ModelProto:
    """A copy of ``model`` whose ``score_threshold`` weight (and its float16 copy) is ``value``."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    found = False
    for tensor in out.graph.initializer:
        if tensor.name == SCORE_THRESHOLD or tensor.name.startswith(f"{SCORE_THRESHOLD}_"):
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
            tensor.CopyFrom(onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), tensor.name))
            found = True
    if not found:
        raise LitevitError(
            f"the detector graph has no {SCORE_THRESHOLD!r} weight, so the parity gate cannot set its "
            f"score threshold; re-export it with this litevit."
        )
    return out


def run_detection_parity(
    module: TwoStageDetector,
    onnx_model: onnx.ModelProto,
    spec: GraphSpec,
    precision: str,
    score_threshold: float,
    threads: int | None = None,
) -> DetectionGate:
    """The gate (module docstring) of one graph; ``module`` is the PyTorch model it came from."""

    tol = DETECTION_TOLERANCES[precision]
    cfg = model_cfg(module)
    checked, nms_names = with_nms_inputs(set_score_threshold(onnx_model, score_threshold))
    session = cpu_session(checked, precision, threads)
    names = list(module.output_names)
    buffer = getattr(module, SCORE_THRESHOLD)
    original = float(buffer)
    gate = DetectionGate(precision, score_threshold)
    panoptic = module.det.panoptic
    categories = label_table(panoptic.num_things + panoptic.num_stuff) if panoptic is not None else None
    try:
        buffer.fill_(score_threshold)
        for batch, height, width in gate_sizes(spec, cfg.size_divisor):
            for kind in GATE_KINDS:
                images, shapes = gate_batch(batch, height, width, cfg, kind)
                with torch.inference_mode(), _NmsInputs() as recorder:
                    expected = module(torch.from_numpy(images), torch.from_numpy(shapes))
                reference = {name: value.numpy() for name, value in zip(names, expected, strict=True)}
                got = dict(
                    zip(
                        [o.name for o in session.get_outputs()],
                        session.run(None, {INPUT_NAME: images, IMAGE_SHAPES: shapes}),
                        strict=True,
                    )
                )
                where = (kind, [batch, 3, height, width])
                gate.checks.extend(compare_candidates(recorder.calls, nms_names, got, tol, where))
                gate.checks.extend(compare_outputs(reference, got, tol, categories, where))
    finally:
        buffer.fill_(original)
    return gate
