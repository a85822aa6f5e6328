"""The model zoo: LVT, ELSA-Swin, Mobile-Former and SegViT, timm-style.

``create_model(name, **kw)`` builds a registered variant; ``list_models()`` lists them;
``load_pretrained(model, path)`` loads an official release's checkpoint.
"""

from litevit.models._pretrained import load_pretrained, read_state_dict
from litevit.models._registry import (
    ModelCfg,
    PaperFigures,
    create_model,
    get_model_cfg,
    list_models,
    model_cfg,
    register_model,
)
from litevit.models.segmentation import segmentation_labels

__all__ = [
    "ModelCfg",
    "PaperFigures",
    "create_model",
    "get_model_cfg",
    "list_models",
    "load_pretrained",
    "model_cfg",
    "read_state_dict",
    "register_model",
    "segmentation_labels",
]
