"""Detection, instance and panoptic segmentation: mmdet 2.x two-stage detectors in pure PyTorch.

``backbones.py`` (LVT, ELSA-Swin with multi-scale outputs), ``heads.py`` (FPN, RPN, RoI box and
mask heads, semantic head), ``postprocess.py`` (anchors, box coding, proposals, multi-level RoI
features, NMS to a fixed number of detections, mask pasting, panoptic fusion; static shapes),
``detectors.py`` (the composition, outputs), ``zoo.py`` (the registered models).

Sources: mmdet 2.17 as vendored by Chenglin-Yang/LVT (``detection/``) for LVT Panoptic FPN,
mmdet 2.11 as vendored by damo-cv/ELSA (``det/``) for the ELSA-Swin detectors, and mmcv 1.3's
RoIAlign and NMS. The official code was read, not imported: litevit has no mmdet/mmcv dependency.
"""

from litevit.models.detection import zoo  # noqa: F401  (registers the models)
from litevit.models.detection.detectors import (
    DETECTION_OUTPUTS,
    MASK_OUTPUTS,
    PANOPTIC_OUTPUTS,
    TwoStageDetector,
)

__all__ = ["DETECTION_OUTPUTS", "MASK_OUTPUTS", "PANOPTIC_OUTPUTS", "TwoStageDetector"]
