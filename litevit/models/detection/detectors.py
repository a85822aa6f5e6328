"""Two-stage detectors: Mask R-CNN, Cascade Mask R-CNN and Panoptic FPN (mmdet 2.x semantics).

One module per detector type composes a backbone (the classifiers' own blocks with multi-scale
outputs, ``backbones.py``), the FPN neck, the RPN and RoI heads (``heads.py``) and static-shaped
post-processing (``postprocess.py``), all in PyTorch, so the eager model and the exported ONNX
graph are the same computation. Parameter names are mmdet's (``backbone.``, ``neck.``,
``rpn_head.``, ``roi_head.``, ``semantic_head.``): the official checkpoints load unchanged.

Inputs: ``images`` (B, 3, H, W) normalised, H and W multiples of 32 (the padded canvas), and
``image_shapes`` (B, 4) float: the resized image's (height, width) inside the canvas (boxes are
clipped to it, as mmdet clips to ``img_shape``) and the original image's (height, width) (the
panoptic stuff-area limit is in original pixels). Without ``image_shapes`` every image fills
its canvas and is its own original.

Outputs, per image, ``K = max_per_img`` slots sorted by score (``num_detections`` valid ones):
``boxes`` (B, K, 4) x1, y1, x2, y2 in canvas pixels, ``scores`` (B, K) (0 in empty slots),
``labels`` (B, K) int32 class index (-1 in empty slots), ``num_detections`` (B,) int32, and
``masks``: (B, K, H, W) bool pasted on the canvas (``mask_output="canvas"``, mmdet's
``mask_thr_binary``) or (B, K, 28, 28) float probabilities of the detected class
(``mask_output="roi"``; ``litevit.runtime.detection`` pastes them on the host at the original
resolution, exactly as mmdet does). Panoptic FPN adds ``panoptic`` (B, H, W) int32 segment ids,
``segment_labels`` and ``segment_areas`` (B, K + 53) int32 (see
:func:`~litevit.models.detection.postprocess.panoptic_fusion`).

Differences from mmdet, all from static shapes or the input canvas:

* at most 3839 (box, class) candidates per image enter the final NMS (under TensorRT's TopK limit);
  mmdet takes every candidate above the score threshold (thousands only for unusual images);
* ``mask_output="canvas"`` pastes masks and fuses panoptic segments on the resized, padded
  canvas; mmdet pastes at the original resolution (``mask_output="roi"`` plus the host paste
  reproduces that for instance masks);
* equal scores may be ordered differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from litevit.models._layers import check_input
from litevit.models._registry import ModelCfg
from litevit.models.detection.heads import (
    FPN,
    ConvFCBBoxHead,
    FCNMaskHead,
    PanopticFPNHead,
    RPNHead,
)
from litevit.models.detection.postprocess import (
    INVALID_SCORE,
    PanopticTestCfg,
    RcnnTestCfg,
    RpnTestCfg,
    decode_boxes,
    panoptic_fusion,
    paste_masks,
    roi_features,
    rpn_proposals,
    select_detections,
)

MASK_OUTPUTS = ("canvas", "roi")
# Name of the RCNN score-threshold buffer, and so of its weight in the exported graph.
SCORE_THRESHOLD = "score_threshold"
DETECTION_OUTPUTS = ("boxes", "scores", "labels", "num_detections", "masks")
PANOPTIC_OUTPUTS = (*DETECTION_OUTPUTS[:4], "panoptic", "segment_labels", "segment_areas")


@dataclass(frozen=True)
class BoxHeadCfg:
    """One RoI box head (a cascade has one per stage)."""

    stds: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
    fc_channels: int = 1024
    num_convs: int = 0
    num_fcs: int = 2
    norm: str | None = None  # "bn" for the cascade's 4-conv heads (SyncBN in training)
    class_agnostic: bool = False


@dataclass(frozen=True)
class DetectorCfg:
    """What an mmdet two-stage config says, as far as inference needs it."""

    num_classes: int = 80
    neck_channels: int = 256
    anchor_strides: tuple[int, ...] = (4, 8, 16, 32, 64)
    anchor_scales: tuple[float, ...] = (8.0,)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    roi_strides: tuple[int, ...] = (4, 8, 16, 32)
    box_heads: tuple[BoxHeadCfg, ...] = (BoxHeadCfg(),)
    mask_conv_channels: int = 256
    rpn: RpnTestCfg = field(default_factory=RpnTestCfg)
    rcnn: RcnnTestCfg = field(default_factory=RcnnTestCfg)
    # Panoptic FPN only: semantic head and fusion.
    panoptic: PanopticTestCfg | None = None
    semantic_channels: int = 128
    semantic_groups: int = 32
    semantic_upsample: tuple[int, ...] = (0, 1, 2, 3)


class RoIHead(nn.Module):
    """mmdet's ``StandardRoIHead`` (one box head) or ``CascadeRoIHead`` (several): keys
    ``bbox_head.*`` / ``bbox_head.{stage}.*`` and ``mask_head.*`` / ``mask_head.{stage}.*``."""

    def __init__(self, cfg: DetectorCfg) -> None:
        super().__init__()
        self.cfg = cfg
        channels = cfg.neck_channels

        def box_head(head: BoxHeadCfg) -> ConvFCBBoxHead:
            return ConvFCBBoxHead(
                channels,
                cfg.num_classes,
                head.fc_channels,
                num_convs=head.num_convs,
                num_fcs=head.num_fcs,
                conv_channels=channels,
                class_agnostic=head.class_agnostic,
                norm=head.norm,
            )

        def mask_head() -> FCNMaskHead:
            return FCNMaskHead(channels, cfg.mask_conv_channels, cfg.num_classes)

        # Plain lists of the heads (the registered modules below own them).
        self.box_stages = [box_head(head) for head in cfg.box_heads]
        self.mask_heads = [mask_head() for _ in cfg.box_heads]
        self.bbox_head: nn.Module
        self.mask_head: nn.Module
        if len(cfg.box_heads) > 1:
            self.bbox_head = nn.ModuleList(self.box_stages)
            self.mask_head = nn.ModuleList(self.mask_heads)
        else:
            self.bbox_head = self.box_stages[0]
            self.mask_head = self.mask_heads[0]

    def classify(
        self, features: Sequence[torch.Tensor], proposals: torch.Tensor, image_hw: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Proposals (B, R, 4) -> class probabilities (B, R, classes) (background dropped) and
        per-class boxes (B, R, classes, 4). A cascade refines the RoIs stage by stage with the
        deltas of each RoI's best class and averages the stages' class logits (mmdet
        ``CascadeRoIHead.simple_test``)."""
        batch, rois = proposals.shape[:2]
        classes = self.cfg.num_classes
        stage_logits: list[torch.Tensor] = []
        deltas = proposals.new_zeros(0)
        for i, head in enumerate(self.box_stages):
            if i > 0:
                best = stage_logits[-1][..., :classes].argmax(dim=-1)  # (B, R), mmdet regress_by_class
                if deltas.shape[2] == 1:
                    chosen = deltas[:, :, 0]
                else:
                    chosen = deltas.gather(2, best[:, :, None, None].expand(batch, rois, 1, 4))[:, :, 0]
                proposals = decode_boxes(proposals, chosen, self.cfg.box_heads[i - 1].stds, image_hw)
            logits, regression = head(roi_features(features, proposals, self.cfg.roi_strides, 7))
            stage_logits.append(logits.reshape(batch, rois, classes + 1))
            deltas = regression.reshape(batch, rois, -1, 4)
        logits = stage_logits[0] if len(stage_logits) == 1 else torch.stack(stage_logits).mean(dim=0)
        scores = logits.softmax(dim=-1)[..., :classes]
        boxes = decode_boxes(proposals[:, :, None, :], deltas, self.cfg.box_heads[-1].stds, image_hw)
        return scores, boxes.expand(batch, rois, classes, 4)

    def mask_probabilities(
        self, features: Sequence[torch.Tensor], boxes: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Detections (B, K, 4) and labels (B, K) -> (B, K, 28, 28) mask probabilities of the
        detected class (a cascade averages its stages' sigmoids, mmdet ``merge_aug_masks``)."""
        batch, count = labels.shape
        pooled = roi_features(features, boxes, self.cfg.roi_strides, 14)
        channel = torch.where(labels < 0, 0, labels).reshape(-1, 1, 1, 1)  # Clip takes floats in TensorRT
        probabilities = []
        for head in self.mask_heads:
            logits = head(pooled)
            picked = logits.gather(1, channel.expand(-1, 1, *logits.shape[-2:]))
            probabilities.append(picked.sigmoid())
        merged = probabilities[0] if len(probabilities) == 1 else torch.stack(probabilities).mean(dim=0)
        return merged.reshape(batch, count, *merged.shape[-2:])


class TwoStageDetector(nn.Module):
    """Backbone + FPN + RPN + RoI heads (+ semantic head and fusion for Panoptic FPN)."""

    def __init__(
        self,
        cfg: ModelCfg,
        backbone: nn.Module,
        in_channels: Sequence[int],
        det: DetectorCfg,
        mask_output: str,
    ) -> None:
        super().__init__()
        if mask_output not in MASK_OUTPUTS:
            raise ValueError(f"mask_output is one of {', '.join(MASK_OUTPUTS)}; got {mask_output!r}.")
        self.cfg = cfg
        self.det = det
        self.mask_output = mask_output
        self.backbone = backbone
        self.neck = FPN(in_channels, det.neck_channels, len(det.anchor_strides))
        num_anchors = len(det.anchor_scales) * len(det.anchor_ratios)
        self.rpn_head = RPNHead(det.neck_channels, det.neck_channels, num_anchors)
        self.roi_head = RoIHead(det)
        if det.panoptic is not None:
            self.semantic_head = PanopticFPNHead(
                det.panoptic.num_stuff + 1,
                det.neck_channels,
                det.semantic_channels,
                det.semantic_upsample,
                det.semantic_groups,
            )
        _init_heads(self)
        # The RCNN score threshold as a scalar buffer: the exported graph keeps it as the weight
        # SCORE_THRESHOLD (one value to change after export; the parity gate lowers it to test a
        # random-weight detector). Not in the state dict: checkpoints do not carry it.
        self.register_buffer(
            SCORE_THRESHOLD, torch.tensor(det.rcnn.score_thr, dtype=torch.float32), persistent=False
        )

    @property
    def output_names(self) -> tuple[str, ...]:
        names = PANOPTIC_OUTPUTS if self.det.panoptic is not None else DETECTION_OUTPUTS
        return names

    def default_image_shapes(self, images: torch.Tensor) -> torch.Tensor:
        """Every image fills its canvas and is its own original."""
        height, width = images.shape[-2:]
        size = images.new_tensor([height, width, height, width], dtype=torch.float32)
        return size.expand(images.shape[0], 4)

    def extract_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        check_input(images, self.cfg)
        return self.neck(self.backbone(images))

    def forward_dummy(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The network as mmdet's ``forward_dummy`` (and so ``tools/analysis_tools/get_flops.py``,
        behind published GFLOPs) runs it: backbone, neck, RPN head, box head(s) on 1000 RoIs, mask
        head(s) on the first 100, semantic head. No post-processing; for FLOP counting."""
        features = self.extract_features(images)
        logits, _ = self.rpn_head(features)
        rois = images.new_zeros(1, 1000, 4) + images.new_tensor([0.0, 0.0, 64.0, 64.0])
        pooled = roi_features(features, rois, self.det.roi_strides, 7)
        outputs = [*logits]
        for head in self.roi_head.box_stages:
            outputs.extend(head(pooled))
        mask_pooled = roi_features(features, rois[:, :100], self.det.roi_strides, 14)
        outputs.extend(head(mask_pooled) for head in self.roi_head.mask_heads)
        if self.det.panoptic is not None:
            outputs.append(self.semantic_head(features[:4]))
        return tuple(outputs)

    def forward(
        self, images: torch.Tensor, image_shapes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        if image_shapes is None:
            image_shapes = self.default_image_shapes(images)
        image_hw = image_shapes[:, :2]
        features = self.extract_features(images)
        logits, deltas = self.rpn_head(features)
        det = self.det
        proposals, proposal_scores = rpn_proposals(
            logits, deltas, det.anchor_strides, det.anchor_scales, det.anchor_ratios, image_hw, det.rpn
        )
        roi_levels = features[: len(det.roi_strides)]
        scores, boxes = self.roi_head.classify(roi_levels, proposals, image_hw)
        rcnn = det.rcnn
        det_boxes, det_scores, det_labels = select_detections(
            boxes, scores, proposal_scores > INVALID_SCORE, rcnn, getattr(self, SCORE_THRESHOLD)
        )
        found = det_scores > INVALID_SCORE
        probabilities = self.roi_head.mask_probabilities(roi_levels, det_boxes, det_labels)
        height, width = images.shape[-2:]
        outputs: tuple[torch.Tensor, ...] = (
            det_boxes,
            torch.where(found, det_scores, 0.0),
            det_labels.to(torch.int32),
            found.to(torch.float32).sum(dim=1).to(torch.int32),  # TensorRT 8.x sums floats only
        )
        if self.mask_output == "roi" and det.panoptic is None:
            return (*outputs, torch.where(found[..., None, None], probabilities, 0.0))
        masks = (paste_masks(probabilities, det_boxes, height, width) >= rcnn.mask_thr_binary) & found[
            ..., None, None
        ]
        if det.panoptic is None:
            return (*outputs, masks)
        semantic = F.interpolate(
            self.semantic_head(features[:4]), size=(height, width), mode="bilinear", align_corners=False
        )
        panoptic, segment_labels, segment_areas = panoptic_fusion(
            masks, det_labels, found, semantic, image_shapes, det.panoptic
        )
        return (*outputs, panoptic, segment_labels, segment_areas)


def _init_heads(model: TwoStageDetector) -> None:
    """mmdet's initialisations (random-weight outputs look like a detector's): FPN convs
    xavier-uniform, RPN convs N(0, .01), box head FCs xavier-uniform, cls N(0, .01), reg
    N(0, .001), mask upsample/logits kaiming (fan out), semantic logits N(0, .01); biases 0."""
    for module in model.neck.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.xavier_uniform_(module.weight)
            _zero_bias(module)
    for module in model.rpn_head.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 0.01)
            _zero_bias(module)
    for box_head in model.roi_head.box_stages:
        for fc in box_head.shared_fcs.children():
            assert isinstance(fc, nn.Linear)
            nn.init.xavier_uniform_(fc.weight)
            _zero_bias(fc)
        nn.init.normal_(box_head.fc_cls.weight, 0.0, 0.01)
        nn.init.normal_(box_head.fc_reg.weight, 0.0, 0.001)
        _zero_bias(box_head.fc_cls)
        _zero_bias(box_head.fc_reg)
    for mask_head in model.roi_head.mask_heads:
        for conv in (mask_head.upsample, mask_head.conv_logits):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            _zero_bias(conv)
    if model.det.panoptic is not None:
        nn.init.normal_(model.semantic_head.conv_logits.weight, 0.0, 0.01)
        _zero_bias(model.semantic_head.conv_logits)


def _zero_bias(module: nn.Conv2d | nn.ConvTranspose2d | nn.Linear) -> None:
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def checkpoint_filter_fn(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Official mmdet state dict -> ours: the same keys; ELSA-Swin's derived ``relative_id``
    buffers (stage-4 bias index, rebuilt from the window size) are dropped."""
    return {key: value for key, value in state.items() if not key.endswith(".attn.relative_id")}


def build_detector(
    cfg: ModelCfg, backbone: nn.Module, in_channels: Sequence[int], **options: Any
) -> TwoStageDetector:
    det = options.pop("det")
    mask_output = options.pop("mask_output", "canvas")
    if options:
        raise TypeError(f"unknown detector option(s) {', '.join(sorted(options))}.")
    return TwoStageDetector(cfg, backbone, in_channels, det, mask_output)
