"""Registered detectors: LVT Panoptic FPN and ELSA-Swin-T/S Mask R-CNN / Cascade Mask R-CNN.

Configurations are the official ones:

* ``lvt_panoptic_fpn``: Chenglin-Yang/LVT ``detection/configs/lvt/panoptic_fpn_lvt_fpn_3x_coco.py``
  (over ``panoptic_fpn_lvt_fpn_1x_coco.py`` and mmdet 2.17's ``mask_rcnn_r50_fpn.py``): FPN
  [64, 64, 160, 256] -> 96, RPN 96, Shared2FC box head (FC 160), 4-conv mask head (96), semantic
  head (inner 48, GroupNorm 12 groups, ``num_upsample`` [0, 1, 2, 3]), heuristic fusion with
  ``score_thr`` 0.6, class-agnostic NMS 0.5, 100 per image, mask threshold 0.5, overlap 0.5,
  stuff area limit 4096.
* ``elsa_swin_{tiny,small}_mask_rcnn``: damo-cv/ELSA
  ``det/configs/elsa_swin/mask_elsa_{tiny,small}_{1x,3x}.py`` (over
  ``_base_/models/mask_rcnn_elsa_swin_fpn.py``, mmdet 2.11): FPN -> 256, Shared2FC 1024,
  Tiny with ``group_width`` 4 (Small keeps the backbone's default 8); RCNN ``score_thr`` 0.05,
  NMS 0.5 per class, 100 per image.
* ``elsa_swin_{tiny,small}_cascade_mask_rcnn``: ``cascade_elsa_{tiny,small}_{1x,3x}.py``: three
  stages of ConvFC heads (4 convs 256 + BN, 1 FC 1024, class-specific regression), stds
  (0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.1, 0.1), (0.033, 0.033, 0.067, 0.067), a mask head per
  stage (averaged at test).

The 1x and 3x checkpoints of each ELSA detector share the architecture (their key lists are
identical). Test pipeline for all: RGB, keep-ratio resize to fit 1333 x 800, normalise with
ImageNet mean/std in 0-255 units, pad bottom/right to multiples of 32.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from litevit.models import elsa, lvt
from litevit.models._registry import (
    IMAGENET_MEAN_255,
    IMAGENET_STD_255,
    ModelCfg,
    PaperFigures,
    register_model,
)
from litevit.models.detection.backbones import LvtFeatures, elsa_swin_features
from litevit.models.detection.detectors import (
    BoxHeadCfg,
    DetectorCfg,
    TwoStageDetector,
    build_detector,
    checkpoint_filter_fn,
)
from litevit.models.detection.postprocess import PanopticTestCfg, RcnnTestCfg, RpnTestCfg

RESIZE_RULE = (
    "keep-ratio resize to fit 1333x800 (mmdet Resize img_scale=(1333, 800), keep_ratio=True: "
    "scale = min(1333 / long side, 800 / short side), sides rounded), RGB, normalised, then padded "
    "bottom/right to multiples of 32 (Pad size_divisor=32)"
)
# mmdet's test scale (long side, short side) and the largest canvas it gives (a landscape image
# with the 1333x800 aspect ratio or wider).
MMDET_TEST_SCALE = (1333, 800)
CANVAS = (800, 1344)

LVT_PANOPTIC = DetectorCfg(
    num_classes=80,
    neck_channels=96,
    box_heads=(BoxHeadCfg(fc_channels=160),),
    mask_conv_channels=96,
    rpn=RpnTestCfg(drop_empty=True),  # mmdet 2.17
    rcnn=RcnnTestCfg(score_thr=0.6, iou_threshold=0.5, class_agnostic=True, max_per_img=100),
    panoptic=PanopticTestCfg(),
    semantic_channels=48,
    semantic_groups=12,
)
ELSA_MASK_RCNN = DetectorCfg(rpn=RpnTestCfg(drop_empty=False))  # mmdet 2.11
ELSA_CASCADE = dataclasses.replace(
    ELSA_MASK_RCNN,
    box_heads=tuple(
        BoxHeadCfg(stds=stds, fc_channels=1024, num_convs=4, num_fcs=1, norm="bn")
        for stds in ((0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.1, 0.1), (0.033, 0.033, 0.067, 0.067))
    ),
)


def _smoke(det: DetectorCfg) -> dict[str, Any]:
    """A few-channel detector with few proposals and detections (random weights, tests only)."""
    return dataclasses.asdict(
        dataclasses.replace(
            det,
            neck_channels=16,
            box_heads=tuple(
                dataclasses.replace(head, fc_channels=32, num_convs=min(head.num_convs, 1))
                for head in det.box_heads
            ),
            mask_conv_channels=16,
            rpn=dataclasses.replace(det.rpn, nms_pre=60, max_per_img=40),
            rcnn=dataclasses.replace(det.rcnn, max_per_img=8, nms_pre=300),
            semantic_channels=8,
            semantic_groups=4,
        )
    )


def detector_cfg(values: dict[str, Any]) -> DetectorCfg:
    """A :class:`DetectorCfg` from its ``dataclasses.asdict`` form (as stored in ``ModelCfg.arch``
    and manifests: lists where tuples were)."""

    def tuples(value: Any) -> Any:
        return tuple(tuples(v) for v in value) if isinstance(value, (list, tuple)) else value

    fields = {k: tuples(v) for k, v in values.items()}
    fields["box_heads"] = tuple(
        BoxHeadCfg(**{k: tuples(v) for k, v in h.items()}) for h in values["box_heads"]
    )
    fields["rpn"] = RpnTestCfg(**values["rpn"])
    fields["rcnn"] = RcnnTestCfg(**values["rcnn"])
    fields["panoptic"] = PanopticTestCfg(**values["panoptic"]) if values.get("panoptic") else None
    return DetectorCfg(**fields)


def _build(cfg: ModelCfg, family: str, **kwargs: Any) -> TwoStageDetector:
    arch = cfg.arch
    unknown = sorted(set(arch) - {"backbone", "detector", "mask_output", "score_thr"})
    if unknown:
        raise TypeError(
            f"unknown detector option(s) {', '.join(unknown)}; "
            "known: backbone, detector, mask_output, score_thr."
        )
    det = detector_cfg(arch["detector"])
    classes = det.num_classes + (det.panoptic.num_stuff if det.panoptic is not None else 0)
    if det.panoptic is not None and det.panoptic.num_things != det.num_classes:
        raise TypeError(
            f"the panoptic fusion's num_things ({det.panoptic.num_things}) must equal the detector's "
            f"num_classes ({det.num_classes})."
        )
    if classes != cfg.num_classes:
        raise TypeError(
            f"{cfg.name} with this detector predicts {classes} classes; pass num_classes={classes} "
            f"(the model's label set is {cfg.num_classes} classes)."
        )
    if arch.get("score_thr") is not None:
        # Lower the RCNN score threshold (e.g. to see random-weight detections in checks).
        det = dataclasses.replace(det, rcnn=dataclasses.replace(det.rcnn, score_thr=float(arch["score_thr"])))
    backbone = LvtFeatures(arch["backbone"]) if family == "lvt" else elsa_swin_features(arch["backbone"])
    return build_detector(
        cfg, backbone, backbone.num_features, det=det, mask_output=arch.get("mask_output", "canvas")
    )


def _cfg(
    name: str,
    family: str,
    task: str,
    backbone: dict[str, Any],
    det: DetectorCfg,
    smoke_backbone: dict[str, Any],
    paper: PaperFigures,
    checkpoint: str,
) -> ModelCfg:
    panoptic = task == "panoptic"
    return ModelCfg(
        name=name,
        family=family,
        task=task,
        input_size=CANVAS,
        num_classes=133 if panoptic else 80,
        label_set="coco_panoptic133" if panoptic else "coco80",
        size_divisor=32,
        mean=IMAGENET_MEAN_255,
        std=IMAGENET_STD_255,
        pixel_scale=255.0,
        interpolation="bilinear",
        crop_pct=None,
        seg_resize=RESIZE_RULE,
        min_size=(64, 64),
        checkpoint=checkpoint,
        paper=paper,
        arch={"backbone": backbone, "detector": dataclasses.asdict(det), "mask_output": "canvas"},
        smoke_arch={"backbone": smoke_backbone, "detector": _smoke(det)},
    )


LVT_BACKBONE = {k: v for k, v in lvt.LVT_ARCH.items()}
LVT_SMOKE_BACKBONE = {**LVT_BACKBONE, **lvt.LVT_SMOKE_ARCH}
ELSA_SMOKE_BACKBONE = {
    **elsa.VARIANTS["elsa_swin_tiny"],
    "embed_dim": 24,
    "depths": (1, 1, 1, 2),
    "num_heads": (1, 2, 2, 4),
    "group_width": 4,
}
_ELSA = "damo-cv/ELSA README, COCO detection table"
_ELSA_MACS_NOTE = (
    "ELSA published no detection FLOPs; reference: fvcore on the official detector at 800x1344 "
    "(mmdet forward_dummy: 1000 RoIs, 100 masks) plus the ELSA aggregation fvcore cannot see."
)


@register_model(
    _cfg(
        "lvt_panoptic_fpn",
        "lvt",
        "panoptic",
        LVT_BACKBONE,
        LVT_PANOPTIC,
        LVT_SMOKE_BACKBONE,
        PaperFigures(
            params_m=5.4,
            gmacs=56.4,
            resolution=CANVAS,  # 1333x800 padded to multiples of 32
            metric="PQ 42.8 (things 49.5, stuff 32.6), COCO val; 20.4 FPS on one V100 at 1333x800",
            source="Chenglin-Yang/LVT README, COCO panoptic table",
            note="The README does not say how FLOPs were counted. On the official model at 800x1344, "
            "fvcore gives 63.75 GMACs (60.36 at mmdet get_flops.py's default 800x1280) and mmcv's "
            "counter 44.60 at 800x1280 (it misses the attention matmuls and RASA's functional convs).",
        ),
        "panoptic_fpn_lvt_fpn_coco.pth (Chenglin-Yang/LVT README, COCO panoptic table; OneDrive "
        "link, mmdet 2.17 checkpoint)",
    ),
    checkpoint_filter=checkpoint_filter_fn,
)
def lvt_panoptic_fpn(cfg: ModelCfg, **kwargs: Any) -> TwoStageDetector:
    return _build(cfg, "lvt", **kwargs)


def _elsa_backbone(variant: str) -> dict[str, Any]:
    # Detection configs: drop path 0.2 (Tiny) / 0.75 (Small 3x; inert at test); Tiny sets group_width 4.
    return {**elsa.VARIANTS[variant], "group_width": 4 if variant == "elsa_swin_tiny" else 8}


def _register_elsa(
    name: str, variant: str, det: DetectorCfg, params_m: float, gmacs: float, ap: str, checkpoint: str
) -> None:
    cfg = _cfg(
        name,
        "elsa",
        "detection",
        _elsa_backbone(variant),
        det,
        ELSA_SMOKE_BACKBONE,
        PaperFigures(
            params_m=params_m,
            gmacs=gmacs,
            resolution=CANVAS,
            metric=f"box/mask AP {ap} (COCO val, 3x; 1x in the checkpoint note)",
            source=_ELSA,
            note=_ELSA_MACS_NOTE,
        ),
        checkpoint,
    )

    def builder(cfg: ModelCfg, **kwargs: Any) -> TwoStageDetector:
        return _build(cfg, "elsa", **kwargs)

    builder.__name__ = name
    register_model(cfg, checkpoint_filter=checkpoint_filter_fn)(builder)


_DRIVE = "damo-cv/ELSA README, Google Drive id"
_register_elsa(
    "elsa_swin_tiny_mask_rcnn",
    "elsa_swin_tiny",
    ELSA_MASK_RCNN,
    49.0,
    278.04,
    "47.5/42.7",
    f"{_DRIVE} 1EOr-lLVTrci2A4qsD2P3wp-IVs27VVLm (3x; 1x: 15wvHHwktc9Bzqro8SSrTTjKN_cWy8pLc, 45.7/41.1)",
)
_register_elsa(
    "elsa_swin_small_mask_rcnn",
    "elsa_swin_small",
    ELSA_MASK_RCNN,
    72.0,
    379.85,
    "49.2/43.6",
    f"{_DRIVE} 1akDKhHmh3_1PfB1Dds9YrpODPsx58-cc (3x; 1x: 1pk185BpCGIDrUc1sAezjrA-wuWr_lYII, 48.3/43.0)",
)
_register_elsa(
    "elsa_swin_tiny_cascade_mask_rcnn",
    "elsa_swin_tiny",
    ELSA_CASCADE,
    86.0,
    756.59,
    "51.0/44.2",
    f"{_DRIVE} 1B7sUVuGXZAzgZd0ud0MBsSlDbM8DkvC- (3x; 1x: 1wjw3lRqe1T_ph824RSb8Hk_yZ49d3CNI, 49.8/43.0)",
)
_register_elsa(
    "elsa_swin_small_cascade_mask_rcnn",
    "elsa_swin_small",
    ELSA_CASCADE,
    110.0,
    858.40,
    "52.3/45.2",
    f"{_DRIVE} 1mkhdwjyScpiBbobWc4TibtoYX4OLk9pp (3x; 1x: 1WI4za90sXu4wv5rx_dTRm2X7xe30anil, 51.6/44.4)",
)
