"""RoIAlign and NMS (litevit.ops.roi_align / nms): references vs naive mmcv kernels and vs ONNX Runtime."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch

from litevit.ops import NMS_OP, ROI_ALIGN_OP
from litevit.ops._standard import translation_table


def _naive_roi_align(features, rois, batch_indices, size, scale, sampling_ratio, aligned):
    """mmcv's roi_align_forward kernel, one sample at a time (float64)."""
    features = features.double()
    _, channels, height, width = features.shape
    out = torch.zeros(len(rois), channels, size, size, dtype=torch.float64)
    offset = 0.5 if aligned else 0.0

    def bilinear(image, y, x):
        if y < -1.0 or y > height or x < -1.0 or x > width:
            return torch.zeros(channels, dtype=torch.float64)
        y, x = max(y, 0.0), max(x, 0.0)
        y_low, x_low = int(y), int(x)
        if y_low >= height - 1:
            y_high = y_low = height - 1
            y = float(y_low)
        else:
            y_high = y_low + 1
        if x_low >= width - 1:
            x_high = x_low = width - 1
            x = float(x_low)
        else:
            x_high = x_low + 1
        ly, lx = y - y_low, x - x_low
        hy, hx = 1 - ly, 1 - lx
        return (
            hy * hx * image[:, y_low, x_low]
            + hy * lx * image[:, y_low, x_high]
            + ly * hx * image[:, y_high, x_low]
            + ly * lx * image[:, y_high, x_high]
        )

    for r, (box, b) in enumerate(zip(rois.double().tolist(), batch_indices.tolist(), strict=True)):
        x1, y1, x2, y2 = (v * scale - offset for v in box)
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / size, roi_w / size
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / size)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / size)
        count = max(grid_h * grid_w, 1)
        for i in range(size):
            for j in range(size):
                total = torch.zeros(channels, dtype=torch.float64)
                for iy in range(grid_h):
                    y = y1 + i * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = x1 + j * bin_w + (ix + 0.5) * bin_w / grid_w
                        total += bilinear(features[b], y, x)
                out[r, :, i, j] = total / count
    return out


def _random_rois(count, width, height, generator):
    xy = torch.rand(count, 2, generator=generator) * torch.tensor([width, height]) * 1.2 - 8
    wh = torch.rand(count, 2, generator=generator) * torch.tensor([width, height]) * 0.6 + 0.05
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align_equals_the_mmcv_kernel(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(1)
    features = torch.randn(2, 3, 9, 13, generator=g)
    rois = _random_rois(12, 52, 36, g)
    rois[0] = torch.tensor([60.0, 40.0, 70.0, 45.0])  # outside the map
    rois[1] = torch.tensor([3.0, 3.0, 3.0, 30.0])  # zero width
    batch = torch.randint(0, 2, (12,), generator=g)
    got = ROI_ALIGN_OP(features, rois, batch, 4, 0.25, sampling_ratio, aligned)
    expected = _naive_roi_align(features, rois, batch, 4, 0.25, sampling_ratio, aligned)
    assert got.shape == (12, 3, 4, 4)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)


def _export(module, inputs):
    program = torch.onnx.export(
        module,
        inputs,
        dynamo=True,
        custom_translation_table=translation_table(),
        opset_version=18,
        verbose=False,
    )
    model = program.model_proto
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return model, session


class _Ops(torch.nn.Module):
    def __init__(self, size, scale, sampling_ratio, iou, score, max_out):
        super().__init__()
        self.args = (size, scale, sampling_ratio, iou, score, max_out)

    def forward(self, features, rois, batch, boxes, scores):
        size, scale, sampling_ratio, iou, score, max_out = self.args
        pooled = ROI_ALIGN_OP(features, rois, batch, size, scale, sampling_ratio, True)
        return pooled, NMS_OP(boxes, scores, iou, score, max_out)


@pytest.mark.parametrize("seed", [0, 1])
def test_roi_align_and_nms_equal_onnxruntime(seed):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(2, 8, 25, 34, generator=g)
    rois = _random_rois(200, 136, 100, g)
    batch = torch.randint(0, 2, (200,), generator=g)
    xy = torch.rand(2, 400, 2, generator=g) * 200
    boxes = torch.cat([xy, xy + torch.rand(2, 400, 2, generator=g) * 60], dim=-1)
    scores = torch.rand(2, 400, generator=g)
    module = _Ops(7, 0.25, 0, 0.5, 0.3, 60)
    model, session = _export(module, (features, rois, batch, boxes, scores))
    assert {n.op_type for n in model.graph.node} >= {"RoiAlign", "NonMaxSuppression", "ScatterND"}
    roi_node = next(n for n in model.graph.node if n.op_type == "RoiAlign")
    attrs = {a.name: a for a in roi_node.attribute}
    assert attrs["coordinate_transformation_mode"].s == b"half_pixel" and attrs["sampling_ratio"].i == 0
    feeds = dict(
        zip(
            [i.name for i in session.get_inputs()],
            [t.numpy() for t in (features, rois, batch, boxes, scores)],
            strict=True,
        )
    )
    pooled, keep = session.run(None, feeds)
    ref_pooled, ref_keep = module(features, rois, batch, boxes, scores)
    scale = float(ref_pooled.abs().max())
    assert np.abs(pooled - ref_pooled.numpy()).max() <= 1e-5 * scale
    assert (keep == ref_keep.numpy()).all()
    assert 0 < keep.sum(axis=1).max() <= 60  # some kept, the cap respected


def _naive_nms(boxes, scores, iou_threshold, score_threshold, max_out):
    keep = []
    order = [i for i in sorted(range(len(scores)), key=lambda i: -scores[i]) if scores[i] > score_threshold]
    for i in order:
        ok = True
        for j in keep:
            xx1, yy1 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            xx2, yy2 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(xx2 - xx1, 0) * max(yy2 - yy1, 0)
            area_i = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            area_j = (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1])
            if area_i > 0 and area_j > 0 and inter / (area_i + area_j - inter) > iou_threshold:
                ok = False
                break
        if ok:
            keep.append(i)
        if len(keep) == max_out:
            break
    return sorted(keep)


@pytest.mark.parametrize("iou,score,max_out", [(0.5, 0.0, 1000), (0.3, 0.6, 1000), (0.7, 0.1, 5)])
def test_nms_equals_greedy_definition(iou, score, max_out):
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(1, 150, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + torch.rand(1, 150, 2, generator=g) * 40], dim=-1)
    scores = torch.rand(1, 150, generator=g)
    keep = NMS_OP(boxes, scores, iou, score, max_out)
    expected = _naive_nms(boxes[0].tolist(), scores[0].tolist(), iou, score, max_out)
    assert torch.nonzero(keep[0]).flatten().tolist() == expected


def test_roi_align_gradient_flows_to_the_features():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(1, 2, 6, 7, dtype=torch.float64, generator=g, requires_grad=True)
    rois = torch.tensor([[2.0, 3.0, 17.0, 14.0], [0.5, 0.5, 9.0, 21.0]], dtype=torch.float64)
    batch = torch.zeros(2, dtype=torch.long)
    assert torch.autograd.gradcheck(lambda f: ROI_ALIGN_OP(f, rois, batch, 3, 0.25, 0, True), (features,))
