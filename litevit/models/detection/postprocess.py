"""Test-time post-processing of mmdet 2.x two-stage detectors, static-shaped and exportable.

Everything here runs in the eager PyTorch model *and* exports into the same ONNX graph: shapes
never depend on the data. Where mmdet selects a data-dependent number of elements (``nonzero``,
per-level RoI lists, ``dets[:max_per_img]``), this code keeps a fixed number ``K`` and a validity
mask instead: candidates are ranked with a constant-K ``topk`` after padding to at least K (so
K never exceeds the input, whatever the image size: TensorRT 8.5's parser needs a constant K,
at most 3839), NMS returns a keep mask (``litevit.ops.nms``), and RoIs are assigned to FPN levels
by ``where`` on every level (``litevit.ops.roi_align`` per level, a 1-pixel dummy RoI where the
RoI belongs to another level). Invalid slots carry score -1, which every threshold rejects.

Semantics follow mmdet's code (sources in ``litevit.models.detection``):

* anchors (``AnchorGenerator``: base anchors centred on 0, ratios outer, scales inner; shifted by
  ``stride * (x, y)``, location-major) and ``delta2bbox`` (means/stds, dw/dh clamped to
  ``|log(16/1000)|``, boxes clipped to the *resized image* (``img_shape``), not the padded one);
* RPN proposals (``RPNHead._get_bboxes``): top ``nms_pre`` per level by sigmoid score, decode,
  mmdet 2.17 drops empty boxes (``min_bbox_size >= 0`` keeps ``w > 0 and h > 0``) while 2.11
  keeps them, NMS per level (mmcv ``batched_nms``: boxes offset by ``level * (max + 1)``), top
  ``max_per_img``;
* RoI level mapping (``SingleRoIExtractor.map_roi_levels``): ``floor(log2(sqrt(wh) / 56 + 1e-6))``
  clamped to the levels;
* detections (``multiclass_nms``): per class, scores ``> score_thr``; class-aware NMS by the same
  offset trick (or class-agnostic), top ``max_per_img``;
* mask pasting (``_do_paste_mask``, ``grid_sample`` bilinear, ``align_corners=False``, zero
  padding) onto the padded input canvas, then ``>= mask_thr_binary``;
* heuristic panoptic fusion (``HeuristicFusionHead`` of mmdet 2.17).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from litevit.ops.nms import NMS_OP
from litevit.ops.roi_align import ROI_ALIGN_OP

INVALID_SCORE = -1.0
# The largest pre-NMS candidate count per image, a constant TopK K: NvInfer.h (8.5 - 11) says TopK
# supports K "up to 3840", onnx-tensorrt's operators.md for 10.x says K "must be less than 3840";
# 3839 satisfies both (runtime/trt_build/parser_coverage.py holds the parsers to the stricter one).
MAX_TOPK = 3839
# mmdet's delta2bbox clamp of dw, dh: |log(16 / 1000)|.
MAX_LOG_RATIO = abs(math.log(16 / 1000))


@dataclass(frozen=True)
class RpnTestCfg:
    nms_pre: int = 1000
    max_per_img: int = 1000
    iou_threshold: float = 0.7
    # mmdet 2.17 (LVT) removes proposals with zero width or height before NMS; 2.11 (ELSA) keeps them.
    drop_empty: bool = False


@dataclass(frozen=True)
class RcnnTestCfg:
    score_thr: float = 0.05
    iou_threshold: float = 0.5
    class_agnostic: bool = False
    max_per_img: int = 100
    mask_thr_binary: float = 0.5
    # Candidates (box, class) ranked before NMS; mmdet has no cap. See MAX_TOPK.
    nms_pre: int = MAX_TOPK


def topk_padded(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` of (B, N) scores along dim 1 for any N: pads with INVALID_SCORE to at least k.

    Returns (values, indices); padded positions have indices >= N and value INVALID_SCORE.
    """
    padding = scores.new_full((scores.shape[0], k), INVALID_SCORE)
    return torch.cat([scores, padding], dim=1).topk(k, dim=1)


def clamp_index(indices: torch.Tensor, high: Any) -> torch.Tensor:
    """``min(indices, high)`` for integer indices, written as ``Where``: TensorRT's ``Clip`` takes
    float tensors only."""
    return torch.where(indices > high, high, indices)


