"""Greedy non-maximum suppression as a keep mask, exported as ONNX ``NonMaxSuppression``.

``nms_keep(boxes, scores, iou_threshold, score_threshold, max_output_boxes)`` returns, per image,
a (B, N) float mask: 1 for the boxes NMS keeps, 0 for the others. The semantics are mmcv's
``nms`` (``mmcv/ops/csrc/pytorch/nms.cpp``, behind mmdet's ``batched_nms``/``multiclass_nms``)
and ONNX's ``NonMaxSuppression``, which agree: candidates are the boxes whose score is
*greater than* ``score_threshold``, visited in decreasing score; a candidate is kept unless its
IoU with an already kept box is *greater than* ``iou_threshold`` (IoU = intersection / union of
(x2 - x1) * (y2 - y1) areas, no +1; a box of zero area suppresses nothing); at most
``max_output_boxes`` are kept. Class-aware NMS is the caller's business (mmcv's coordinate-offset
trick, as ``batched_nms`` does): the op runs one class.

Why a mask: the number of kept boxes depends on the data, but a mask keeps every shape static,
so the rest of the graph (top-K to a fixed count, gathers) is static too. The ONNX form is::

    selected = NonMaxSuppression(boxes, Unsqueeze(scores, 1), max_output_boxes, iou, score)
    keep     = ScatterND(zeros(B, N), selected[:, [0, 2]], ones(len(selected)))

``NonMaxSuppression`` is TensorRT's native ``INMSLayer`` from 8.5 on (the ONNX parser of every
release maps it), ``ScatterND`` its scatter layer; ONNX Runtime runs both. TensorRT's NMS layer
considers only the 5000 highest-scoring boxes of an image (2000 on SM 5.3/6.2): callers keep
their candidate counts within that (the detectors do, see ``litevit.models.detection``).

Ties in score are visited in index order here; ONNX leaves their order unspecified.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from litevit.ops._standard import define_standard_op


def _greedy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_output: int) -> list[int]:
    """Indices kept by greedy NMS among ``boxes`` (M, 4) visited in decreasing ``scores``."""
    order = np.argsort(-scores, kind="stable")
    ordered = boxes[order]
    x1, y1, x2, y2 = (ordered[:, i] for i in range(4))
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(order), dtype=bool)
    kept: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        kept.append(int(order[i]))
        if len(kept) == max_output:
            break
        rest = slice(i + 1, None)
        width = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0.0)
        height = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0.0)
        inter = width * height
        union = areas[i] + areas[rest] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            overlaps = (areas[i] > 0) & (areas[rest] > 0) & (union > 0) & (inter / union > iou_threshold)
        suppressed[rest] |= overlaps
    return kept


def nms_keep(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    score_threshold: float,
    max_output_boxes: int,
) -> torch.Tensor:
    """Reference NMS: (B, N, 4) boxes, (B, N) scores -> (B, N) keep mask (float 0/1)."""
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"NMS: boxes must be (B, N, 4) as (x1, y1, x2, y2); got {tuple(boxes.shape)}.")
    if tuple(scores.shape) != tuple(boxes.shape[:2]):
        raise ValueError(f"NMS: scores must be {tuple(boxes.shape[:2])} (B, N); got {tuple(scores.shape)}.")
    keep = torch.zeros(scores.shape, dtype=torch.float32, device=scores.device)
    box_values = boxes.detach().float().cpu().numpy()
    score_values = scores.detach().float().cpu().numpy()
    for image in range(boxes.shape[0]):
        candidates = np.flatnonzero(score_values[image] > np.float32(score_threshold))
        kept = _greedy(
            box_values[image, candidates],
            score_values[image, candidates],
            np.float32(iou_threshold),
            max_output_boxes,
        )
        keep[image, torch.as_tensor(candidates[kept], dtype=torch.long)] = 1.0
    return keep


def _nms_keep_fake(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    score_threshold: float,
    max_output_boxes: int,
) -> torch.Tensor:
    return scores.new_empty(scores.shape, dtype=torch.float32)


def _nms_keep_onnx(
    boxes: Any, scores: Any, iou_threshold: float, score_threshold: float, max_output_boxes: int
) -> Any:
    import onnx
    from onnxscript import opset18 as op

    def scalar(value: Any, dtype: Any) -> Any:
        return op.Constant(value=onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype)))

    selected = op.NonMaxSuppression(
        boxes,
        op.Unsqueeze(scores, scalar([1], np.int64)),
        scalar(max_output_boxes, np.int64),
        scalar(iou_threshold, np.float32),
        scalar(score_threshold, np.float32),
    )
    image_and_box = op.Gather(selected, scalar([0, 2], np.int64), axis=1)
    ones = op.ConstantOfShape(
        op.Shape(selected, start=0, end=1), value=onnx.numpy_helper.from_array(np.ones(1, np.float32))
    )
    zeros = op.ConstantOfShape(op.Shape(scores), value=onnx.numpy_helper.from_array(np.zeros(1, np.float32)))
    return op.ScatterND(zeros, image_and_box, ones)  # type: ignore[type-var]


NMS_OP = define_standard_op(nms_keep, _nms_keep_fake, _nms_keep_onnx)
