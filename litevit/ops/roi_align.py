"""RoIAlign with mmcv's semantics, exported as the standard ONNX ``RoiAlign`` (opset 16+).

What it computes (mmcv ``RoIAlign(output_size, spatial_scale, sampling_ratio, aligned=True)``,
``mmcv/ops/csrc/common/cuda/roi_align_cuda_kernel.cuh``; the layer every mmdet 2.x config of
this project uses, with ``sampling_ratio=0``): for RoI ``r`` = (x1, y1, x2, y2) in image pixels
on image ``b`` and an output bin (i, j) of an ``S x S`` grid::

    start = (x1, y1) * spatial_scale - 0.5          # aligned=True: pixel centres at +0.5
    size  = (x2 - x1, y2 - y1) * spatial_scale      # not clamped to >= 1 when aligned
    grid  = sampling_ratio or ceil(size / S)        # adaptive: samples per bin and axis
    out[r, c, i, j] = 1 / max(grid_h * grid_w, 1)
                      * sum over the grid_h x grid_w sample points of bin (i, j)
                        of bilinear(features[b, c], sample point)

with bilinear sampling as Caffe2/Detectron (a sample outside [-1, H] x [-1, W] contributes 0;
coordinates in [-1, 0) are clamped to 0; at the last row/column both neighbours are that
row/column). ``aligned=False`` is the pre-Detectron2 form (no -0.5, sizes at least 1).

ONNX ``RoiAlign``-16 with ``coordinate_transformation_mode="half_pixel"`` and ``mode="avg"``
defines the same computation (``output_half_pixel`` is ``aligned=False``); ONNX Runtime's
kernel and TensorRT's ``ROIAlign_TRT`` plugin (which the ONNX parser of every release 8.5 - 11
maps the node to) implement it; ``tests/ops/test_detection_ops.py`` checks the reference
against ONNX Runtime. Its inputs: features (N, C, H, W), rois (R, 4) as (x1, y1, x2, y2),
batch_indices (R,) int64.

The reference is written for exactness and modest memory, not speed: bilinear sampling is
separable, so each RoI's output is ``Wy @ features[b] @ Wx^T`` with per-axis weight matrices
(``Wy``: S x H, holding the sample weights of every bin; zero outside the RoI's rows), computed
for all RoIs at once and applied on each RoI's window of rows and columns.
"""

from __future__ import annotations

from typing import Any

import torch

from litevit.ops._standard import define_standard_op


def _axis_weights(
    start: torch.Tensor, size: torch.Tensor, bins: int, grid: torch.Tensor, length: int
) -> torch.Tensor:
    """(R, bins, length) weights: bin p of RoI r takes ``sum_l W[r, p, l] * feature[l]`` along
    one axis (before dividing by the sample count), mmcv's sample positions and edge rules."""
    rois = start.shape[0]
    samples = max(int(grid.max()), 1) if rois else 1
    bin_size = (size / bins)[:, None, None]
    bin_index = torch.arange(bins, dtype=start.dtype, device=start.device)[None, :, None]
    sample_index = torch.arange(samples, device=start.device)[None, None, :]
    grid_ = grid.clamp(min=1).to(start.dtype)[:, None, None]
    # Same operation order as the CUDA/CPU kernels (and ONNX Runtime's).
    coords = start[:, None, None] + bin_index * bin_size + (sample_index + 0.5) * bin_size / grid_
    used = sample_index < grid[:, None, None]
    inside = (coords >= -1.0) & (coords <= length) & used
    coords = coords.clamp(min=0.0)
    low = coords.floor().long()
    at_edge = low >= length - 1
    low = torch.where(at_edge, torch.full_like(low, length - 1), low)
    high = torch.where(at_edge, low, low + 1)
    coords = torch.where(at_edge, low.to(coords.dtype), coords)
    frac = coords - low.to(coords.dtype)
    weight_high = frac * inside
    weight_low = (1.0 - frac) * inside
    weights = start.new_zeros(rois, bins, length)
    weights.scatter_add_(2, low, weight_low)
    weights.scatter_add_(2, high, weight_high)
    return weights