def gather_rows(values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``values[b, indices[b]]`` for (B, N, ...) values and (B, K) indices (out-of-range: clamped)."""
    indices = clamp_index(indices, values.shape[1] - 1)
    expanded = indices.reshape(*indices.shape, *([1] * (values.ndim - 2))).expand(
        *indices.shape, *values.shape[2:]
    )
    return values.gather(1, expanded)


def grid_anchors(
    height: Any,
    width: Any,
    stride: int,
    scales: Sequence[float],
    ratios: Sequence[float],
    like: torch.Tensor,
) -> torch.Tensor:
    """(H·W·A, 4) anchors of one level, mmdet's order (location-major, then ratio, then scale)."""
    h_ratios = torch.tensor(ratios, dtype=torch.float32).sqrt()
    w_ratios = 1 / h_ratios
    scales_ = torch.tensor(scales, dtype=torch.float32)
    ws = (stride * w_ratios[:, None] * scales_[None, :]).reshape(-1)
    hs = (stride * h_ratios[:, None] * scales_[None, :]).reshape(-1)
    base = torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=-1).to(like)
    shift_x = torch.arange(width, device=like.device).to(like.dtype) * stride
    shift_y = torch.arange(height, device=like.device).to(like.dtype) * stride
    yy, xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
    shifts = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)
    return (shifts + base[None]).reshape(-1, 4)


def decode_boxes(
    rois: torch.Tensor,
    deltas: torch.Tensor,
    stds: Sequence[float],
    max_hw: torch.Tensor,
) -> torch.Tensor:
    """mmdet ``delta2bbox`` (means 0): rois (..., 4), deltas (..., 4) -> boxes clipped to
    ``max_hw`` (B, 2) = (height, width) of the resized image; leading dim of rois/deltas is B."""
    std = deltas.new_tensor(stds)
    d = deltas * std
    dx, dy = d[..., 0], d[..., 1]
    dw = d[..., 2].clamp(min=-MAX_LOG_RATIO, max=MAX_LOG_RATIO)
    dh = d[..., 3].clamp(min=-MAX_LOG_RATIO, max=MAX_LOG_RATIO)
    px = (rois[..., 0] + rois[..., 2]) * 0.5
    py = (rois[..., 1] + rois[..., 3]) * 0.5
    pw = rois[..., 2] - rois[..., 0]
    ph = rois[..., 3] - rois[..., 1]
    gw = pw * dw.exp()
    gh = ph * dh.exp()
    gx = px + pw * dx
    gy = py + ph * dy
    boxes = torch.stack([gx - gw * 0.5, gy - gh * 0.5, gx + gw * 0.5, gy + gh * 0.5], dim=-1)
    bound = max_hw.flip(-1).repeat(1, 2).reshape(max_hw.shape[0], *([1] * (boxes.ndim - 2)), 4)
    zero = boxes.new_zeros(())
    return torch.where(boxes > bound, bound, torch.where(boxes < zero, zero, boxes))


