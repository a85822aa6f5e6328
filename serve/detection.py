"""The image endpoint for detectors: a picture -> detections and segments as JSON.

``POST /v2/models/NAME/image`` with the JPEG/PNG bytes as the body. Query parameters:
``masks=rle`` (default) or ``masks=none``; ``min_score=S`` keeps detections scoring at least S
(above the graph's own threshold). The answer, in the picture's own pixels::

    {"model_name": ..., "model_version": "1", "image": {"height": H, "width": W},
     "detections": [{"box": [x1, y1, x2, y2], "score": 0.97, "label": 0, "name": "person",
                     "category_id": 1, "mask": RLE}, ...],          # highest score first
     "segments": [{"id": 1, "label": 0, "name": "person", "category_id": 1, "isthing": true,
                   "area": 5120, "mask": RLE}, ...]}                  # Panoptic FPN only

``label`` is the model's class index, ``name`` and ``category_id`` its COCO name and id (for a
model trained on other data: "class N" and N + 1). Masks (instance masks for Mask R-CNN models,
one per segment for Panoptic FPN) are COCO's *uncompressed* RLE, ``{"size": [H, W], "counts":
[...]}``: run lengths of the column-major pixels starting with a run of zeros - plain JSON numbers
that any client decodes in a few lines, and that ``pycocotools.mask.frPyObjects(rle, H, W)`` reads
as it is. Polygons are not offered: tracing contours needs OpenCV or scikit-image, which the
server does not depend on. Boxes and masks come from :mod:`litevit.runtime.detection` (mmdet's
test pipeline and rescaling).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from litevit.calibration.coco import CategoryTable, mask_to_rle
from litevit.runtime.detection import DetectionPreprocessing, ImageDetections, model_categories, postprocess
from litevit.serve.models import VERSION, ApiError, ServedModel

MASK_FORMATS = ("rle", "none")


def mask_format(query: str | None) -> str:
    value = (query or "rle").lower()
    if value not in MASK_FORMATS:
        raise ApiError(400, f"masks must be one of {', '.join(MASK_FORMATS)}; got {query!r}.")
    return value


def min_score(query: str | None) -> float:
    if query is None:
        return 0.0
    try:
        value = float(query)
    except ValueError:
        raise ApiError(400, f"min_score must be a number in [0, 1]; got {query!r}.") from None
    if not 0.0 <= value <= 1.0:
        raise ApiError(400, f"min_score must be a number in [0, 1]; got {query!r}.")
    return value


class DetectionImages:
    """A served detector's pre-processing, classes and JSON rendering."""

    def __init__(self, model: ServedModel) -> None:
        self.model = model
        self.prep = DetectionPreprocessing.from_manifest(model.manifest)
        self.categories: CategoryTable = model_categories(model.manifest)

    def feeds(self, picture: np.ndarray) -> tuple[dict[str, np.ndarray], Any]:
        """(H, W, 3) uint8 RGB -> the graph's feeds for one picture and its geometry."""
        feeds, (geometry,) = self.prep.batch([picture])
        return feeds, geometry

    def render(
        self, outputs: dict[str, np.ndarray], geometry: Any, masks: str, threshold: float
    ) -> dict[str, Any]:
        result = postprocess(outputs, 0, geometry, self.categories, masks=masks == "rle")
        return {
            "model_name": self.model.name,
            "model_version": VERSION,
            "image": {"height": geometry.height, "width": geometry.width},
            "detections": self._detections(result, masks, threshold),
            **({"segments": self._segments(result, masks)} if result.panoptic is not None else {}),
        }

    def _detections(self, result: ImageDetections, masks: str, threshold: float) -> list[dict[str, Any]]:
        out = []
        for k, (box, score, label) in enumerate(zip(result.boxes, result.scores, result.labels)):
            if score < threshold:
                continue
            entry = {
                "box": [round(float(v), 2) for v in box],
                "score": round(float(score), 5),
                "label": int(label),
                "name": self.categories.names[int(label)],
                "category_id": self.categories.ids[int(label)],
            }
            if masks == "rle" and result.masks is not None:
                entry["mask"] = mask_to_rle(result.masks[k])
            out.append(entry)
        return out

    def _segments(self, result: ImageDetections, masks: str) -> list[dict[str, Any]]:
        assert result.panoptic is not None
        out = []
        for segment in result.segments or []:
            label = int(segment["label"])
            entry = {
                "id": int(segment["id"]),
                "label": label,
                "name": self.categories.names[label],
                "category_id": int(segment["category_id"]),
                "isthing": bool(segment["isthing"]),
                "area": int(segment["area"]),
            }
            if masks == "rle":
                entry["mask"] = mask_to_rle(result.panoptic == segment["id"])
            out.append(entry)
        return out