def _window(weights: torch.Tensor) -> tuple[list[int], list[int]]:
    """Per RoI, the [first, last + 1) range of positions with a nonzero weight (empty: 0, 0)."""
    used = (weights != 0).any(dim=1)  # (R, length)
    length = used.shape[1]
    positions = torch.arange(length, device=weights.device)
    first = torch.where(used, positions, length).amin(dim=1)
    last = torch.where(used, positions, -1).amax(dim=1) + 1
    first = torch.where(last > 0, first, 0)
    return first.tolist(), last.clamp(min=0).tolist()


def roi_align(
    features: torch.Tensor,
    rois: torch.Tensor,
    batch_indices: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """Reference RoIAlign (mmcv semantics): (N, C, H, W), (R, 4), (R,) -> (R, C, S, S)."""
    _check(features.shape, rois.shape, batch_indices.shape, output_size)
    height, width = features.shape[-2:]
    offset = 0.5 if aligned else 0.0
    scaled = rois.to(features.dtype) * spatial_scale
    start_x, start_y = scaled[:, 0] - offset, scaled[:, 1] - offset
    size_x, size_y = scaled[:, 2] - offset - start_x, scaled[:, 3] - offset - start_y
    if not aligned:
        size_x, size_y = size_x.clamp(min=1.0), size_y.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_x = torch.full_like(start_x, sampling_ratio, dtype=torch.long)
        grid_y = grid_x
    else:
        grid_x = torch.ceil(size_x / output_size).long().clamp(min=0)
        grid_y = torch.ceil(size_y / output_size).long().clamp(min=0)
    weights_y = _axis_weights(start_y, size_y, output_size, grid_y, height)
    weights_x = _axis_weights(start_x, size_x, output_size, grid_x, width)
    count = (grid_y * grid_x).clamp(min=1).to(features.dtype)
    rows_from, rows_to = _window(weights_y)
    cols_from, cols_to = _window(weights_x)
    images = batch_indices.tolist()
    outputs = []
    for r, image in enumerate(images):
        y0, y1, x0, x1 = rows_from[r], rows_to[r], cols_from[r], cols_to[r]
        window = features[image, :, y0:y1, x0:x1]
        pooled = weights_y[r, :, y0:y1] @ window @ weights_x[r, :, x0:x1].T  # (C, S, S)
        outputs.append(pooled / count[r])
    if not outputs:
        return features.new_zeros(0, features.shape[1], output_size, output_size)
    return torch.stack(outputs)


def _check(
    features: tuple[int, ...], rois: tuple[int, ...], batch_indices: tuple[int, ...], output_size: int
) -> None:
    if len(features) != 4:
        raise ValueError(f"RoIAlign: features must be (N, C, H, W); got {tuple(features)}.")
    if len(rois) != 2 or rois[1] != 4:
        raise ValueError(f"RoIAlign: rois must be (R, 4) as (x1, y1, x2, y2); got {tuple(rois)}.")
    if tuple(batch_indices) != (rois[0],):
        raise ValueError(f"RoIAlign: batch_indices must be ({rois[0]},); got {tuple(batch_indices)}.")
    if output_size < 1:
        raise ValueError(f"RoIAlign: output_size must be positive; got {output_size}.")


def _roi_align_fake(
    features: torch.Tensor,
    rois: torch.Tensor,
    batch_indices: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    return features.new_empty(rois.shape[0], features.shape[1], output_size, output_size)


def _roi_align_onnx(
    features: Any,
    rois: Any,
    batch_indices: Any,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Any:
    from onnxscript import opset18 as op

    return op.RoiAlign(
        features,
        rois,
        batch_indices,
        coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel",
        mode="avg",
        output_height=output_size,
        output_width=output_size,
        sampling_ratio=sampling_ratio,
        spatial_scale=spatial_scale,
    )


ROI_ALIGN_OP = define_standard_op(roi_align, _roi_align_fake, _roi_align_onnx)