def offset_for_classes(boxes: torch.Tensor, groups: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """mmcv ``batched_nms``'s trick: shift each group's boxes by ``group * (max coordinate + 1)``
    (max over an image's valid boxes) so one NMS never mixes groups. (B, N, 4), (B, N), (B, N)."""
    largest = torch.where(valid[..., None], boxes, boxes.new_zeros(())).amax(dim=(1, 2), keepdim=True)
    return boxes + groups[..., None].to(boxes.dtype) * (largest + 1)


def rpn_proposals(
    logits: Sequence[torch.Tensor],
    deltas: Sequence[torch.Tensor],
    strides: Sequence[int],
    scales: Sequence[float],
    ratios: Sequence[float],
    image_hw: torch.Tensor,
    cfg: RpnTestCfg,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RPN outputs -> (B, max_per_img, 4) proposals sorted by score and their (B, max_per_img)
    scores (INVALID_SCORE for empty slots)."""
    batch = logits[0].shape[0]
    level_scores, level_boxes, level_ids = [], [], []
    for level, (logit, delta, stride) in enumerate(zip(logits, deltas, strides, strict=True)):
        height, width = logit.shape[-2:]  # symbolic under torch.export with dynamic H, W
        scores = logit.permute(0, 2, 3, 1).reshape(batch, -1).sigmoid()
        level_deltas = delta.permute(0, 2, 3, 1).reshape(batch, -1, 4)
        anchors = grid_anchors(height, width, stride, scales, ratios, logit)
        top_scores, top_index = topk_padded(scores, cfg.nms_pre)
        top_anchors = anchors[clamp_index(top_index, anchors.shape[0] - 1)]
        boxes = decode_boxes(
            top_anchors, gather_rows(level_deltas, top_index), (1.0, 1.0, 1.0, 1.0), image_hw
        )
        level_scores.append(top_scores)
        level_boxes.append(boxes)
        level_ids.append(top_index * 0 + level)  # not full_like: no int ConstantOfShape (TensorRT 8.x)
    scores = torch.cat(level_scores, dim=1)
    boxes = torch.cat(level_boxes, dim=1)
    valid = scores > INVALID_SCORE
    if cfg.drop_empty:
        valid = valid & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    scores = torch.where(valid, scores, INVALID_SCORE)
    keep = NMS_OP(
        offset_for_classes(boxes, torch.cat(level_ids, dim=1), valid),
        scores,
        cfg.iou_threshold,
        INVALID_SCORE / 2,
        cfg.max_per_img,
    )
    kept_scores, index = torch.where(keep > 0, scores, INVALID_SCORE).topk(cfg.max_per_img, dim=1)
    return gather_rows(boxes, index), kept_scores


def map_roi_levels(boxes: torch.Tensor, num_levels: int, finest_scale: int = 56) -> torch.Tensor:
    """FPN level of each RoI (mmdet ``SingleRoIExtractor.map_roi_levels``)."""
    scale = torch.sqrt((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]))
    return torch.floor(torch.log2(scale / finest_scale + 1e-6)).clamp(min=0, max=num_levels - 1)


def roi_features(
    features: Sequence[torch.Tensor], boxes: torch.Tensor, strides: Sequence[int], output_size: int
) -> torch.Tensor:
    """Multi-level RoIAlign: (B, R, 4) boxes -> (B·R, C, S, S), each RoI from its mapped level."""
    batch, rois = boxes.shape[:2]
    flat = boxes.reshape(-1, 4)
    batch_indices = torch.arange(batch, device=boxes.device).repeat_interleave(rois)
    levels = map_roi_levels(flat, len(strides))
    # A RoI of another level is replaced by a 1-pixel box: RoIAlign still runs on it (static
    # shapes), at one sample per bin, and its result is discarded by the where below.
    dummy = flat.new_tensor([0.0, 0.0, 1.0, 1.0]).expand_as(flat)
    pooled = None
    for level, (feature, stride) in enumerate(zip(features, strides, strict=False)):
        here = (levels == level)[:, None]
        level_boxes = torch.where(here, flat, dummy)
        level_pooled = ROI_ALIGN_OP(feature, level_boxes, batch_indices, output_size, 1.0 / stride, 0, True)
        selected = here[:, :, None, None]
        pooled = (
            torch.where(selected, level_pooled, 0.0)
            if pooled is None
            else torch.where(selected, level_pooled, pooled)
        )
    assert pooled is not None
    return pooled


def select_detections(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    valid_rois: torch.Tensor,
    cfg: RcnnTestCfg,
    score_threshold: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mmdet ``multiclass_nms`` with static shapes.

    ``boxes`` (B, R, classes, 4) per-class boxes, ``scores`` (B, R, classes) (background removed),
    ``valid_rois`` (B, R); ``score_threshold`` replaces ``cfg.score_thr`` when given (the
    detectors pass a scalar buffer, which the exported graph keeps as a named weight). Returns
    boxes (B, K, 4), scores (B, K) (INVALID_SCORE in empty slots) and labels (B, K) int64 (-1 in
    empty slots), K = ``cfg.max_per_img``, sorted by score.
    """
    batch, rois, classes = scores.shape
    threshold = cfg.score_thr if score_threshold is None else score_threshold
    flat_scores = torch.where(valid_rois[..., None] & (scores > threshold), scores, INVALID_SCORE)
    flat_scores = flat_scores.reshape(batch, rois * classes)
    candidates = min(cfg.nms_pre, rois * classes)
    cand_scores, cand_index = flat_scores.topk(candidates, dim=1)
    cand_boxes = gather_rows(boxes.reshape(batch, rois * classes, 4), cand_index)
    cand_labels = cand_index % classes
    valid = cand_scores > INVALID_SCORE
    nms_boxes = cand_boxes if cfg.class_agnostic else offset_for_classes(cand_boxes, cand_labels, valid)
    keep = NMS_OP(nms_boxes, cand_scores, cfg.iou_threshold, INVALID_SCORE / 2, cfg.max_per_img)
    kept_scores, index = topk_padded(torch.where(keep > 0, cand_scores, INVALID_SCORE), cfg.max_per_img)
    found = kept_scores > INVALID_SCORE
    det_boxes = torch.where(found[..., None], gather_rows(cand_boxes, index), 0.0)
    det_labels = torch.where(found, gather_rows(cand_labels, index), -1)
    return det_boxes, kept_scores, det_labels


def _paste_weights(low: torch.Tensor, high: torch.Tensor, length: int, mask_size: int) -> torch.Tensor:
    """(B, K, length, mask_size) bilinear weights of ``grid_sample(align_corners=False)``
    sampling a ``mask_size`` map spanning [low, high] at the pixel centres 0.5 .. length - 0.5."""
    centres = torch.arange(length, device=low.device).to(low.dtype) + 0.5
    extent = (high - low)[..., None]
    # mmdet replaces the infinities of a zero-size box by 0 (the map's centre).
    normalised = torch.where(
        extent != 0, (centres - low[..., None]) / torch.where(extent != 0, extent, 1.0) * 2 - 1, 0.0
    )
    coords = ((normalised + 1) * mask_size - 1) / 2
    floor = coords.floor()
    frac = coords - floor
    cells = torch.arange(mask_size, device=low.device).to(low.dtype)
    lower = (cells == floor[..., None]).to(low.dtype) * (1 - frac)[..., None]
    upper = (cells == (floor + 1)[..., None]).to(low.dtype) * frac[..., None]
    return lower + upper


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """mmdet ``_do_paste_mask``: (B, K, M, M) mask probabilities placed in their boxes (B, K, 4)
    on an (H, W) canvas -> (B, K, H, W). Bilinear sampling is separable, so the paste is two
    batched matrix products (``Wy @ mask @ Wxᵀ``) instead of a ``GridSample``."""
    mask_size = masks.shape[-1]
    weights_y = _paste_weights(boxes[..., 1], boxes[..., 3], height, mask_size)  # (B, K, H, M)
    weights_x = _paste_weights(boxes[..., 0], boxes[..., 2], width, mask_size)  # (B, K, W, M)
    return weights_y @ (masks @ weights_x.transpose(-1, -2))


@dataclass(frozen=True)
class PanopticTestCfg:
    num_things: int = 80
    num_stuff: int = 53
    mask_overlap: float = 0.5
    stuff_area_limit: int = 4096  # in pixels of the original image


def panoptic_fusion(
    masks: torch.Tensor,
    labels: torch.Tensor,
    found: torch.Tensor,
    semantic: torch.Tensor,
    image_shapes: torch.Tensor,
    cfg: PanopticTestCfg,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mmdet 2.17 ``HeuristicFusionHead.simple_test`` on the input canvas, static shapes.

    ``masks`` (B, K, H, W) bool instance masks sorted by decreasing score, ``labels`` (B, K),
    ``found`` (B, K) valid detections, ``semantic`` (B, stuff + 1, H, W) logits (the last channel
    is "thing"), ``image_shapes`` (B, 4) = resized (h, w), original (h, w).

    Returns a segment-id map (B, H, W) int32 and, per segment slot, its label (B, S) int32 and
    area (B, S) int32 (S = K + stuff). Segment ids: 0 = void (unlabelled, padding, small stuff,
    semantic "thing" pixels no instance covers); 1..K = the instances that survive the overlap
    test, in score order (mmdet's ``instance_id``); K + 1 + s = stuff class s. Labels index the
    133 panoptic classes (things 0..79, stuff 80..132); a slot of area 0 is absent.

    mmdet fuses at the original image's resolution; here the canvas is the resized, padded input:
    the stuff area limit is scaled by the resize (resized area / original area) and pixels outside
    the resized image are void.
    """
    batch, count, height, width = masks.shape
    rows = torch.arange(height, device=masks.device)[:, None]
    cols = torch.arange(width, device=masks.device)[None, :]
    inside = (rows < image_shapes[:, 0, None, None]) & (cols < image_shapes[:, 1, None, None])  # (B, H, W)
    masks = masks & found[..., None, None]
    # Lay the masks in score order: an instance is kept if at most mask_overlap of its area is
    # already covered; it takes the pixels not yet covered and the next instance id. Areas are
    # float32 sums of 0/1 values, exact below 2**24 pixels, and float32 in the FP16 graph too
    # (export/fp16.py rule 3: computed from a bool). TensorRT 8.5/8.6 sum only float tensors and
    # fill only float ConstantOfShape, so the int32 and bool starting values below are derived
    # from the masks rather than created with zeros()/full().
    covered = masks[:, 0] & False
    thing_map = covered.to(torch.int32)
    next_id = thing_map[:, 0, 0]
    slots = torch.arange(count, dtype=torch.int32, device=masks.device)
    thing_labels = found.to(torch.int32) * 0 - 1
    thing_areas = thing_labels * 0
    for i in range(count):
        mask = masks[:, i]
        area = mask.to(torch.float32).sum(dim=(1, 2))
        overlap = (mask & covered).to(torch.float32).sum(dim=(1, 2))
        keep = (area > 0) & (overlap / (area + 1e-5) <= cfg.mask_overlap)
        part = mask & ~covered & keep[:, None, None]
        next_id = next_id + keep.to(torch.int32)
        thing_map = torch.where(part, next_id[:, None, None], thing_map)
        covered = covered | part
        slot = (slots[None, :] == next_id[:, None] - 1) & keep[:, None]
        thing_labels = torch.where(slot, labels[:, i, None].to(torch.int32), thing_labels)
        part_area = part.to(torch.float32).sum(dim=(1, 2)).to(torch.int32)
        thing_areas = torch.where(slot, part_area[:, None], thing_areas)

    # Stuff: the semantic argmax where no instance is; the last class is mmdet's merged "thing"
    # class, which is void. Stuff classes smaller than the area limit are void too.
    stuff_class = semantic.argmax(dim=1).to(torch.int32)  # (B, H, W)
    is_stuff = (thing_map == 0) & (stuff_class < cfg.num_stuff) & inside
    stuff_class = torch.where(is_stuff, stuff_class, cfg.num_stuff)
    stuff_area = torch.stack(
        [(stuff_class == s).to(torch.float32).sum(dim=(1, 2)) for s in range(cfg.num_stuff)], dim=1
    )  # (B, stuff)
    scale = (image_shapes[:, 0] * image_shapes[:, 1]) / (image_shapes[:, 2] * image_shapes[:, 3])
    large = stuff_area >= cfg.stuff_area_limit * scale[:, None]  # (B, stuff)
    # stuff class -> segment id; the void class (num_stuff) -> 0. A constant (no int ConstantOfShape).
    stuff_ids = torch.tensor(
        [*range(count + 1, count + 1 + cfg.num_stuff), 0], dtype=torch.int32, device=masks.device
    )
    large_or_void = torch.cat([large, large[:, :1] & False], dim=1)
    flat_class = stuff_class.reshape(batch, -1).long()
    stuff_map = torch.where(large_or_void.gather(1, flat_class), stuff_ids[flat_class], 0)
    segments = torch.where(thing_map > 0, thing_map, stuff_map.reshape(batch, height, width))
    segments = torch.where(inside, segments, 0)

    stuff_labels = torch.arange(cfg.num_stuff, dtype=torch.int32, device=masks.device) + cfg.num_things
    segment_labels = torch.cat([thing_labels, stuff_labels.expand(batch, -1)], dim=1)
    segment_areas = torch.cat([thing_areas, torch.where(large, stuff_area, 0.0).to(torch.int32)], dim=1)
    return segments.to(torch.int32), segment_labels, segment_areas
